"""Plain-text tables for the terminal and the README, and the JSON results file."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.measure import Result
from bench.procs import ROOT


def grid(rows: Sequence[Sequence[str]], left: Sequence[int] = (0,)) -> str:
    """Columns padded to their widest cell; columns in `left` left-aligned, others right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(row: Sequence[str]) -> str:
        cells = zip(row, widths, strict=True)
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(cells))

    lines = [line(row).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def scenario_table(results: list[Result], connections: int, workers: int) -> str:
    head = (
        "scenario", "req/s", "x floor", f"c{connections} p50", f"c{connections} p99",
        f"c{workers} p50", f"c{workers} p99", "app p99", "target", "result",
    )  # fmt: skip
    rows = [head]
    for r in results:
        if r.state != "ok" or r.load is None:
            rows.append((r.name, "-", "-", "-", "-", "-", "-", "-", r.target, r.state))
            continue
        lat = r.latency
        rows.append((
            r.name,
            f"{r.load.rps:,.0f}",
            "1.00" if r.server == "floor" else (f"{r.ratio:.2f}" if r.ratio else "-"),
            ms(r.load.p50_ms), ms(r.load.p99_ms),
            ms(lat.p50_ms if lat else None), ms(lat.p99_ms if lat else None),
            ms(r.load.app_p99_ms),
            r.target, r.verdict,
        ))  # fmt: skip
    return grid(rows, left=(0, 8, 9))


@dataclass
class ScalingRow:
    workers: int
    floor_rps: float
    voice_rps: float
    voice_p99_ms: float
    reused: bool = False  # the figures of the main run (same worker count), not a rerun

    @property
    def ratio(self) -> float:
        return self.voice_rps / self.floor_rps if self.floor_rps else 0.0


def scaling_table(rows: list[ScalingRow], connections: int) -> str:
    head = ("workers", "floor req/s", "voice req/s", "x floor", f"voice c{connections} p99")
    out = [head]
    for r in rows:
        out.append((
            str(r.workers), f"{r.floor_rps:,.0f}", f"{r.voice_rps:,.0f}", f"{r.ratio:.2f}",
            ms(r.voice_p99_ms),
        ))  # fmt: skip
    return grid(out)


@dataclass
class SoakMinute:
    minute: float  # load time at the end of this run
    rps: float
    p50_ms: float
    p99_ms: float
    voice_app_p99_ms: float | None
    turn_app_p99_ms: float | None
    rss_mb: float  # all app workers together, at the end of the minute
    rss_max_worker_mb: float
    non_2xx: int
    socket_errors: int
    wrapped: bool


def pct(first: float | None, last: float | None) -> str:
    if first is None or last is None or not first:
        return "-"
    return f"{(last - first) / first * 100:+.0f}%"


def soak_table(minutes: list[SoakMinute], connections: int) -> str:
    head = (
        "minute", "req/s", f"c{connections} p50", f"c{connections} p99", "voice app p99",
        "turn app p99", "RSS MB", "max worker MB", "errors",
    )  # fmt: skip
    rows = [head]
    for m in minutes:
        rows.append((
            f"{m.minute:g}", f"{m.rps:,.0f}", ms(m.p50_ms), ms(m.p99_ms),
            ms(m.voice_app_p99_ms), ms(m.turn_app_p99_ms),
            f"{m.rss_mb:.1f}", f"{m.rss_max_worker_mb:.1f}", str(m.non_2xx + m.socket_errors),
        ))  # fmt: skip
    if len(minutes) >= 2:
        a, b = minutes[0], minutes[-1]
        rows.append((
            "drift", pct(a.rps, b.rps), pct(a.p50_ms, b.p50_ms), pct(a.p99_ms, b.p99_ms),
            pct(a.voice_app_p99_ms, b.voice_app_p99_ms), pct(a.turn_app_p99_ms, b.turn_app_p99_ms),
            f"{b.rss_mb - a.rss_mb:+.1f}", f"{b.rss_max_worker_mb - a.rss_max_worker_mb:+.1f}", "",
        ))  # fmt: skip
    return grid(rows)


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


def host() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        # Other work on the box skews req/s; the ratio to the floor much less so.
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def write_json(path: Path, started: datetime, options: dict[str, Any], **parts: Any) -> None:
    def plain(value: Any) -> Any:
        if is_dataclass(value) and not isinstance(value, type):
            return asdict(value)
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    doc = {
        "started_at": started.isoformat(timespec="seconds"),
        "git": git_rev(),
        "host": host(),
        "options": options,
        **{k: plain(v) for k, v in parts.items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
