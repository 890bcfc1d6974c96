"""One scenario, measured twice: saturated (throughput) and one request per worker (latency).

- load: wrk with --connections (32) against --workers (2) sync workers. Gives req/s, the
  ratio to the floor, and p50/p99 that are mostly queueing (p99 ~ connections/workers x
  the service time).
- latency: wrk with as many connections as workers, so no request waits for a worker.
  Gives the p50/p99 a single Twilio request sees on this machine; the p99 targets are
  judged on it.

Each phase acts on its own calls: the load phase's turns on the calls the load phase's
voice run created, the latency phase's on the latency phase's, so every conversation runs
in order, once.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import Gunicorn
from bench.scenarios import Context, Scenario
from bench.signing import signed_requests, write_data_file
from bench.wrk import WrkOut, probe, run_wrk, sent_lines

MIN_REQUESTS = 5_000
JOURNAL = "journal:calls"  # callgateway.calls.journal.STREAM: not imported, the bench stays outside
FLOOR_REQUESTS = 2_000  # the floor ignores the form, so distinct SIDs buy nothing there
LOAD, LATENCY = "load", "latency"


@dataclass
class Phase:
    """One wrk run of one scenario, with the app's own view of the same requests."""

    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    statuses: dict[str, int]
    non_2xx: int
    socket_errors: int
    distinct: int
    wrapped: bool  # sent more requests than distinct ones: the tail were repeats
    app_p50_ms: float | None = None  # handler time from the app's log, no queueing
    app_p99_ms: float | None = None


@dataclass
class Result:
    name: str
    server: str
    path: str
    target: str
    state: str = "ok"  # or "n/a (...)": not measured, and why
    load: Phase | None = None
    latency: Phase | None = None
    ratio: float | None = None
    verdict: str = "report"  # MET | MISS | ERROR | report | n/a
    reasons: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.load.rps if self.load else 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def app_latencies(log: Path, start: int, end: int) -> dict[str, list[float]]:
    """Handler latency by path from the app's JSON "webhook" lines in log[start:end].
    Best effort: a format change leaves it empty and the table shows '-'."""
    try:
        with log.open("rb") as fh:
            fh.seek(start)
            chunk = fh.read(max(0, end - start)).decode("utf-8", "replace")
    except OSError:
        return {}
    by_path: dict[str, list[float]] = {}
    for line in chunk.splitlines():
        if '"webhook"' not in line:
            continue
        with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
            rec = json.loads(line)
            by_path.setdefault(rec["path"], []).append(float(rec["latency_ms"]))
    return by_path


class Runner:
    def __init__(
        self,
        args: argparse.Namespace,
        ctx: Context,
        token: str,
        servers: dict[str, Gunicorn],
        workdir: Path,
        redis_url: str | None = None,
    ) -> None:
        self.args = args
        self.ctx = ctx
        self.token = token
        self.servers = servers
        self.workdir = workdir
        self.floor_rps: float | None = None
        self.gather_action: str | None = None
        self.calls: dict[str, list[str]] = {LOAD: [], LATENCY: []}  # CallSids voice created
        self.load_rps: dict[str, float] = {}
        self._when_next = 0  # the first of Context.when no run has used yet
        self.redis_url = redis_url
        self.quiet: float | None = None  # seconds the last app run waited for the journal

    def _wait_for_journal(self, limit: float = 30.0) -> float | None:
        """Each run starts with the journal applied. The previous run's backlog is
        background work that run caused: left in the stream, the drainers would apply it
        during this run and bill its latency for it. Returns the seconds waited."""
        if self.redis_url is None:
            return None
        import redis

        client = redis.Redis.from_url(self.redis_url)
        started = time.monotonic()
        try:
            while client.xlen(JOURNAL) and time.monotonic() - started < limit:
                time.sleep(0.05)
        finally:
            client.close()
        return time.monotonic() - started

    def connections(self, phase: str) -> int:
        server = self.servers.get("app") or self.servers["floor"]
        return self.args.connections if phase == LOAD else server.workers

    def size(self, scenario: Scenario, seconds: int, phase: str) -> int:
        if scenario.server != "app":  # the floor and the references keep no state per call
            return FLOOR_REQUESTS
        if scenario.steps_per_call is not None:
            return max(len(self.ctx.call_sids), 1) * scenario.steps_per_call
        # Enough distinct requests that the run cannot outrun them: the app is no faster
        # than the floor, and one request per worker no faster than saturation.
        rps = self.load_rps.get(scenario.name) if phase == LATENCY else None
        guess = (rps or self.floor_rps or 5_000) * seconds * 1.2
        return max(MIN_REQUESTS, math.ceil(guess))

    def run(self, scenario: Scenario, seconds: int, phase: str = LOAD) -> Phase | str:
        """Measure one phase; a string says why it could not be measured."""
        server = self.servers[scenario.server]
        base = f"http://127.0.0.1:{server.port}"
        connections = self.connections(phase)
        threads = min(self.args.threads, connections)
        if scenario.uses_calls:
            calls = self.calls[phase]
            # Every call's lines on one wrk thread (see scenarios.conversation_step).
            calls = calls[: len(calls) - len(calls) % threads]
            if not calls:
                return "n/a (no calls from voice)"
            self.ctx.call_sids = calls
            # Times no earlier run asked for: its calls booked theirs (bench.diary).
            self.ctx.when_base = self._when_next
            self._when_next += len(calls)
            self.ctx.block = threads * math.ceil(max(8 * connections, 64) / threads)
        n = self.size(scenario, seconds, phase)
        params = [scenario.params(self.ctx, i) for i in range(n)]
        data = self.workdir / f"{scenario.name}-{phase}.dat"
        write_data_file(data, signed_requests(self.token, base, scenario.path, params))

        if not scenario.uses_calls:
            # One signed request first, outside the measurement: a 404 means the app has
            # no such endpoint yet, which is reported, not counted as an error.
            extra = next(
                signed_requests(self.token, base, scenario.path, [scenario.params(self.ctx, n)])
            )
            status, reply = probe(server.port, extra.path, extra.signature, extra.body)
            if status == 404:
                return "n/a (endpoint missing)"
            if scenario.name == "voice":
                # Where the app really sends the caller's speech, to check TURN_PATH against.
                m = re.search(r'<Gather\b[^>]*\baction="([^"]*)"', reply)
                self.gather_action = html.unescape(m.group(1)) if m else None

        if scenario.server == "app":
            self.quiet = self._wait_for_journal()
        start = server.log_size()
        timeout = getattr(self.args, "wrk_timeout", 5)
        out = run_wrk(server.port, data, seconds, connections, threads, timeout)
        phase_out = self._phase(out, n, server.log_path, start, server.log_size(), scenario)
        if set(out.statuses) == {"404"}:
            return "n/a (endpoint missing)"
        if scenario.name == "voice":
            # Later scenarios act on exactly the calls this run created.
            self.calls[phase] = [params[i]["CallSid"] for i in sent_lines(out.sent_by_thread, n)]
        if phase == LOAD:
            self.load_rps[scenario.name] = out.rps
        return phase_out

    def _phase(
        self, out: WrkOut, n: int, log: Path, start: int, end: int, scenario: Scenario
    ) -> Phase:
        res = Phase(
            rps=out.rps,
            p50_ms=out.p50_ms,
            p99_ms=out.p99_ms,
            max_ms=out.max_ms,
            requests=out.requests,
            statuses=out.statuses,
            non_2xx=out.non_2xx,
            socket_errors=out.socket_errors,
            distinct=n,
            wrapped=scenario.server == "app" and sum(out.sent_by_thread) > n,
        )
        if scenario.server == "app":
            path = scenario.path.split("?")[0]
            values = app_latencies(log, start, end).get(path, [])
            if values:
                res.app_p50_ms = percentile(values, 0.5)
                res.app_p99_ms = percentile(values, 0.99)
        return res


def judge(scenario: Scenario, res: Result, floor_rps: float | None) -> None:
    """MET / MISS against the targets; ERROR when the app answered non-2xx (a 403 is the
    bench signing wrongly, a 5xx a bug): then the figures are not of a working webhook."""
    if res.state != "ok" or res.load is None:
        res.verdict = "n/a"
        return
    if floor_rps and scenario.server != "floor":
        res.ratio = res.load.rps / floor_rps
    phases = [p for p in (res.load, res.latency) if p is not None]
    non_2xx = sum(p.non_2xx for p in phases)
    if non_2xx:
        statuses: dict[str, int] = {}
        for p in phases:
            for k, v in p.statuses.items():
                if not k.startswith("2"):
                    statuses[k] = statuses.get(k, 0) + v
        res.reasons.append(f"{non_2xx} non-2xx {statuses}")
        res.verdict = "ERROR"
        return
    if not scenario.has_target:
        return
    if scenario.min_ratio is not None:
        if res.ratio is None:
            res.reasons.append("no floor to compare with")
        elif res.ratio < scenario.min_ratio:
            res.reasons.append(f"ratio {res.ratio:.2f} < {scenario.min_ratio:g}")
    if scenario.max_p99_ms is not None:
        if res.latency is None:
            res.reasons.append("no latency run")
        elif res.latency.p99_ms >= scenario.max_p99_ms:
            res.reasons.append(
                f"p99 {res.latency.p99_ms:.1f}ms >= {scenario.max_p99_ms:g}ms"
                " (one request per worker)"
            )
    errors = sum(p.socket_errors for p in phases)
    if errors:
        res.reasons.append(f"{errors} socket errors (timeouts > 5 s or refused)")
    res.verdict = "MISS" if res.reasons else "MET"
