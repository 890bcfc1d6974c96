"""Putting outbound work on the RQ queue, by deterministic job id: enqueuing the same work
twice (a retried webhook, a resync) replaces the pending job instead of adding one.

Jobs are named by the dotted path RQ stores with them, not imported: the entry points in
`callgateway.jobs.outbound` call into the senders that schedule them, and a path keeps the
senders from importing their own callers. tests/unit/test_outbound_scheduling.py checks
every path.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rq import Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job

if TYPE_CHECKING:
    from callgateway.wiring import Services


# Transient Twilio errors are retried by RQ (the job releases its claim first).
TRANSIENT_RETRY = Retry(max=3, interval=[30, 120, 600])

_JOBS = "callgateway.jobs.outbound"
SEND_REMINDER = f"{_JOBS}.send_reminder"
CHECKIN_ATTEMPT = f"{_JOBS}.checkin_attempt"
CHECKIN_WATCHDOG = f"{_JOBS}.checkin_watchdog"
CHECKIN_ALERTS = f"{_JOBS}.checkin_alerts"
DAILY_SUMMARY = f"{_JOBS}.daily_summary"


def schedule(
    services: Services,
    at: datetime,
    job: str,
    *args: Any,
    job_id: str,
    retry: bool = False,
) -> None:
    """Enqueue `job(*args)` at `at` (now or past: as soon as the scheduler looks)."""
    if services.queue is None:
        raise RuntimeError("no job queue wired")
    options: dict[str, Any] = {
        "job_id": job_id,
        "retry": TRANSIENT_RETRY if retry else None,
        "result_ttl": 24 * 3600,
        "failure_ttl": 7 * 24 * 3600,
    }
    # RQ's scheduler runs on the wall clock; work already due goes straight to the queue.
    if at <= datetime.now(UTC):
        services.queue.enqueue(job, *args, **options)
    else:
        services.queue.enqueue_at(at, job, *args, **options)


def unschedule(services: Services, job_id: str) -> None:
    """Drop a pending job; the job would find nothing to do anyway, this keeps Redis tidy."""
    with suppress(NoSuchJobError):
        Job.fetch(job_id, connection=services.redis).delete()
