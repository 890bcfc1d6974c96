"""RQ job entry points. Each takes ids, wires its own Services (`callgateway.jobs.context`),
and re-checks state at run time.

Scheduling goes through `schedule()` with deterministic job ids, so that enqueuing the same
work twice (a retried webhook, a resync) replaces the pending job instead of adding one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from rq import Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job

from callgateway.jobs.context import wired
from callgateway.wiring import Services

log = logging.getLogger(__name__)

# Transient Twilio errors are retried by RQ (the job releases its claim first).
TRANSIENT_RETRY = Retry(max=3, interval=[30, 120, 600])


def schedule(
    services: Services,
    at: datetime,
    func: Callable[..., Any],
    *args: Any,
    job_id: str,
    retry: bool = False,
) -> None:
    """Enqueue `func(*args)` at `at` (now or past: as soon as the scheduler looks)."""
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
        services.queue.enqueue(func, *args, **options)
    else:
        services.queue.enqueue_at(at, func, *args, **options)


def unschedule(services: Services, job_id: str) -> None:
    """Drop a pending job; the job would find nothing to do anyway, this keeps Redis tidy."""
    with suppress(NoSuchJobError):
        Job.fetch(job_id, connection=services.redis).delete()


# Entry points: thin, so that RQ stores a stable dotted path and the work stays testable.


def send_reminder(reminder_id: int) -> str:
    from callgateway.outbound import reminders

    with wired() as services:
        return reminders.send(services, reminder_id)


def checkin_attempt(schedule_id: int, occurrence: str, attempt_no: int, adhoc: bool = False) -> str:
    from callgateway.outbound import checkins

    with wired() as services:
        return checkins.run_attempt(
            services, schedule_id, datetime.fromisoformat(occurrence), attempt_no, adhoc=adhoc
        )


def checkin_watchdog(attempt_id: int) -> str:
    from callgateway.outbound import checkins

    with wired() as services:
        return checkins.watchdog(services, attempt_id)


def checkin_alerts(schedule_id: int, occurrence: str, reason: str) -> str:
    from callgateway.outbound import alerts

    with wired() as services:
        return alerts.raise_alerts(
            services, schedule_id, datetime.fromisoformat(occurrence), reason
        )


def daily_summary(clinic_id: str, day: str) -> str:
    from datetime import date

    from callgateway.outbound import summary

    with wired() as services:
        return summary.send_and_schedule_next(services, clinic_id, date.fromisoformat(day))
