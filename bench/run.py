"""`python -m bench`: load CallGateway's webhooks and a bare Flask floor, compare the two.

One run starts its own Redis, S3 endpoint (moto) and database (a fresh SQLite file, or
PostgreSQL with --db postgres), migrates it, serves the gateway and the floor with the
same gunicorn settings, drives each scenario with wrk over loopback, then the scaling row
(1, 2, 4 workers) and the consent-gate check, prints the tables and writes
bench/results/latest.json. `--soak` instead runs whole calls for N minutes and reports
drift. Everything it starts is stopped on exit, error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench import diary, gate, soak
from bench.measure import LATENCY, LOAD, Phase, Result, Runner, judge
from bench.procs import (
    ROOT,
    BenchError,
    Gunicorn,
    base_env,
    bench_clinic,
    clinic_number,
    free_port,
    migrate,
    start_services,
)
from bench.report import (
    ScalingRow,
    scaling_table,
    scenario_table,
    soak_table,
    write_json,
)
from bench.scenarios import BY_NAME, CONVERSATION, SCENARIOS, TURN_PATH, Context, Scenario
from bench.wrk import WRK
from callgateway.config import ConfigError
from devtools.services import ServiceError

RESULTS = ROOT / "bench" / "results" / "latest.json"
SOAK_RESULTS = ROOT / "bench" / "results" / "soak.json"
SEED_SECONDS = 3  # voice run that creates calls when only `turn`/`status` is asked for
SCALING_WORKERS = (1, 2, 4)
# Exit status: a missed target is a finding, not a broken build (see bench/README.md).
OK, ERRORS, SETUP, INTERRUPTED = 0, 1, 2, 130


# Distinct times for the callers of one run (bench.diary): more than its calls.
WHEN_COUNT = 5000


class Bench:
    """The services, the two gunicorns and the Runner of one invocation."""

    def __init__(
        self, args: argparse.Namespace, stack: contextlib.ExitStack, others: set[str]
    ) -> None:
        """`others`: the servers besides the gateway ("floor", the references)."""
        self.args, self.stack = args, stack
        self.token = "bench-" + secrets.token_hex(16)  # never the dev token
        if args.keep:  # logs and data files stay for a post-mortem
            self.workdir = Path(tempfile.mkdtemp(prefix="cg-bench-"))
            print(f"bench: keeping {self.workdir}", file=sys.stderr)
        else:
            self.workdir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="cg-bench-"))
            )
        try:
            number, country = clinic_number(args.config)
            print(f"bench: starting services (db={args.db}) in {self.workdir}", file=sys.stderr)
            extra = start_services(args.config, args.db, self.workdir, stack)
            self.ports = {"app": free_port(), **{name: free_port() for name in sorted(others)}}
            self.env = base_env(extra, self.token, self.ports["app"], args.config)
            migrate(self.env)
        except (ConfigError, ServiceError) as exc:
            raise BenchError(str(exc)) from None
        self.servers: dict[str, Gunicorn] = {}
        for name in self.ports:
            self.serve(name, args.workers)
        clinic = bench_clinic(args.config)
        when = diary.times(clinic, datetime.now(clinic.tz).date(), WHEN_COUNT)
        self.ctx = Context(to_number=number, to_country=country, when=tuple(when))
        self.runner = Runner(
            args, self.ctx, self.token, self.servers, self.workdir, self.env["REDIS_URL"]
        )

    def serve(self, name: str, workers: int) -> None:
        """(Re)start one server with `workers` sync workers on its fixed port."""
        if name in self.servers:
            self.servers[name].stop()
        log = self.workdir / f"gunicorn-{name}.log"
        g = Gunicorn(name, self.ports[name], workers, self.env, log)
        self.stack.callback(g.stop)  # stop() is idempotent
        self.servers[name] = g
        g.wait_ready()


# ---------------------------------------------------------------- the full run


def plan(only: list[str] | None) -> tuple[list[Scenario], set[str]]:
    """Scenarios to run, in order, and those to report (a seed voice run is not reported)."""
    wanted = set(only or BY_NAME)
    wanted.add("floor")  # every ratio is against it
    # turn, status and recording act on calls, so voice runs (briefly, unreported) first.
    seed = {"voice"} if any(BY_NAME[n].uses_calls for n in wanted) else set()
    run = wanted | seed
    return [s for s in SCENARIOS if s.name in run], wanted


def scenarios(bench: Bench) -> list[Result]:
    args, runner = bench.args, bench.runner
    todo, reported = plan(args.only)
    by_name: dict[str, Result] = {}
    for s in todo:
        res = Result(s.name, s.server, s.path, s.target_text())
        shown = s.name in reported
        for phase, secs in ((LOAD, args.duration), (LATENCY, args.latency_duration)):
            if not shown:
                secs = min(secs, SEED_SECONDS)
            conns = runner.connections(phase)
            print(f"bench: {s.name:<9} {s.path} c={conns} for {secs}s ...", file=sys.stderr)
            out = runner.run(s, secs, phase)
            if isinstance(out, str):
                res.state = out
                break
            setattr(res, phase, out)
        if s.name == "floor" and isinstance(res.load, Phase):
            runner.floor_rps = res.load.rps
        by_name[s.name] = res
    results = []
    for s in todo:
        if s.name in reported:
            judge(s, by_name[s.name], runner.floor_rps)
            results.append(by_name[s.name])
    return results


def scaling(bench: Bench, results: list[Result]) -> list[ScalingRow]:
    """Voice req/s with 1, 2, 4 sync workers, each against the floor with as many."""
    args, runner = bench.args, bench.runner
    done = {r.name: r for r in results if r.load is not None}
    rows = []
    for workers in SCALING_WORKERS:
        if workers == args.workers and "floor" in done and "voice" in done:
            floor, voice = done["floor"].load, done["voice"].load
            assert floor is not None and voice is not None
            rows.append(ScalingRow(workers, floor.rps, voice.rps, voice.p99_ms, reused=True))
            continue
        for name in ("floor", "app"):
            bench.serve(name, workers)
        measured: dict[str, Phase] = {}
        for name in ("floor", "voice"):
            print(f"bench: scaling {name} with {workers} workers ...", file=sys.stderr)
            out = runner.run(BY_NAME[name], args.duration, LOAD)
            if isinstance(out, str):
                raise BenchError(f"scaling: {name} with {workers} workers: {out}")
            measured[name] = out
            if name == "floor":
                runner.floor_rps = out.rps
        rows.append(
            ScalingRow(
                workers, measured["floor"].rps, measured["voice"].rps, measured["voice"].p99_ms
            )
        )
    return rows


def answered_calls(log_path: Path) -> list[str]:
    """CallSids the app answered on /twilio/voice, from its own JSON log: wrk counts a request
    as sent even when it stopped before the server read it, so its count is not the truth."""
    sids = []
    with log_path.open(errors="replace") as log:
        for line in log:
            if line.startswith("{") and '"/twilio/voice"' in line:
                entry = json.loads(line)
                if entry.get("path") == "/twilio/voice" and entry.get("status") == 200:
                    sids.append(entry["call_sid"])
    return sids


def call_log(bench: Bench, wait_seconds: float = 30.0) -> str:
    """Did every call the voice runs answered get its call-log row? The webhooks journal the
    rows (callgateway.calls.journal) and the workers' drainers apply them: poll until all are
    there. A row still missing after `wait_seconds` is an error, not a figure."""
    import redis
    from sqlalchemy import bindparam, create_engine, text

    sids = answered_calls(bench.servers["app"].log_path)
    if not sids:
        return ""
    client = redis.Redis.from_url(bench.env["REDIS_URL"])
    engine = create_engine(bench.env["DATABASE_URL"])
    query = text("SELECT count(*) FROM calls WHERE call_sid IN :sids").bindparams(
        bindparam("sids", expanding=True)
    )

    def stored() -> int:
        with engine.connect() as conn:
            return sum(
                int(conn.execute(query, {"sids": sids[i : i + 500]}).scalar_one())
                for i in range(0, len(sids), 500)
            )

    started = time.monotonic()
    found = stored()
    # wrk stops without waiting for requests in flight: give the last ones time to land.
    while found < len(sids) and time.monotonic() - started < wait_seconds:
        time.sleep(0.2)
        found = stored()
    waited, backlog = time.monotonic() - started, client.xlen("journal:calls")
    client.close()
    engine.dispose()
    line = (
        f"call log: {found:,} of the {len(sids):,} calls the voice runs answered have their "
        f"row ({waited:.1f} s after the last request; journal backlog {backlog})"
    )
    if found != len(sids):
        raise BenchError(line)
    return line


def full(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict[str, Any]:
    todo, _ = plan(args.only)
    bench = Bench(args, stack, others={s.server for s in todo} - {"app"})
    out: dict[str, Any] = {}
    if not args.scaling:
        out["scenarios"] = scenarios(bench)
        out["gather_action"] = bench.runner.gather_action
        out["call_log"] = call_log(bench)
    if args.scaling or not args.no_scaling:
        out["scaling"] = scaling(bench, out.get("scenarios", []))
    return out


def print_full(args: argparse.Namespace, out: dict[str, Any]) -> int:
    status = OK
    results: list[Result] = out.get("scenarios", [])
    if results:
        print(scenario_table(results, args.connections, args.workers))
        for r in results:
            if r.reasons:
                print(f"  {r.name}: " + "; ".join(r.reasons))
            for phase in (r.load, r.latency):
                if phase and phase.wrapped:
                    print(
                        f"  {r.name}: sent more than {phase.distinct} distinct requests; "
                        "the rest were repeats (Twilio-style retries)"
                    )
        if out.get("call_log"):
            print(out["call_log"])
        gather = out.get("gather_action")
        if gather is not None and urlsplit(gather).path != urlsplit(TURN_PATH).path:
            print(
                f"  note: the voice reply gathers to {gather!r}, the turn scenario posts to "
                f"{TURN_PATH!r} (bench/scenarios.py TURN_PATH)"
            )
        if any(r.verdict == "ERROR" for r in results):
            status = ERRORS
    if "scaling" in out:
        print()
        print(f"scaling: voice against the floor, c={args.connections}, sync workers")
        print(scaling_table(out["scaling"], args.connections))
    report = out.get("gate")
    if report is not None:
        print()
        print(report.render())
    misses = [r.name for r in results if r.verdict == "MISS"]
    if report is not None and not (report.flat and report.fast):
        misses.append("gate")
    met = [r.name for r in results if r.verdict == "MET"]
    print()
    print(
        "targets: "
        + (f"met: {', '.join(met)}" if met else "none met")
        + (f"; MISSED: {', '.join(misses)}" if misses else "; none missed")
        + f" (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    return status


# ---------------------------------------------------------------- options and main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=int, default=10, help="seconds per load run [10]")
    p.add_argument("--latency-duration", type=int, default=5, help="seconds per latency run [5]")
    p.add_argument("--connections", type=int, default=32, help="wrk connections [32]")
    p.add_argument("--threads", type=int, default=2, help="wrk threads [2]")
    p.add_argument("--workers", type=int, default=2, help="gunicorn sync workers [2]")
    p.add_argument(
        "--only",
        choices=[s.name for s in SCENARIOS],
        action="append",
        help="run just this scenario (repeatable); the floor always runs; skips scaling/gate",
    )
    p.add_argument("--quick", action="store_true", help="3 s runs, no scaling/gate (smoke)")
    p.add_argument("--scaling", action="store_true", help="only the scaling row")
    p.add_argument("--no-scaling", action="store_true", help="skip the scaling row")
    p.add_argument("--no-gate", action="store_true", help="skip the consent-gate check")
    p.add_argument("--gate-samples", type=int, default=10_000, help="gate calls per row [10000]")
    p.add_argument("--soak", action="store_true", help="whole calls for --minutes, drift")
    p.add_argument("--minutes", type=float, default=10, help="soak length [10]")
    p.add_argument("--interval", type=int, default=60, help="soak seconds per row [60]")
    p.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ.get("CALLGATEWAY_CONFIG", "config/example.yaml")),
    )
    p.add_argument("--keep", action="store_true", help="keep the work dir (gunicorn logs)")
    p.add_argument("--output", type=Path, help="JSON results file")
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.latency_duration = 3, 2
        args.minutes = min(args.minutes, 1)
    if args.quick or args.only:
        args.no_scaling = args.no_gate = True
    if args.scaling:
        args.no_gate = True
    if (
        min(args.duration, args.latency_duration, args.interval, args.workers) < 1
        or args.minutes <= 0
        or args.connections < args.threads
        or args.threads < 1
    ):
        p.error("need durations, --workers >= 1, --minutes > 0, --connections >= --threads >= 1")
    args.config = (args.config if args.config.is_absolute() else ROOT / args.config).resolve()
    args.output = args.output or (SOAK_RESULTS if args.soak else RESULTS)
    return args


def options(args: argparse.Namespace) -> dict[str, Any]:
    keep = ("duration", "latency_duration", "connections", "threads", "workers", "db")
    soak_keep = ("minutes", "interval") if args.soak else ()
    return {
        **{k: getattr(args, k) for k in keep + soak_keep},
        "config": str(args.config),
        "worker_class": "sync",
        "connection": "close",
    }


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # same clean-up path as Ctrl-C


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path(WRK).exists():
        print(f"bench: wrk not found ({WRK}); apt-get install wrk", file=sys.stderr)
        return SETUP
    started = datetime.now(UTC)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, _sigterm)
    out: dict[str, Any] = {}
    try:
        with contextlib.ExitStack() as stack:
            try:
                if args.soak:
                    bench = Bench(args, stack, others=set())
                    out["soak"] = soak.soak(
                        bench.servers["app"], bench.ctx, bench.token, bench.workdir,
                        args.minutes, args.connections, args.threads, args.interval,
                    )  # fmt: skip
                else:
                    out = full(args, stack)
            finally:
                # A second Ctrl-C must not cut the clean-up short and orphan a server.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # The gunicorns are down: the in-process gate check has the CPUs to itself.
        signal.signal(signal.SIGINT, previous[signal.SIGINT])
        if not args.soak and not args.no_gate:
            print("bench: consent gate check ...", file=sys.stderr)
            out["gate"] = gate.measure(args.db, args.gate_samples)
    except KeyboardInterrupt:
        print("\nbench: interrupted; everything it started is stopped", file=sys.stderr)
        return INTERRUPTED
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return SETUP
    except ServiceError as exc:  # the gate check's Redis or PostgreSQL would not start
        print(f"bench: {exc}", file=sys.stderr)
        return SETUP
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    if args.soak:
        minutes = out["soak"]
        print(
            f"soak: whole calls (voice, {len(CONVERSATION)} turns, status),"
            f" {args.minutes:g} min, c={args.connections}, {args.workers} sync workers,"
            f" db={args.db}"
        )
        print(soak_table(minutes, args.connections))
        status = OK
    else:
        status = print_full(args, out)
    gate_report = out.pop("gate", None)
    write_json(
        args.output,
        started,
        options(args),
        **out,
        **({"gate": gate_report.as_json()} if gate_report else {}),
    )
    print(f"results: {args.output}")
    return status
