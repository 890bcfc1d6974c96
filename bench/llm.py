"""`python -m bench.llm`: the Gather path with the `openai` agent, and the web process shape.

A turn with a language model waits most of a second for the model; a sync gunicorn worker
is held for all of it. This run serves the gateway with two shapes, one after the other,
on the same services: `sync` (2 sync workers, the shape before issue 17) and the
Procfile's `web` process as it is written (worker class, threads; defaults of its
`${VAR:-default}`s). Each drives Gather turns at a clinic on the `openai` agent, whose
API is `bench.llm_stub` (streamed chunks: the first token after 500 ms, then one every
20 ms, 16 tokens), with 32 and 200 concurrent callers (wrk connections, closed loop: a
caller sends its next turn when it has heard the last). Target: 200 callers at p99 under
1.5 s. Then the guard rails in the same run conditions: the floor, `voice` and `turn`
(rules agent) as `python -m bench` measures them, under each shape.

Everything binds to loopback and is stopped at the end, on error and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from bench.measure import LATENCY, LOAD, Phase, Result, Runner, judge
from bench.procs import (
    HOST,
    ROOT,
    BenchError,
    Gunicorn,
    base_env,
    bench_clinic,
    free_port,
    migrate,
    start_services,
)
from bench.report import grid, ms
from bench.scenarios import BY_NAME, CONVERSATION, TURN_PATH, Context, Scenario, turn_params

TARGET_CALLERS, TARGET_P99_MS = 200, 1500
CALLERS = (32, 200)
SYNC = ("sync", ["-k", "sync"])
LLM_TURN = Scenario(
    "llm-turn", "app", TURN_PATH, turn_params, uses_calls=True, steps_per_call=len(CONVERSATION)
)
RESULTS = ROOT / "bench" / "results" / "llm.json"


def procfile_web(procfile: Path = ROOT / "Procfile") -> tuple[int, list[str]]:
    """The Procfile's web process: its worker count and the rest of its gunicorn options
    (worker class, threads...), `${VAR:-default}` read as the default, bind and app left
    out (the bench binds to loopback)."""
    for line in procfile.read_text().splitlines():
        if line.startswith("web:"):
            words = shlex.split(re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", line[4:]))
            break
    else:
        raise BenchError(f"{procfile}: no web process")
    if "gunicorn" not in words[0]:
        raise BenchError(f"{procfile}: the web process is not gunicorn")
    words = words[1:-1]  # the app factory is the last word
    workers, shape, i = 1, [], 0
    while i < len(words):
        word = words[i]
        if word in ("--bind", "-b"):
            i += 2
            continue
        if word in ("--workers", "-w"):
            workers, i = int(words[i + 1]), i + 2
            continue
        shape.append(word)
        i += 1
    return workers, shape


def llm_config(config: Path, out: Path) -> tuple[Path, str, str]:
    """A copy of the config with a second clinic that does not record on the openai agent;
    the first stays on rules for the guard rails. Returns the path, the openai clinic's
    number and its country."""
    import phonenumbers

    raw = yaml.safe_load(config.read_text())
    rules = bench_clinic(config).id
    for clinic in raw["clinics"]:
        if clinic["id"] != rules and not (clinic.get("recording") or {}).get("enabled"):
            # A long deadline: the bench measures queueing, not the apology.
            clinic["agent"] = {"kind": "openai", "model": "gpt-4o-mini", "timeout_seconds": 30}
            number = clinic["numbers"][0]
            country = phonenumbers.region_code_for_number(phonenumbers.parse(number))
            out.write_text(yaml.safe_dump(raw, sort_keys=False))
            return out, number, country or "US"
    raise BenchError(f"{config}: needs two clinics that do not record")


def start_stub(port: int, stack: contextlib.ExitStack, log: Path) -> str:
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.llm_stub", "--port", str(port)],
            cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    stack.callback(proc.kill)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return f"http://{HOST}:{port}/v1"
        time.sleep(0.1)
    raise BenchError(f"the LLM stub did not start; see {log}")


class Shape:
    """One web process shape, served and measured."""

    def __init__(self, name: str, workers: int, args: list[str]) -> None:
        self.name, self.workers, self.args = name, workers, args

    @property
    def label(self) -> str:
        return f"{self.name} (-w {self.workers} {' '.join(self.args)})"


def measure(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict[str, Any]:
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cg-bench-llm-")))
    config, llm_number, llm_country = llm_config(args.config, workdir / "config.yaml")
    rules_clinic = bench_clinic(config)
    print(f"bench.llm: starting services in {workdir}", file=sys.stderr)
    extra = start_services(config, "sqlite", workdir, stack)
    stub = start_stub(free_port(), stack, workdir / "stub.log")
    ports = {"app": free_port(), "floor": free_port()}
    token = "bench-" + secrets.token_hex(16)
    env = base_env(extra, token, ports["app"], config)
    env.update(OPENAI_BASE_URL=stub, OPENAI_API_KEY="sk-bench-not-a-key")
    migrate(env)
    workers, procfile_args = procfile_web()
    shapes = [Shape(SYNC[0], args.workers, SYNC[1]), Shape("procfile", workers, procfile_args)]
    out: dict[str, Any] = {"llm": [], "rails": [], "shapes": [s.label for s in shapes]}
    for shape in shapes:
        servers: dict[str, Gunicorn] = {}
        for name in ("floor", "app"):
            g = Gunicorn(
                name, ports[name], shape.workers, env, workdir / f"{shape.name}-{name}.log",
                shape.args,
            )  # fmt: skip
            stack.callback(g.stop)
            g.wait_ready()
            servers[name] = g
        run_args = argparse.Namespace(connections=32, threads=2, wrk_timeout=30)
        ctx = Context(to_number=llm_number, to_country=llm_country)
        runner = Runner(run_args, ctx, token, servers, workdir, env["REDIS_URL"])
        # The LLM turns first, while the database is small.
        for callers in CALLERS:
            if shape.name == "sync" and callers > CALLERS[0]:
                out["llm"].append({"shape": shape.label, "callers": callers, "skipped": True})
                continue  # 80 s a turn: every request would time out
            run_args.connections = 32
            print(f"bench.llm: {shape.name}: calls for {callers} callers ...", file=sys.stderr)
            seeded = runner.run(BY_NAME["voice"], 3, LOAD)
            if isinstance(seeded, str):
                raise BenchError(f"voice (seeding calls): {seeded}")
            if callers == CALLERS[0]:
                # Warm: each worker's first turn imports the SDK. One connection per
                # worker, so no request is left queued behind the warm-up.
                run_args.connections = shape.workers
                runner.run(LLM_TURN, 3, LOAD)
            run_args.connections = callers
            # Long enough to see whole turns of a queue: 32 callers on 2 sync workers wait
            # over 10 s a turn.
            secs = max(args.duration, 30) if shape.name == "sync" else args.duration
            print(f"bench.llm: {shape.name}: {callers} callers for {secs}s ...", file=sys.stderr)
            got = runner.run(LLM_TURN, secs, LOAD)
            if isinstance(got, str):
                raise BenchError(f"llm-turn: {got}")
            out["llm"].append({"shape": shape.label, "callers": callers, **asdict(got)})
        # The guard rails, as python -m bench measures them, under this shape.
        ctx.to_number = rules_clinic.numbers[0]
        run_args.connections, rails = 32, {}
        for name in ("floor", "voice", "turn"):
            res = Result(name, BY_NAME[name].server, BY_NAME[name].path, "")
            for phase, secs in ((LOAD, args.rail_duration), (LATENCY, 5)):
                print(f"bench.llm: {shape.name}: {name} {phase} ...", file=sys.stderr)
                got = runner.run(BY_NAME[name], secs, phase)
                if isinstance(got, str):
                    raise BenchError(f"{name}: {got}")
                setattr(res, phase, got)
            if name == "floor":
                runner.floor_rps = res.rps
            judge(BY_NAME[name], res, runner.floor_rps)
            rails[name] = res
        out["rails"].append({"shape": shape.label, "results": rails})
        for g in servers.values():
            g.stop()
    return out


def render(out: dict[str, Any]) -> tuple[str, bool]:
    head = ("shape", "callers", "turns/s", "p50 ms", "p99 ms", "timeouts", "non-2xx", "target")
    rows: list[tuple[str, ...]] = [head]
    met = False
    for row in out["llm"]:
        if row.get("skipped"):
            rows.append((row["shape"], str(row["callers"]), "-", "-", "-", "-", "-", "skipped"))
            continue
        target = ""
        if row["callers"] == TARGET_CALLERS:
            ok = row["p99_ms"] < TARGET_P99_MS and not row["socket_errors"] and not row["non_2xx"]
            met = met or ok
            target = f"p99<{TARGET_P99_MS}ms {'MET' if ok else 'MISS'}"
        rows.append((
            row["shape"], str(row["callers"]), f"{row['rps']:.1f}",
            ms(row["p50_ms"]), ms(row["p99_ms"]), str(row["socket_errors"]),
            str(row["non_2xx"]), target,
        ))  # fmt: skip
    lines = [
        "Gather turns, openai agent against the stub (first token 500 ms, then 20 ms a token)",
        grid(rows, left=(0, 7)),
        "",
        "Guard rails, same run: req/s at 32 connections (x floor), p99 ms at one request per "
        "worker",
    ]
    rail_rows: list[tuple[str, ...]] = [
        ("shape", "floor req/s", "voice req/s", "voice p99", "turn req/s", "turn p99", "verdicts")
    ]
    for entry in out["rails"]:
        r = entry["results"]

        def rps(name: str, r: dict[str, Result] = r) -> str:
            res = r[name]
            ratio = f" ({res.ratio:.2f}x)" if res.ratio else ""
            return f"{res.rps:,.0f}{ratio}"

        def p99(name: str, r: dict[str, Result] = r) -> str:
            lat = r[name].latency
            return ms(lat.p99_ms if lat else None)

        verdicts = ", ".join(f"{n} {r[n].verdict}" for n in ("voice", "turn"))
        rail_rows.append(
            (entry["shape"], rps("floor"), rps("voice"), p99("voice"), rps("turn"), p99("turn"),
             verdicts)
        )  # fmt: skip
    lines.append(grid(rail_rows, left=(0, 6)))
    load = os.getloadavg()[0]
    lines.append(f"(load average {load:.1f} on {os.cpu_count()} CPUs)")
    return "\n".join(lines), met


def to_json(value: Any) -> Any:
    if isinstance(value, Result | Phase):
        return asdict(value)
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.llm", description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=int, default=20, help="seconds per LLM run [20]")
    p.add_argument("--rail-duration", type=int, default=10, help="seconds per rail run [10]")
    p.add_argument("--workers", type=int, default=2, help="sync workers to compare with [2]")
    p.add_argument("--config", type=Path, default=ROOT / "config" / "example.yaml")
    args = p.parse_args(argv)
    try:
        with contextlib.ExitStack() as stack:
            out = measure(args, stack)
    except BenchError as exc:
        print(f"bench.llm: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    text, met = render(out)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(to_json(out), indent=2, default=str))
    print(f"target (200 callers, p99 < 1.5 s): {'met' if met else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
