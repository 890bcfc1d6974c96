"""`python -m bench --soak`: whole calls for N minutes; memory and latency, minute by minute.

Each minute (--interval, 60 s) is one wrk run over fresh calls, each call as Twilio sends
it: the voice webhook, the booking conversation turn by turn, the completed status (see
scenarios.whole_call). After each run the app workers' resident memory is read from /proc
and the app's log gives the handler p99 of voice and turn for that run. Drift is the last
run against the first. The next run's requests are signed between runs (a few seconds in
which the server idles), sized from the run before so no call repeats. It stops by itself
after N minutes; traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from pathlib import Path

from bench.measure import app_latencies, percentile
from bench.procs import Gunicorn
from bench.report import SoakMinute
from bench.scenarios import TURN_PATH, WHOLE_CALL_STEPS, Context, conversation_step, new_sid
from bench.scenarios import whole_call as call_step
from bench.signing import signed_mixed, write_data_file
from bench.wrk import run_wrk

WARM_UP = 10  # seconds, unreported: imports, pools and caches warm, and a first rate


def calls_file(path: Path, token: str, base: str, ctx: Context, calls: int, block: int) -> int:
    """Write `calls` whole calls laid out so each call's steps go in order; returns lines."""
    sids = [new_sid("CA") for _ in range(calls)]

    def items() -> Iterator[tuple[str, dict[str, str]]]:
        for i in range(calls * WHOLE_CALL_STEPS):
            call, step = conversation_step(i, calls, WHOLE_CALL_STEPS, block)
            yield call_step(ctx, sids[call], step)

    return write_data_file(path, signed_mixed(token, base, items()))


def soak(
    app: Gunicorn,
    ctx: Context,
    token: str,
    workdir: Path,
    minutes: float,
    connections: int,
    threads: int,
    interval: int = 60,
) -> list[SoakMinute]:
    """`minutes` of load in runs of `interval` seconds, one row each."""
    base = f"http://127.0.0.1:{app.port}"
    threads = min(threads, connections)
    block = threads * math.ceil(max(8 * connections, 64) / threads)
    data = workdir / "soak.dat"

    def size(rps: float, seconds: int) -> int:
        # 30% headroom, whole blocks, a multiple of the thread count (see conversation_step)
        calls = math.ceil(rps * seconds * 1.3 / WHOLE_CALL_STEPS / block) * block
        return max(calls, block)

    warm_up = min(WARM_UP, interval)
    calls_file(data, token, base, ctx, size(300, warm_up), block)
    print(f"bench: soak warm-up {warm_up}s ...", file=sys.stderr)
    rps = run_wrk(app.port, data, warm_up, connections, threads).rps
    out: list[SoakMinute] = []
    runs = max(1, round(minutes * 60 / interval))
    for n in range(1, runs + 1):
        lines = calls_file(data, token, base, ctx, size(rps, interval), block)
        print(f"bench: soak {n}/{runs}: {interval}s, {lines} requests ready", file=sys.stderr)
        start = app.log_size()
        run = run_wrk(app.port, data, interval, connections, threads)
        by_path = app_latencies(app.log_path, start, app.log_size())
        rss = app.worker_rss_mb()
        rps = run.rps
        out.append(
            SoakMinute(
                minute=round(n * interval / 60, 2),
                rps=run.rps,
                p50_ms=run.p50_ms,
                p99_ms=run.p99_ms,
                voice_app_p99_ms=_p99(by_path.get("/twilio/voice")),
                turn_app_p99_ms=_p99(by_path.get(TURN_PATH)),
                rss_mb=sum(rss),
                rss_max_worker_mb=max(rss, default=0.0),
                non_2xx=run.non_2xx,
                socket_errors=run.socket_errors,
                wrapped=sum(run.sent_by_thread) > lines,
            )
        )
    return out


def _p99(values: list[float] | None) -> float | None:
    return percentile(values, 0.99) if values else None
