"""Driving wrk: one run over a data file of signed requests, and one probe request."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.procs import HOST, BenchError

WRK = shutil.which("wrk") or "/usr/bin/wrk"
LUA = Path(__file__).resolve().parent / "replay.lua"


@dataclass
class WrkOut:
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int]
    socket_errors: int
    sent_by_thread: list[int]

    @property
    def non_2xx(self) -> int:
        return sum(v for k, v in self.statuses.items() if not k.startswith("2"))


def parse(line: str) -> WrkOut:
    """The BENCH_JSON line replay.lua writes at the end of a run."""
    out = json.loads(line.removeprefix("BENCH_JSON "))
    secs = out["duration_us"] / 1e6
    lat = out["latency_us"]
    e = out["errors"]
    return WrkOut(
        seconds=secs,
        requests=out["requests"],
        rps=out["requests"] / secs if secs else 0.0,
        p50_ms=lat["p50"] / 1000,
        p90_ms=lat["p90"] / 1000,
        p99_ms=lat["p99"] / 1000,
        max_ms=lat["max"] / 1000,
        statuses=dict(sorted(out["statuses"].items())),
        socket_errors=e["connect"] + e["read"] + e["write"] + e["timeout"],
        sent_by_thread=[int(n) for n in out["sent_by_thread"]],
    )


def run_wrk(
    port: int, data: Path, seconds: int, connections: int, threads: int, timeout: int = 5
) -> WrkOut:
    threads = min(threads, connections)
    cmd = [
        WRK, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", f"{timeout}s",
        "--latency", "-s", str(LUA), f"http://{HOST}:{port}/", "--", str(data), str(threads),
    ]  # fmt: skip
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    except subprocess.TimeoutExpired:  # run() has killed it; the bench stays bounded
        raise BenchError(f"wrk did not finish within {seconds + 60}s") from None
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return parse(line)
    raise BenchError(f"wrk gave no result (exit {done.returncode}):\n{done.stdout}{done.stderr}")


def sent_lines(sent_by_thread: list[int], total: int) -> list[int]:
    """Indexes of data lines wrk sent: thread k sends k, k+T, ... (see replay.lua)."""
    threads = len(sent_by_thread)
    out: set[int] = set()
    for k, count in enumerate(sent_by_thread):
        own = range(k, total, threads)
        out.update(own[j % len(own)] for j in range(min(count, len(own))))
    return sorted(out)


def probe(port: int, path: str, signature: str, body: str) -> tuple[int, str]:
    """One signed POST outside the measurement: the status and body the app answers."""
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
