"""The Procfile's worker logs the jobs' records as the web process does: JSON, masked."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from redis import Redis
from rq import Queue

from tests.support.cli import cli_env
from tests.support.settings import ROOT

RQ = str(Path(sys.executable).parent / "rq")
NUMBER = "+447700900123"


def texting_a_patient() -> None:
    """A job that logs a number, as a sender would (the number is never a job argument:
    rq prints job arguments in its own lines)."""
    logging.getLogger("callgateway.outbound").warning("text not sent", extra={"to": NUMBER})


def test_a_jobs_log_line_is_json_with_the_number_masked(redis_url: str) -> None:
    queue = Queue("default", connection=Redis.from_url(redis_url))
    queue.empty()
    queue.enqueue(texting_a_patient)
    argv = [RQ, "worker", "--burst", "--worker-class", "callgateway.jobs.worker.Worker"]
    done = subprocess.run(
        [*argv, "-u", redis_url, "default"],
        env=cli_env(REDIS_URL=redis_url), cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    output = done.stdout + done.stderr
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    (record,) = [r for r in lines if r.get("msg") == "text not sent"]
    assert record["level"] == "warning" and record["logger"] == "callgateway.outbound"
    assert record["to"] == "+44******0123"
    assert NUMBER not in output
