"""`python -m bench`: load CallGateway's webhooks and a bare Flask floor, compare the two.

One run starts its own Redis, S3 endpoint (moto) and database (a fresh SQLite file, or
PostgreSQL with --db postgres), migrates it, serves the gateway and the floor with the
same gunicorn settings, drives each scenario with wrk over loopback, prints a table and
writes bench/results/latest.json. Everything it starts is stopped on exit, error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import html
import http.client
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import phonenumbers

from bench.scenarios import BY_NAME, SCENARIOS, TURN_PATH, Context, Scenario
from bench.signing import signed_requests, write_data_file

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LUA = BENCH / "replay.lua"
RESULTS = BENCH / "results" / "latest.json"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
HOST = "127.0.0.1"  # loopback only: the bench never sends traffic anywhere else

MIN_REQUESTS = 20_000
FLOOR_REQUESTS = 2_000  # the floor ignores the form, so distinct SIDs buy nothing there
SEED_SECONDS = 3  # voice run that creates calls when only `turn`/`status` is asked for


# moto takes any credentials and boto3 insists on some: never the caller's real ones.
BENCH_AWS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}


class BenchError(RuntimeError):
    """Set-up failed; the message says what and where the log is."""


@dataclass
class Result:
    name: str
    server: str
    path: str
    target: str
    state: str = "ok"  # or "n/a (...)": not measured, and why
    rps: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    requests: int = 0
    non_2xx: int = 0
    socket_errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    probe_status: int | None = None  # one request before the load, outside the numbers
    # The app's own per-request latency (its "webhook" log lines): the time spent in the
    # handler, without wrk's queueing behind busy sync workers.
    server_p50_ms: float | None = None
    server_p99_ms: float | None = None
    distinct_requests: int = 0
    wrapped: bool = False  # sent more requests than distinct ones: the tail were repeats
    ratio: float | None = None
    verdict: str = "report"  # PASS | FAIL | report | n/a
    reasons: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- processes


class Gunicorn:
    """A gunicorn master in its own session, so we (not the terminal) decide when it stops."""

    def __init__(
        self, name: str, target: str, port: int, workers: int, env: dict[str, str], log_path: Path
    ) -> None:
        self.name, self.port, self.log_path = name, port, log_path
        cmd = [
            sys.executable, "-m", "gunicorn",
            "-w", str(workers), "-k", "sync",
            "--bind", f"{HOST}:{port}",
            "--log-level", "warning",
            target,
        ]  # fmt: skip
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 60.0) -> None:
        # The master binds before workers import the app, so a TCP connect proves nothing:
        # wait for an HTTP answer (any status) from a booted worker.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(
                    f"{self.name} gunicorn exited ({self.proc.returncode}):\n" + tail(self.log_path)
                )
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                conn.close()
                return
            time.sleep(0.2)
        raise BenchError(
            f"{self.name} gunicorn not answering after {timeout:.0f}s:\n" + tail(self.log_path)
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # graceful: the master stops its workers
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)  # our own session only
                self.proc.wait(5)
        self._log.close()


def _die_with_parent() -> None:
    # Own session keeps the terminal's Ctrl-C away from gunicorn (we stop it in order);
    # the parent-death signal keeps it from outliving a bench that was SIGKILLed.
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def start_services(
    args: argparse.Namespace, workdir: Path, stack: contextlib.ExitStack
) -> dict[str, str]:
    """Our own Redis, S3 and database: a bench run never touches dev data, nor dev's ours."""
    from callgateway import devservices as ds

    def keep(service: ds.Service) -> ds.Service:
        stack.callback(service.stop)
        return service

    redis = keep(ds.start_redis(ds.free_port(), workdir / "redis"))
    moto = keep(ds.start_moto(ds.free_port(), workdir / "moto"))
    s3_env = {"AWS_ENDPOINT_URL": moto.url, **BENCH_AWS}
    with contextlib.redirect_stdout(sys.stderr):  # stdout is for the table
        ds.create_buckets(args.config, s3_env)
    if args.db == "postgres":
        workdir.chmod(0o711)  # as root, PostgreSQL runs as `postgres` and must reach its dir
        db_url = keep(ds.start_postgres(ds.free_port(), workdir / "pg")).url
    else:
        db_url = f"sqlite:///{workdir / 'bench.db'}"
    return {"DATABASE_URL": db_url, "REDIS_URL": redis.url, **s3_env}


def migrate(env: dict[str, str]) -> None:
    """`callgateway db upgrade`, as an operator would run it, against the bench database."""
    cli = str(Path(sys.executable).parent / "callgateway")

    def call(*words: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [cli, *words], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )

    if Path(cli).exists() and call("db", "upgrade", "--help").returncode == 0:
        done = call("db", "upgrade")
        if done.returncode != 0:
            raise BenchError(f"callgateway db upgrade failed:\n{done.stdout}{done.stderr}")
    else:  # a CLI without the subcommand: the same migrations through the Python API
        from callgateway.db.migrate import upgrade

        upgrade(env["DATABASE_URL"])


def free_port() -> int:
    from callgateway import devservices

    return int(devservices.free_port())


def base_env(services: dict[str, str], token: str, app_port: int, config: Path) -> dict[str, str]:
    # A minimal environment: nothing from the caller's shell (cloud keys, a real
    # OPENAI_API_KEY, a production REDIS_URL) can leak into the run.
    dead = f"http://{HOST}:9"  # discard port: any outbound API call fails fast, locally
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ")}
    env.update(services)
    env.update(
        CALLGATEWAY_ENV="test",
        CALLGATEWAY_CONFIG=str(config),
        TWILIO_AUTH_TOKEN=token,
        PUBLIC_BASE_URL=f"http://{HOST}:{app_port}",
        TWILIO_API_BASE=dead,
        OPENAI_BASE_URL=dead,
        AWS_DEFAULT_REGION="eu-west-2",
        PYTHONUNBUFFERED="1",
    )
    return env


# ---------------------------------------------------------------- load


def clinic_number(config_path: Path) -> tuple[str, str]:
    """The first UK clinic's first number (any clinic if none is in the UK) and its country."""
    from callgateway.config import load_config

    clinics = load_config(config_path).clinics
    if not clinics:
        raise BenchError(f"{config_path}: no clinics to call")
    clinic = next((c for c in clinics if c.region == "uk"), clinics[0])
    number = clinic.numbers[0]
    country = phonenumbers.region_code_for_number(phonenumbers.parse(number)) or "GB"
    return number, country


def probe(port: int, path: str, signature: str, body: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        })  # fmt: skip
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def run_wrk(port: int, data: Path, seconds: int, connections: int, threads: int) -> dict[str, Any]:
    cmd = [
        WRK, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
        "--latency", "-s", str(LUA), f"http://{HOST}:{port}/", "--", str(data), str(threads),
    ]  # fmt: skip
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    except subprocess.TimeoutExpired:  # run() has killed it; the bench stays bounded
        raise BenchError(f"wrk did not finish within {seconds + 60}s") from None
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line.removeprefix("BENCH_JSON "))
    raise BenchError(f"wrk gave no result (exit {done.returncode}):\n{done.stdout}{done.stderr}")


def sent_lines(sent_by_thread: list[int], total: int) -> list[int]:
    """Indexes of data lines wrk sent: thread k sends k, k+T, ... (see replay.lua)."""
    threads = len(sent_by_thread)
    out: set[int] = set()
    for k, count in enumerate(sent_by_thread):
        own = range(k, total, threads)
        out.update(own[j % len(own)] for j in range(min(count, len(own))))
    return sorted(out)


class Runner:
    def __init__(
        self,
        args: argparse.Namespace,
        ctx: Context,
        token: str,
        ports: dict[str, int],
        workdir: Path,
    ) -> None:
        self.args = args
        self.ctx = ctx
        self.token = token
        self.ports = ports
        self.workdir = workdir
        self.floor_rps: float | None = None
        self.gather_action: str | None = None

    def size(self, scenario: Scenario, seconds: int) -> int:
        if scenario.server == "floor":
            return FLOOR_REQUESTS
        if scenario.uses_calls:
            return max(len(self.ctx.call_sids), 1)  # one request per real call, then repeats
        # Enough distinct requests that the gateway cannot outrun them: it is no faster
        # than the floor, so floor req/s x seconds (+10%) is an upper bound.
        guess = (self.floor_rps or 5_000) * seconds * 1.1
        return max(MIN_REQUESTS, math.ceil(guess))

    def run(self, scenario: Scenario, seconds: int) -> Result:
        res = Result(scenario.name, scenario.server, scenario.path, scenario.target_text())
        port = self.ports[scenario.server]
        base = f"http://{HOST}:{port}"
        n = self.size(scenario, seconds)
        params = [scenario.params(self.ctx, i) for i in range(n)]
        reqs = list(signed_requests(self.token, base, scenario.path, params))
        data = self.workdir / f"{scenario.name}.dat"
        write_data_file(data, reqs)

        # One signed request first, outside the measurement: a 404 means the app has no
        # such endpoint yet, which is reported, not counted as an error.
        extra = next(
            signed_requests(self.token, base, scenario.path, [scenario.params(self.ctx, n)])
        )
        status, reply = probe(port, extra.path, extra.signature, extra.body)
        res.probe_status = status
        if status == 404:
            res.state = res.verdict = "n/a (endpoint missing)"
            return res
        if scenario.name == "voice":
            # Where the app really sends the caller's speech, to check TURN_PATH against.
            m = re.search(r'<Gather\b[^>]*\baction="([^"]*)"', reply)
            self.gather_action = html.unescape(m.group(1)) if m else None

        out = run_wrk(port, data, seconds, self.args.connections, self.args.threads)
        secs = out["duration_us"] / 1e6
        lat = out["latency_us"]
        res.requests = out["requests"]
        res.rps = out["requests"] / secs if secs else 0.0
        res.p50_ms, res.p90_ms, res.p99_ms, res.max_ms = (
            lat[k] / 1000 for k in ("p50", "p90", "p99", "max")
        )
        res.statuses = {k: v for k, v in sorted(out["statuses"].items())}
        res.non_2xx = sum(v for k, v in res.statuses.items() if not k.startswith("2"))
        e = out["errors"]
        res.socket_errors = e["connect"] + e["read"] + e["write"] + e["timeout"]
        res.distinct_requests = n
        res.wrapped = scenario.server == "app" and sum(out["sent_by_thread"]) > n
        if res.statuses and set(res.statuses) == {"404"}:
            res.state = res.verdict = "n/a (endpoint missing)"
        if scenario.name == "voice":
            # Later scenarios act on exactly the calls this run created.
            self.ctx.call_sids = [
                params[i]["CallSid"] for i in sent_lines(out["sent_by_thread"], n)
            ]
        return res


def add_server_latency(results: dict[str, Result], log: Path) -> None:
    """Best effort: read the app's JSON log lines; a format change just leaves these empty."""
    by_path: dict[str, list[float]] = {}
    with contextlib.suppress(OSError), log.open(errors="replace") as fh:
        for line in fh:
            if '"webhook"' not in line:
                continue
            with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
                rec = json.loads(line)
                by_path.setdefault(rec["path"], []).append(float(rec["latency_ms"]))
    for res in results.values():
        values = sorted(by_path.get(urlsplit(res.path).path, []))
        if res.server == "app" and values:
            res.server_p50_ms = values[len(values) // 2]
            res.server_p99_ms = values[min(len(values) - 1, int(len(values) * 0.99))]


def judge(scenario: Scenario, res: Result, floor_rps: float | None) -> None:
    if res.state != "ok":
        return
    if floor_rps and scenario.server != "floor":
        res.ratio = res.rps / floor_rps
    if not scenario.has_target:
        return
    if scenario.min_ratio is not None:
        if res.ratio is None:
            res.reasons.append("no floor to compare with")
        elif res.ratio < scenario.min_ratio:
            res.reasons.append(f"ratio {res.ratio:.2f} < {scenario.min_ratio:g}")
    if scenario.max_p99_ms is not None and res.p99_ms >= scenario.max_p99_ms:
        res.reasons.append(f"p99 {res.p99_ms:.1f}ms >= {scenario.max_p99_ms:g}ms")
    # A fast stream of 403s or 500s is not a pass.
    if res.non_2xx:
        res.reasons.append(f"{res.non_2xx} non-2xx {res.statuses}")
    if res.socket_errors:
        res.reasons.append(f"{res.socket_errors} socket errors")
    res.verdict = "FAIL" if res.reasons else "PASS"


# ---------------------------------------------------------------- report


def table(results: list[Result]) -> str:
    head = ("scenario", "req/s", "p50 ms", "p99 ms", "non-2xx", "x floor", "target", "result")
    rows = [head]
    for r in results:
        if r.state != "ok":
            rows.append((r.name, "-", "-", "-", "-", "-", r.target, r.state))
            continue
        rows.append((
            r.name, f"{r.rps:,.0f}", f"{r.p50_ms:.1f}", f"{r.p99_ms:.1f}", str(r.non_2xx),
            "1.00" if r.server == "floor" else (f"{r.ratio:.2f}" if r.ratio else "-"),
            r.target, r.verdict,
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(
            c.ljust(w) if i in (0, 6, 7) else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def git_rev() -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() or None
    return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=int, default=10, help="seconds per scenario [10]")
    p.add_argument("--connections", type=int, default=32, help="wrk connections [32]")
    p.add_argument("--threads", type=int, default=2, help="wrk threads [2]")
    p.add_argument("--workers", type=int, default=2, help="gunicorn sync workers [2]")
    p.add_argument(
        "--only",
        choices=[s.name for s in SCENARIOS],
        action="append",
        help="run just this scenario (repeatable); the floor always runs",
    )
    p.add_argument("--quick", action="store_true", help="3 s per scenario (smoke test)")
    p.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ.get("CALLGATEWAY_CONFIG", "config/example.yaml")),
    )
    p.add_argument("--keep", action="store_true", help="keep the work dir (gunicorn logs)")
    p.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    args = p.parse_args(argv)
    if args.quick:
        args.duration = 3
    if args.duration < 1 or args.connections < args.threads or args.threads < 1:
        p.error("need --duration >= 1 and --connections >= --threads >= 1")
    args.config = (args.config if args.config.is_absolute() else ROOT / args.config).resolve()
    return args


def plan(only: list[str] | None) -> tuple[list[Scenario], set[str]]:
    """Scenarios to run, in order, and those to report (a seed voice run is not reported)."""
    wanted = set(only or BY_NAME)
    wanted.add("floor")  # every ratio is against it
    # turn and status act on calls, so voice runs (briefly, unreported) to make some.
    seed = {"voice"} if any(BY_NAME[n].uses_calls for n in wanted) else set()
    run = wanted | seed
    return [s for s in SCENARIOS if s.name in run], wanted


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # same clean-up path as Ctrl-C


def bench(args: argparse.Namespace, stack: contextlib.ExitStack) -> tuple[list[Result], Runner]:
    """Start everything (registering its stop on `stack`), run the plan, judge it."""
    from callgateway.config import ConfigError
    from callgateway.devservices import ServiceError

    scenarios, reported = plan(args.only)
    needs_app = any(s.server == "app" for s in scenarios)
    token = "bench-" + secrets.token_hex(16)  # never the dev token: nothing else can sign
    if args.keep:  # logs and data files stay for a post-mortem
        workdir = Path(tempfile.mkdtemp(prefix="cg-bench-"))
        print(f"bench: keeping {workdir}", file=sys.stderr)
    else:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cg-bench-")))
    try:
        number, country = clinic_number(args.config)
        ports = {"floor": free_port()}
        env_extra: dict[str, str] = {}
        if needs_app:
            print(f"bench: starting services (db={args.db}) in {workdir}", file=sys.stderr)
            env_extra = start_services(args, workdir, stack)
            ports["app"] = free_port()
        env = base_env(env_extra, token, ports.get("app", 0), args.config)
        if needs_app:
            migrate(env)
    except (ConfigError, ServiceError) as exc:
        raise BenchError(str(exc)) from None
    servers = {"floor": "bench.floor:create_app()", "app": "callgateway.app:create_app()"}
    for name, port in ports.items():
        log = workdir / f"gunicorn-{name}.log"
        g = Gunicorn(name, servers[name], port, args.workers, env, log)
        stack.callback(g.stop)
        g.wait_ready()

    ctx = Context(to_number=number, to_country=country)
    runner = Runner(args, ctx, token, ports, workdir)
    by_name: dict[str, Result] = {}
    for s in scenarios:
        secs = args.duration if s.name in reported else min(args.duration, SEED_SECONDS)
        if s.uses_calls and not ctx.call_sids:
            state = "n/a (no calls from voice)"
            res = Result(s.name, s.server, s.path, s.target_text(), state=state, verdict="n/a")
        else:
            print(f"bench: {s.name:<7} {s.path} for {secs}s ...", file=sys.stderr)
            res = runner.run(s, secs)
        if s.name == "floor" and res.state == "ok":
            runner.floor_rps = res.rps
        by_name[s.name] = res
    if "app" in ports:
        add_server_latency(by_name, workdir / "gunicorn-app.log")
    results = []
    for s in scenarios:
        if s.name in reported:
            judge(s, by_name[s.name], runner.floor_rps)
            results.append(by_name[s.name])
    return results, runner


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path(WRK).exists():
        print(f"bench: wrk not found ({WRK}); apt-get install wrk", file=sys.stderr)
        return 2
    started = datetime.now(UTC)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        with contextlib.ExitStack() as stack:
            try:
                results, runner = bench(args, stack)
            finally:
                # A second Ctrl-C must not cut the clean-up short and orphan a server.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except KeyboardInterrupt:
        print("\nbench: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    print(table(results))
    for r in results:
        if r.reasons:
            print(f"  {r.name}: " + "; ".join(r.reasons))
        if r.wrapped:
            print(
                f"  {r.name}: sent more than {r.distinct_requests} distinct requests; "
                "the rest were repeats (Twilio-style retries)"
            )
    measured = [r for r in results if r.server_p99_ms is not None]
    if measured:
        print(
            "  in-app handler latency (from its log, no queueing): "
            + ", ".join(
                f"{r.name} p50 {r.server_p50_ms:.1f} / p99 {r.server_p99_ms:.1f} ms"
                for r in measured
            )
        )
    gather = runner.gather_action
    if gather is not None and urlsplit(gather).path != urlsplit(TURN_PATH).path:
        print(
            f"  note: the voice reply gathers to {gather!r}, the turn scenario posts to "
            f"{TURN_PATH!r} (bench/scenarios.py TURN_PATH)"
        )
    write_json(args, results, started, gather)
    print(f"results: {args.output}")
    return 1 if any(r.verdict == "FAIL" for r in results) else 0


def write_json(
    args: argparse.Namespace, results: list[Result], started: datetime, gather: str | None
) -> None:
    doc = {
        "started_at": started.isoformat(timespec="seconds"),
        "gather_action_seen": gather,
        "git": git_rev(),
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "machine": platform.machine(),
            # Other work on the box skews req/s; the ratio to the floor much less so.
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "options": {
            "duration": args.duration,
            "connections": args.connections,
            "threads": args.threads,
            "workers": args.workers,
            "db": args.db,
            "config": str(args.config),
            "worker_class": "sync",
            "connection": "close",
        },
        "scenarios": [asdict(r) for r in results],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2) + "\n")
