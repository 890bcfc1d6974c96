"""A real `rq worker` SIGKILLed mid-job (the host died): the job is retried, nothing is lost,
nothing is done twice.

The job is a recording transfer (Twilio -> region bucket -> verify -> delete at Twilio),
the job whose loss would matter most: Twilio's copy is the only one until it is stored.
A stub of Twilio's REST API stalls the step where the worker is killed, so the kill lands
mid-request. The worker and its work-horse die together (their own process group). Then
RQ's clean-up of the started-job registry (run by any worker's maintenance; here brought
forward in time, as in test_recording_lifecycle's retry test) finds the abandoned job and
retries it, and a fresh worker finishes it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy import select

from callgateway.config.settings import DEV_ACCOUNT_SID
from callgateway.db.models import Recording
from callgateway.wiring import Services
from recordings import lifecycle
from tests.support.faults import app_for
from tests.support.regions import CREDENTIALS, all_objects, s3
from tests.support.settings import ROOT
from tests.support.twilio import sid

pytest_plugins = ["tests.support.region_fixtures"]
RQ = str(Path(sys.executable).parent / "rq")
MEDIA = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 16


@dataclass
class StubTwilio:
    """GET media / DELETE recording. The first request of `stall` ("GET" or "DELETE") is
    received (and, for a DELETE, carried out, as Twilio would) but never answered."""

    stall: str
    url: str = ""
    log: list[str] = field(default_factory=list)
    stalled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    deleted: bool = False


@pytest.fixture
def stub_twilio(request: pytest.FixtureRequest) -> Iterator[StubTwilio]:
    stub = StubTwilio(stall=request.param)

    class Handler(BaseHTTPRequestHandler):
        def _stall_first(self, method: str) -> bool:
            stub.log.append(method)
            if stub.stall == method and not stub.stalled.is_set():
                stub.stalled.set()
                stub.release.wait(30)
                return True
            return False

        def do_GET(self) -> None:
            if self._stall_first("GET"):
                return
            self.send_response(200)
            self.send_header("Content-Type", "audio/x-wav")
            self.send_header("Content-Length", str(len(MEDIA)))
            self.end_headers()
            self.wfile.write(MEDIA)

        def do_DELETE(self) -> None:
            gone, stub.deleted = stub.deleted, True
            if self._stall_first("DELETE"):
                return
            self.send_response(404 if gone else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield stub
    stub.release.set()
    server.shutdown()
    server.server_close()


def worker_env(svc: Services, config_path: Path, aws: str, twilio_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "CALLGATEWAY_"))}
    env.update(CREDENTIALS)
    env.update(
        CALLGATEWAY_ENV="test",
        CALLGATEWAY_CONFIG=str(config_path),
        DATABASE_URL=svc.settings.database_url,
        REDIS_URL=svc.settings.redis_url,
        AWS_ENDPOINT_URL=aws,
        TWILIO_ACCOUNT_SID=DEV_ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=svc.settings.twilio_auth_token,
        TWILIO_API_BASE=twilio_url,
    )
    return env


def start_worker(env: dict[str, str], *extra: str) -> subprocess.Popen[bytes]:
    # Its own session: the worker and the work-horse it forks share one process group,
    # which is what we kill (never anything by name).
    return subprocess.Popen(
        [RQ, "worker", "-u", env["REDIS_URL"], *extra, "default"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def row(svc: Services) -> Recording:
    with svc.db.session() as s:
        return s.scalars(select(Recording)).one()


@pytest.mark.parametrize(
    ("stub_twilio", "killed_at"),
    [("GET", "pending"), ("DELETE", "stored")],
    ids=["killed-downloading", "killed-deleting-at-twilio"],
    indirect=["stub_twilio"],
)
def test_a_worker_killed_mid_transfer_is_retried_and_nothing_is_lost_or_doubled(
    stored_services: Services,
    region_config_path: Path,
    aws_env: str,
    stub_twilio: StubTwilio,
    killed_at: str,
) -> None:
    svc = stored_services
    tw = app_for(svc)
    call_sid, recording_sid = sid("CA"), sid("RE")
    assert tw.call(call_sid).status_code == 200
    callback = {
        **tw.voice_params(call_sid),
        "RecordingSid": recording_sid,
        "RecordingStatus": "completed",
        "RecordingDuration": "11",
    }
    assert tw.post("/twilio/voice/recording/status?kind=recording", callback).status_code == 200
    job_id = lifecycle.transfer_job_id(row(svc).id)
    queue = Queue("default", connection=svc.redis)
    assert queue.get_job_ids() == [job_id]

    env = worker_env(svc, region_config_path, aws_env, stub_twilio.url)
    worker = start_worker(env)
    try:
        assert stub_twilio.stalled.wait(60), "the worker never reached Twilio"
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its horse, mid-request
        worker.wait(10)

    # Killed: the job is neither finished nor failed, it is started and orphaned.
    rec = row(svc)
    assert (rec.status, rec.deleted_at_twilio) == (killed_at, False)
    started = StartedJobRegistry(queue=queue)
    assert Job.fetch(job_id, connection=svc.redis).get_status() == JobStatus.STARTED
    assert any(entry.startswith(job_id) for entry in started.get_job_ids(cleanup=False))

    # Time passes: maintenance finds it abandoned and, as it has retries left, retries it.
    started.cleanup(timestamp=time.time() + timedelta(days=1).total_seconds())
    job = Job.fetch(job_id, connection=svc.redis)
    assert job.get_status() == JobStatus.SCHEDULED
    assert job.retries_left == len(lifecycle.RETRY_INTERVALS) - 1
    scheduled = ScheduledJobRegistry(queue=queue)
    scheduled.schedule(job, svc.clock() - timedelta(seconds=1))  # its backoff is over

    finisher = start_worker(env, "--burst", "--with-scheduler")
    _, err = finisher.communicate(timeout=90)
    assert finisher.returncode == 0, err.decode()[-2000:]

    job = Job.fetch(job_id, connection=svc.redis)
    assert job.get_status() == JobStatus.FINISHED and job.return_value() == "done"
    rec = row(svc)
    assert (rec.status, rec.deleted_at_twilio, rec.error) == ("stored", True, None)
    # One copy, in the clinic's region, byte for byte; none anywhere else.
    objects = all_objects(aws_env, svc.config)
    assert objects["uk"] == [rec.key]
    assert all(objects[code] == [] for code in objects if code != "uk")
    region = svc.config.regions["uk"]
    body = s3(aws_env, region.aws_region).get_object(Bucket=region.bucket, Key=rec.key)
    assert body["Body"].read() == MEDIA
    # Killed downloading: downloaded again, deleted once. Killed deleting (Twilio did
    # delete): not downloaded again; the repeated delete finds it gone and completes.
    expected = {"pending": ["GET", "GET", "DELETE"], "stored": ["GET", "DELETE", "DELETE"]}
    assert stub_twilio.log == expected[killed_at]
