"""Outbound work is queued by the dotted path RQ stores: each names its entry point."""

from __future__ import annotations

from rq.utils import import_attribute

from callgateway.jobs import outbound as jobs
from callgateway.outbound import scheduling


def test_outbound_work_is_queued_under_the_entry_points_in_the_jobs_room() -> None:
    assert import_attribute(scheduling.SEND_REMINDER) is jobs.send_reminder
    assert import_attribute(scheduling.CHECKIN_ATTEMPT) is jobs.checkin_attempt
    assert import_attribute(scheduling.CHECKIN_WATCHDOG) is jobs.checkin_watchdog
    assert import_attribute(scheduling.CHECKIN_ALERTS) is jobs.checkin_alerts
    assert import_attribute(scheduling.DAILY_SUMMARY) is jobs.daily_summary
