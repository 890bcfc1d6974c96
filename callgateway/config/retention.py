"""Retention: when each record must be gone."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from callgateway.config import DEFAULT_RETENTION, Clinic, Config


def retention_until(config: Config, clinic: Clinic | None, category: str, at: datetime) -> date:
    """The last day a record of `category` created at `at` may be kept.

    The day is counted in the clinic's own timezone so that "kept 30 days" means what the
    clinic manager reads on the calendar.
    """
    if clinic is None:
        days = {**DEFAULT_RETENTION, **config.retention.days()}[category]
        return at.date() + timedelta(days=days)
    local = at.astimezone(clinic.tz).date()
    return local + timedelta(days=config.retention_days(clinic, category))
