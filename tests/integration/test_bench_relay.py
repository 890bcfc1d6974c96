"""`python -m bench.relay` runs end to end: its own Redis and relay process, signed sessions,
and the figures printed."""

from __future__ import annotations

import subprocess
import sys

from tests.support.settings import ROOT

SHORT = ["--sessions", "5", "--every", "1", "--seconds", "3", "--ramp", "1", "--warmup", "1"]


def test_a_short_relay_run_prints_latency_and_memory_and_exits_zero() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.relay", *SHORT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "prompt -> first text token: p50" in done.stdout
    assert "relay memory per open session:" in done.stdout
    assert "sessions that failed: 0, ended by the relay: 0" in done.stdout
