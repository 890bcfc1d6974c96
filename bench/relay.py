"""`python -m bench.relay`: many concurrent ConversationRelay sessions against one relay
process (the rules agent), each sending a final `prompt` every few seconds.

It starts its own Redis and a fresh SQLite database, serves `callgateway relay` as the
Procfile does, opens the calls the way the incoming-call webhook does (`flow.begin`: live
state, call-log row, opening line), then connects the sessions (signed handshakes and
`setup`, as Twilio does) and measures, per prompt, the time to the first `text` token, and
the relay process's memory per open session. Everything it starts is stopped on exit.

The load generator runs on the same machine and in one Python process: at thousands of
sessions it competes with the relay for the two cores, so the figures are an upper bound
on what the relay itself adds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect

from devtools.services import free_port, start_redis

ROOT = Path(__file__).resolve().parents[1]
CLINIC = "spree-hausarzt"  # records nothing: the relay opens right after the gate
PROMPT = "What are your opening hours?"  # always understood, answered from config
TARGET_P99_MS = 50.0
TARGET_SESSIONS = 2000
CALLGATEWAY = str(Path(sys.executable).with_name("callgateway"))  # the venv's command


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)  # ms, prompt -> first token
    errors: int = 0
    ended: int = 0
    cpu_seconds: float = 0.0  # the relay process's, over the measured window


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _config(workdir: Path) -> Path:
    data = yaml.safe_load((ROOT / "config" / "example.yaml").read_text())
    for clinic in data["clinics"]:
        if clinic["id"] == CLINIC:
            clinic["relay"] = {"enabled": True}
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _open_calls(env: dict[str, str], count: int) -> list[tuple[str, str, str]]:
    """`count` calls opened for the AI as the incoming-call webhook opens them."""
    from callgateway.calls import flow
    from callgateway.calls import log as call_log
    from callgateway.config.settings import Settings
    from callgateway.wiring import bootstrap

    services = bootstrap(Settings.from_env(env))
    clinic = services.directory.by_id(CLINIC)
    assert clinic is not None
    calls = []
    for n in range(count):
        call_sid = "CA" + secrets.token_hex(16)
        cli = f"+4915112{n:06d}"
        start = call_log.CallStart(call_sid, cli, clinic.numbers[0], clinic, services.clock())
        if not flow.begin(services, clinic, row=call_log.start_values(services.config, start)):
            raise RuntimeError("Redis refused the call's live state")
        calls.append((call_sid, cli, clinic.numbers[0]))
    services.redis.close()
    return calls


async def _session(
    url: str,
    signature: str,
    account: str,
    call: tuple[str, str, str],
    every: float,
    until: float,
    measure_from: float,
    load: Load,
    opened: asyncio.Event,
) -> None:
    call_sid, cli, called = call
    try:
        async with connect(
            url, additional_headers={"X-Twilio-Signature": signature}, open_timeout=60
        ) as ws:
            await ws.send(json.dumps(_setup(account, call_sid, cli, called)))
            opened.set()
            await asyncio.sleep(random.uniform(0, every))  # callers don't speak in step
            while time.monotonic() < until:
                started = time.perf_counter()
                await ws.send(json.dumps({"type": "prompt", "voicePrompt": PROMPT, "last": True}))
                first = await _reply(ws)
                if first is None:
                    load.ended += 1
                    return
                if time.monotonic() >= measure_from:
                    load.latencies.append((first - started) * 1000)
                await asyncio.sleep(max(0.0, every - (time.perf_counter() - started)))
    except Exception:
        load.errors += 1
        opened.set()


async def _reply(ws: ClientConnection) -> float | None:
    """The time of the reply's first token; reads on to its last. None: `end`."""
    first: float | None = None
    while True:
        message = json.loads(await ws.recv())
        if message["type"] == "end":
            return None
        if message["type"] == "text":
            first = first or time.perf_counter()
            if message.get("last"):
                return first


def _setup(account: str, call_sid: str, cli: str, called: str) -> dict[str, Any]:
    return {
        "type": "setup",
        "sessionId": "VX" + secrets.token_hex(16),
        "accountSid": account,
        "callSid": call_sid,
        "from": cli,
        "to": called,
        "direction": "inbound",
        "callStatus": "IN-PROGRESS",
        "customParameters": {},
    }


async def _drive(
    url: str, token: str, account: str, calls: list[tuple[str, str, str]], args: Any, pid: int
) -> tuple[Load, float]:
    signature = RequestValidator(token).compute_signature(url, {})
    load = Load()
    ramp = time.monotonic()
    until = ramp + args.ramp + args.warmup + args.seconds
    measure_from = ramp + args.ramp + args.warmup
    before = _rss_kib(pid)
    tasks = []
    per_batch = max(1, len(calls) // max(1, int(args.ramp * 10)))
    for i in range(0, len(calls), per_batch):
        for call in calls[i : i + per_batch]:
            opened = asyncio.Event()
            tasks.append(
                asyncio.create_task(
                    _session(
                        url, signature, account, call, args.every, until, measure_from, load, opened
                    )
                )
            )
        await asyncio.sleep(0.1)
    await asyncio.sleep(max(0.0, ramp + args.ramp + args.warmup / 2 - time.monotonic()))
    per_session = (_rss_kib(pid) - before) / max(1, len(calls))
    await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
    cpu_from = _cpu_seconds(pid)
    await asyncio.sleep(max(0.0, until - time.monotonic()))
    load.cpu_seconds = _cpu_seconds(pid) - cpu_from
    await asyncio.gather(*tasks)
    return load, per_session


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.relay")
    parser.add_argument("--sessions", type=int, default=TARGET_SESSIONS)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between prompts")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured time")
    parser.add_argument("--ramp", type=float, default=20.0, help="seconds to open sessions")
    parser.add_argument("--warmup", type=float, default=10.0)
    args = parser.parse_args(argv)
    token = "bench-" + secrets.token_hex(16)
    account = "AC" + "0" * 32
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cg-relay-")))
        redis_service = start_redis(free_port(), workdir / "redis")
        stack.callback(redis_service.stop)
        port = free_port()
        env = {
            **os.environ,
            "CALLGATEWAY_ENV": "dev",
            "CALLGATEWAY_CONFIG": str(_config(workdir)),
            "DATABASE_URL": f"sqlite:///{workdir / 'relay.db'}",
            "REDIS_URL": redis_service.url,
            "TWILIO_AUTH_TOKEN": token,
            "TWILIO_ACCOUNT_SID": account,
            "RELAY_PUBLIC_URL": f"ws://127.0.0.1:{port}",
        }
        subprocess.run(
            [CALLGATEWAY, "db", "upgrade"],
            env=env,
            check=True,
            capture_output=True,
        )
        log = (workdir / "relay.log").open("ab")
        relay = subprocess.Popen(
            [CALLGATEWAY, "relay", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        stack.callback(lambda: (relay.terminate(), relay.wait(15)))
        _wait_healthy(port, relay)
        calls = _open_calls(env, args.sessions)
        url = f"ws://127.0.0.1:{port}/twilio/relay"
        load, per_session = asyncio.run(_drive(url, token, account, calls, args, relay.pid))
    _report(args, load, per_session)
    return 0


def _wait_healthy(port: int, relay: subprocess.Popen[bytes]) -> None:
    import urllib.request

    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except OSError:
            if relay.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the relay did not start") from None
            time.sleep(0.2)


def _report(args: Any, load: Load, per_session_kib: float) -> None:
    lat = load.latencies
    p50, p99 = _pct(lat, 0.50), _pct(lat, 0.99)
    rate = len(lat) / args.seconds if args.seconds else 0.0
    verdict = (
        "met" if lat and p99 < TARGET_P99_MS and args.sessions >= TARGET_SESSIONS else "missed"
    )
    print(
        f"relay, rules agent: {args.sessions} sessions, a prompt every {args.every:g} s "
        f"({rate:.0f} prompts/s measured over {args.seconds:g} s, {datetime.now(UTC):%Y-%m-%d})"
    )
    print(
        f"  prompt -> first text token: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
        f"(target p99 < {TARGET_P99_MS:g} ms at {TARGET_SESSIONS} sessions: {verdict})"
    )
    print(
        f"  mean {statistics.fmean(lat):.1f} ms over {len(lat)} prompts" if lat else "  no prompts"
    )
    print(f"  relay memory per open session: {per_session_kib:.0f} KiB")
    if lat:
        # Load-independent: what one prompt costs the relay, whoever else shares the cores.
        cpu_ms = load.cpu_seconds * 1000 / len(lat)
        print(
            f"  relay CPU per prompt: {cpu_ms:.2f} ms "
            f"(one core serves ~{1000 / cpu_ms:.0f} prompts/s at most)"
        )
    print(f"  sessions that failed: {load.errors}, ended by the relay: {load.ended}")


if __name__ == "__main__":
    sys.exit(main())
