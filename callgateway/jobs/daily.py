"""RQ job entry points. Each takes ids (never objects) and wires its own Services.

The daily retention sweep runs on rq's own scheduler (`rq worker --with-scheduler`, as in
the Procfile): `schedule_daily_sweep` puts the next run on the ScheduledJobRegistry under a
per-day job id, so registering twice is harmless, and each run books the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta

from rq import Queue, get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, Retry

from callgateway.adapters.twilio_rest import TwilioError
from callgateway.wiring import Services, bootstrap
from recordings import lifecycle

log = logging.getLogger(__name__)

SWEEP_AT = time(3, 0)  # UTC: the quiet hours of most of our regions' clinics
SWEEP_JOB = "callgateway.jobs.daily.retention_sweep"


@contextmanager
def wired() -> Iterator[Services]:
    services = bootstrap()
    try:
        yield services
    finally:
        services.db.dispose()
        services.redis.close()


def _final_attempt() -> bool:
    """True when RQ will not retry this job again (or it runs outside RQ)."""
    job = get_current_job()
    return job is None or not job.retries_left


def transfer_recording(recording_id: int) -> str:
    with wired() as services:
        return lifecycle.transfer(services, recording_id, final_attempt=_final_attempt())


def adopt_recording(
    recording_sid: str, call_sid: str, kind: str, duration_seconds: int | None
) -> str:
    with wired() as services:
        row_id = lifecycle.adopt(services, recording_sid, call_sid, kind, duration_seconds)
        if row_id is None:
            return "unplaced"
        lifecycle.enqueue_transfer(services, row_id)
        return "queued"


def find_call_recordings(call_sid: str) -> str:
    """A call answered while the database was down: place what Twilio recorded of it."""
    with wired() as services:
        return f"{lifecycle.find_call_recordings(services, call_sid)} placed"


def _reconcile(services: Services, now: datetime) -> None:
    """Twilio down or refusing is logged, not raised: the sweep's work is done, and
    tomorrow's run looks over the same window again."""
    if services.twilio is None:
        return
    try:
        placed = lifecycle.reconcile(services, now - lifecycle.RECONCILE_WINDOW)
    except TwilioError as exc:
        log.error("recordings not reconciled with Twilio", extra={"error": str(exc)})
        return
    if placed:
        log.warning("recordings Twilio held that never reached us, placed", extra={"count": placed})


def retention_sweep(now_iso: str | None = None, reschedule: bool = True) -> dict[str, int]:
    """The daily sweep; also queues again recordings whose transfer job was lost, and
    places recordings Twilio holds that never reached us (`lifecycle.reconcile`)."""
    from callgateway.privacy.sweep import sweep

    try:
        with wired() as services:
            now = datetime.fromisoformat(now_iso) if now_iso else services.clock()
            result = sweep(services, now, actor="job:retention-sweep")
            lifecycle.resume_stalled(services)
            _reconcile(services, now)
            return result.counts()
    finally:
        job = get_current_job()
        if reschedule and job is not None:
            schedule_daily_sweep(Queue(job.origin, connection=job.connection))


def sweep_job_id(day: datetime) -> str:
    return f"retention-sweep-{day.date().isoformat()}"


def next_sweep_time(now: datetime) -> datetime:
    at = datetime.combine(now.astimezone(UTC).date(), SWEEP_AT, tzinfo=UTC)
    return at if at > now else at + timedelta(days=1)


def schedule_daily_sweep(queue: Queue, now: datetime | None = None) -> Job:
    """Book the next 03:00 UTC sweep once; returns the (new or already booked) job."""
    when = next_sweep_time(now or datetime.now(UTC))
    job_id = sweep_job_id(when)
    try:
        return Job.fetch(job_id, connection=queue.connection)
    except NoSuchJobError:
        pass
    log.info("retention sweep scheduled", extra={"at": when.isoformat()})
    return queue.enqueue_at(
        when, SWEEP_JOB, job_id=job_id, retry=Retry(max=3, interval=[300, 1800, 3600])
    )
