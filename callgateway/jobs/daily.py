"""The daily job: the retention sweep and recordings' catch-up, and its booking.

The daily retention sweep runs on rq's own scheduler (`rq worker --with-scheduler`, as in
the Procfile): `schedule_daily_sweep` puts the next run on the ScheduledJobRegistry under a
per-day job id, so registering twice is harmless, and each run books the next one.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta

from rq import Queue, get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, Retry

from callgateway.adapters.twilio_rest import TwilioError
from callgateway.jobs.context import wired
from recordings import lifecycle
from recordings.desk import RecordingDesk

log = logging.getLogger(__name__)

SWEEP_AT = time(3, 0)  # UTC: the quiet hours of most of our regions' clinics
SWEEP_JOB = "callgateway.jobs.daily.retention_sweep"
# RQ kills a job at its timeout (180 s unless told). The sweep stops starting batches when
# its budget is spent, leaving the rest to tomorrow, so the job ends on its own well inside
# the timeout with time left for the recordings' catch-up. A day's expiries at a busy clinic
# are thousands of objects; 99k expiring at once (a clinic's retention shortened) took 47 s
# and 198 S3 requests on moto (bench/retention.py), so 50 minutes leaves room for a slow
# bucket, and for recordings from before their versions were recorded (listed one by one).
SWEEP_TIMEOUT = timedelta(hours=1)
SWEEP_BUDGET = timedelta(minutes=50)


def _reconcile(desk: RecordingDesk, now: datetime) -> None:
    """Twilio down or refusing is logged, not raised: the sweep's work is done, and
    tomorrow's run looks over the same window again."""
    if desk.twilio is None:
        return
    try:
        placed = lifecycle.reconcile(desk, now - lifecycle.RECONCILE_WINDOW)
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
            result = sweep(services, now, actor="job:retention-sweep", budget=SWEEP_BUDGET)
            if not result.finished:
                log.warning(
                    "retention sweep ran out of its time budget; tomorrow's run goes on",
                    extra={"counts": result.counts()},
                )
            desk = services.recordings
            lifecycle.resume_stalled(desk)
            _reconcile(desk, now)
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
    timeout = int(SWEEP_TIMEOUT.total_seconds())
    try:
        booked = Job.fetch(job_id, connection=queue.connection)
    except NoSuchJobError:
        pass
    else:
        if booked.timeout != timeout:  # booked by a release that gave it none
            booked.timeout = timeout
            booked.save()
        return booked
    log.info("retention sweep scheduled", extra={"at": when.isoformat()})
    return queue.enqueue_at(
        when,
        SWEEP_JOB,
        job_id=job_id,
        job_timeout=timeout,
        retry=Retry(max=3, interval=[300, 1800, 3600]),
    )
