"""One log stream: the Procfile's worker (the jobs' records and rq's own lines alike), its
outbox sweeper and its web process (gunicorn's own lines too) write JSON lines, numbers
masked, timestamps, ids and references as they were."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from redis import Redis
from rq import Queue

from devtools.services import free_port
from tests.support.cli import CALLGATEWAY, cli_env
from tests.support.settings import ROOT

RQ = str(Path(sys.executable).parent / "rq")
NUMBER = "+447700900123"
NATIONAL = "07700 900123"
WHEN = "2026-12-02 12:59:33.512451+00:00"
REF = "12345678"


def texting_a_patient() -> None:
    """A job that logs a number, a retry time and a booking reference, as a sender would."""
    logging.getLogger("callgateway.outbound").warning(
        "text not sent, retry at %s", WHEN, extra={"to": NUMBER, "ref": f"ref {REF}"}
    )


def calling_back(number: str) -> str:
    """A job with a number among its arguments: rq quotes them in its own lines."""
    return "called"


def failing(number: str) -> None:
    raise RuntimeError(f"no answer from {NATIONAL}")


def _run_worker(redis_url: str) -> str:
    argv = [RQ, "worker", "--burst", "--worker-class", "callgateway.jobs.worker.Worker"]
    done = subprocess.run(
        [*argv, "-u", redis_url, "default"],
        env=cli_env(REDIS_URL=redis_url), cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_the_whole_output_of_a_burst_worker_is_json_lines_with_no_number_in_clear(
    redis_url: str,
) -> None:
    queue = Queue("default", connection=Redis.from_url(redis_url))
    queue.empty()
    queue.enqueue(texting_a_patient)
    called = queue.enqueue(calling_back, NUMBER)
    queue.enqueue(failing, NATIONAL)
    output = _run_worker(redis_url)

    lines = [json.loads(line) for line in output.splitlines()]  # every line, none skipped
    assert all(set(r) >= {"ts", "level", "logger", "msg"} for r in lines)
    # rq's own lines are there, in the same stream: the worker starting, each job, the end.
    rq_lines = [r["msg"] for r in lines if r["logger"].startswith("rq.")]
    assert any("started with PID" in m for m in rq_lines), rq_lines
    assert any(called.id in m and "+44******0123" in m for m in rq_lines), rq_lines
    assert NUMBER not in output and NATIONAL not in output and "7700900123" not in output

    (record,) = [r for r in lines if r["msg"].startswith("text not sent")]
    assert record["level"] == "warning" and record["logger"] == "callgateway.outbound"
    assert record["to"] == "+44******0123"
    assert record["msg"] == f"text not sent, retry at {WHEN}"
    assert record["ref"] == f"ref {REF}"


def test_the_outbox_sweeper_writes_each_pass_as_a_json_log_line(
    sqlite_url: str, redis_url: str
) -> None:
    env = cli_env(DATABASE_URL=sqlite_url, REDIS_URL=redis_url)
    sweeper = subprocess.Popen(
        [CALLGATEWAY, "outbox", "drain", "--watch", "30"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert sweeper.stderr is not None
        first = sweeper.stderr.readline()  # the first pass, then it sleeps 30 s
    finally:
        sweeper.terminate()
        out, err = sweeper.communicate(timeout=30)
    record = json.loads(first)
    assert (record["logger"], record["msg"]) == ("callgateway.outbox", "outbox pass")
    assert (record["done"], record["retry"], record["failed"]) == (0, 0, 0)
    assert out == ""
    assert all(json.loads(line) for line in err.splitlines())


def test_the_web_process_writes_gunicorns_own_lines_as_json_too(
    sqlite_url: str, redis_url: str
) -> None:
    port = free_port()
    env = cli_env(DATABASE_URL=sqlite_url, REDIS_URL=redis_url)
    web = subprocess.Popen(
        [CALLGATEWAY, "serve", "--port", str(port), "--workers", "1"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
    finally:
        web.send_signal(signal.SIGTERM)
        _, err = web.communicate(timeout=30)
    lines = [json.loads(line) for line in err.splitlines()]  # every line, none skipped
    gunicorn = [r["msg"] for r in lines if r["logger"].startswith("gunicorn")]
    assert any(m.startswith("Listening at") for m in gunicorn), err
    assert any(m.startswith("Booting worker") for m in gunicorn), err
