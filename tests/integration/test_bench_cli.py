"""`python -m bench` end to end, briefly: real services, gunicorn and wrk on loopback.

It prints its table, exits 0 although the (tiny, noisy) run misses targets, and leaves
nothing running behind it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.settings import ROOT


def bench(tmp_path: Path, *argv: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = tmp_path / "result.json"
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    done = subprocess.run(
        [sys.executable, "-m", "bench", *argv, "--output", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done, json.loads(out.read_text())


def no_floor_left() -> bool:
    # Only the bench serves bench.floor's apps; once it has exited, no such gunicorn remains.
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return not any("bench.floor:create_" in line for line in ps.splitlines())


def test_a_short_run_prints_the_table_and_exits_zero(tmp_path: Path) -> None:
    done, result = bench(tmp_path, "--only", "sms", "--duration", "1", "--latency-duration", "1")
    header, rule, floor, sms = done.stdout.splitlines()[:4]
    assert header.split()[0] == "scenario" and set(rule) <= {"-", " "}
    assert floor.split()[0] == "floor" and sms.split()[0] == "sms"
    assert "targets:" in done.stdout
    (row,) = [s for s in result["scenarios"] if s["name"] == "sms"]
    assert row["load"]["non_2xx"] == 0 and row["load"]["requests"] > 0
    assert row["latency"]["requests"] > 0 and row["load"]["app_p99_ms"] > 0
    assert no_floor_left()


def test_the_reference_rows_run_against_their_own_servers_and_answer_2xx(tmp_path: Path) -> None:
    # A reference that refused the bench's signatures would show 403s: an ERROR, not a figure.
    _, result = bench(
        tmp_path, "--only", "signed", "--only", "minimal", "--duration", "1",
        "--latency-duration", "1",
    )  # fmt: skip
    rows = {s["name"]: s for s in result["scenarios"]}
    assert set(rows) == {"floor", "signed", "minimal"}
    for name in ("signed", "minimal"):
        assert rows[name]["load"]["requests"] > 0 and rows[name]["load"]["non_2xx"] == 0
        assert rows[name]["ratio"] > 0
    assert no_floor_left()


def test_soak_reports_memory_and_latency_per_interval_and_stops(tmp_path: Path) -> None:
    done, result = bench(tmp_path, "--soak", "--minutes", "0.1", "--interval", "3")
    rows = result["soak"]
    assert [r["minute"] for r in rows] == [0.05, 0.1]
    for r in rows:
        assert r["rps"] > 0 and r["non_2xx"] == 0
        assert r["rss_mb"] > 10  # two gunicorn workers with the app loaded
        assert r["voice_app_p99_ms"] > 0 and r["turn_app_p99_ms"] > 0
    assert done.stdout.splitlines()[-2].startswith("drift")
