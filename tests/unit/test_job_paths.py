"""The dotted paths jobs are queued under name functions that exist, old paths included."""

from __future__ import annotations

import pytest
from redis import Redis
from rq.utils import import_attribute

from callgateway.booking import outbox
from callgateway.jobs import daily
from callgateway.jobs import outbox as outbox_jobs
from callgateway.jobs.worker import RENAMED, Job
from recordings import jobs, lifecycle

# Never connected to: building a job talks to no Redis.
NOWHERE = Redis(port=1)


def test_the_lifecycle_queues_recordings_own_entry_points() -> None:
    assert import_attribute(lifecycle.TRANSFER_JOB) is jobs.transfer_recording
    assert import_attribute(lifecycle.ADOPT_JOB) is jobs.adopt_recording
    assert import_attribute(lifecycle.FIND_JOB) is jobs.find_call_recordings
    assert import_attribute(daily.SWEEP_JOB) is daily.retention_sweep


def test_the_outbox_queues_the_jobs_own_entry_point() -> None:
    assert import_attribute(outbox.DELIVER_JOB) is outbox_jobs.deliver_job


@pytest.mark.parametrize(("old", "new"), sorted(RENAMED.items()))
def test_a_job_queued_under_a_moved_path_runs_the_function_now_there(old: str, new: str) -> None:
    with pytest.raises((ImportError, AttributeError, ValueError)):
        import_attribute(old)  # else the row is dead weight
    job = Job.create(old, connection=NOWHERE)
    assert job.func is import_attribute(new)
    assert job.func_name == old  # stored as queued; only the lookup is redirected


def test_a_job_under_a_current_path_is_looked_up_as_rq_does() -> None:
    assert Job.create(daily.SWEEP_JOB, connection=NOWHERE).func is daily.retention_sweep
