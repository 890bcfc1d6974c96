"""Recordings' RQ entry points: thin, so that RQ stores a stable dotted path.

The lifecycle queues them by name (`lifecycle.TRANSFER_JOB`, `ADOPT_JOB`, `FIND_JOB`). This
is the one module of recordings that may wire Services (through the job-wiring context):
a job carries ids, so it must build what it works with itself.
"""

from __future__ import annotations

from rq import get_current_job

from callgateway.jobs.context import wired
from recordings import lifecycle


def _final_attempt() -> bool:
    """True when RQ will not retry this job again (or it runs outside RQ)."""
    job = get_current_job()
    return job is None or not job.retries_left


def transfer_recording(recording_id: int) -> str:
    with wired() as services:
        return lifecycle.transfer(services.recordings, recording_id, final_attempt=_final_attempt())


def adopt_recording(
    recording_sid: str, call_sid: str, kind: str, duration_seconds: int | None
) -> str:
    with wired() as services:
        desk = services.recordings
        row_id = lifecycle.adopt(desk, recording_sid, call_sid, kind, duration_seconds)
        if row_id is None:
            return "unplaced"
        lifecycle.enqueue_transfer(desk, row_id)
        return "queued"


def find_call_recordings(call_sid: str) -> str:
    """A call answered while the database was down: place what Twilio recorded of it."""
    with wired() as services:
        return f"{lifecycle.find_call_recordings(services.recordings, call_sid)} placed"
