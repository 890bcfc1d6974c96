"""Outbound work's RQ entry points (reminders, check-ins, alerts, the daily summary).

Each takes ids, wires its own Services (`callgateway.jobs.context`),
and re-checks state at run time.

They are enqueued through `outbound.scheduling`, by the dotted paths it names.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from callgateway.jobs.context import wired
from callgateway.outbound import alerts, checkins, reminders, summary

log = logging.getLogger(__name__)


# Entry points: thin, so that RQ stores a stable dotted path and the work stays testable.


def send_reminder(reminder_id: int) -> str:
    with wired() as services:
        return reminders.send(services, reminder_id)


def checkin_attempt(schedule_id: int, occurrence: str, attempt_no: int, adhoc: bool = False) -> str:
    with wired() as services:
        return checkins.run_attempt(
            services, schedule_id, datetime.fromisoformat(occurrence), attempt_no, adhoc=adhoc
        )


def checkin_watchdog(attempt_id: int) -> str:
    with wired() as services:
        return checkins.watchdog(services, attempt_id)


def checkin_alerts(schedule_id: int, occurrence: str, reason: str) -> str:
    with wired() as services:
        return alerts.raise_alerts(
            services, schedule_id, datetime.fromisoformat(occurrence), reason
        )


def daily_summary(clinic_id: str, day: str) -> str:
    with wired() as services:
        return summary.send_and_schedule_next(services, clinic_id, date.fromisoformat(day))
