"""Jobs queued before a release moved their functions still run on the Procfile's worker.

RQ stores the dotted path of a job's function. These paths are the ones the release before
issue 15's restructure queued; a sweep booked for tomorrow, a delivery or a recording
waiting out its backoff must run, and the daily sweep must go on booking itself.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry

from callgateway.wiring import Services
from tests.support.regions import stored_cli_env
from tests.support.settings import ROOT

pytest_plugins = ["tests.support.region_fixtures"]

RQ = str(Path(sys.executable).parent / "rq")
WORKER = [RQ, "worker", "--burst", "--worker-class", "callgateway.jobs.worker.Worker"]
NO_SUCH_ROW = 999_999


@pytest.fixture
def svc(stored_services: Services) -> Services:
    return stored_services


def test_jobs_queued_under_their_old_paths_run_the_moved_functions(
    svc: Services, aws_env: str, region_config_path: Path
) -> None:
    queue = Queue("default", connection=svc.redis)
    queue.empty()
    sweep = queue.enqueue("callgateway.jobs.retention_sweep", "2030-05-06T14:00:00+00:00")
    transfer = queue.enqueue("callgateway.jobs.transfer_recording", NO_SUCH_ROW)
    deliver = queue.enqueue("callgateway.outbox.deliver_job", NO_SUCH_ROW)
    adopt = queue.enqueue(
        "callgateway.jobs.adopt_recording", "RE" + "0" * 32, "CA" + "0" * 32, "voicemail", 5
    )
    find = queue.enqueue("callgateway.jobs.find_call_recordings", "CA" + "1" * 32)

    # Twilio's API is on the discard port: a job that asks it fails fast, and says so.
    env = stored_cli_env(svc, region_config_path, aws_env)
    done = subprocess.run(
        [*WORKER, "-u", svc.settings.redis_url, "default"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr

    def ran(job: Job) -> Job:
        return Job.fetch(job.id, connection=svc.redis)

    log = done.stderr[-3000:]  # rq's lines: a job that could not import its function

    assert ran(transfer).return_value() == "gone", log
    assert ran(deliver).return_value() == "skipped", log
    counts = ran(sweep).return_value()
    assert isinstance(counts, dict) and "recording" in counts, log
    # The sweep booked tomorrow's under its new path.
    booked = [
        Job.fetch(i, connection=svc.redis) for i in ScheduledJobRegistry(queue=queue).get_job_ids()
    ]
    assert [j.func_name for j in booked] == ["callgateway.jobs.daily.retention_sweep"]
    # The recordings' jobs ran their new functions too, which asked Twilio and found it down
    # (not an import error: that is what a missing rename looks like).
    for job in (adopt, find):
        job = ran(job)
        assert job.get_status() == JobStatus.FAILED
        result = job.latest_result()
        assert result is not None and "twilio unreachable" in (result.exc_string or "")
