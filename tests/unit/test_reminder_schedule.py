"""When reminders and check-in calls go out: DST, quiet hours, and the config that sets them."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from callgateway.config import ConfigError, parse_config
from callgateway.config.hours import QuietHours, parse_days, parse_quiet_hours
from callgateway.outbound.timing import (
    next_occurrence,
    place_reminder,
    reminder_due,
    shift_out_of_quiet,
)

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
QUIET = QuietHours(time(20, 0), time(8, 0))
LONG_AGO = datetime(2025, 1, 1, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz).astimezone(UTC)


def test_day_reminder_keeps_the_wall_clock_time_across_spring_forward() -> None:
    # Clocks go forward at 01:00 UTC on Sunday 30 March 2025: 10:00 BST is 09:00 UTC.
    starts = local(LONDON, 2025, 3, 30, 10, 0)
    due = reminder_due(starts, 24, LONDON)
    assert due.astimezone(LONDON).replace(tzinfo=None) == datetime(2025, 3, 29, 10, 0)
    assert due == utc(2025, 3, 29, 10, 0)  # 25 elapsed hours, not 24


def test_day_reminder_keeps_the_wall_clock_time_across_fall_back() -> None:
    starts = local(NEW_YORK, 2025, 11, 2, 9, 30)  # EST, the day clocks go back
    due = reminder_due(starts, 48, NEW_YORK)
    assert due.astimezone(NEW_YORK).replace(tzinfo=None) == datetime(2025, 10, 31, 9, 30)
    assert due == utc(2025, 10, 31, 13, 30)  # EDT then


def test_hour_reminder_is_elapsed_time() -> None:
    starts = local(LONDON, 2025, 3, 30, 10, 0)
    assert reminder_due(starts, 3, LONDON) == utc(2025, 3, 30, 6, 0)


def test_reminder_in_evening_quiet_hours_moves_to_the_morning_before_the_appointment() -> None:
    starts = local(LONDON, 2025, 6, 10, 9, 0)  # Tuesday 09:00
    slot = place_reminder(starts, 12, LONDON, QUIET, LONG_AGO)  # Monday 21:00: quiet
    assert slot.send_at == local(LONDON, 2025, 6, 10, 8, 0)


def test_reminder_in_early_morning_quiet_hours_moves_to_eight_the_same_day() -> None:
    starts = local(LONDON, 2025, 6, 10, 7, 30)  # 24h before: Monday 07:30, quiet
    slot = place_reminder(starts, 24, LONDON, QUIET, LONG_AGO)
    assert slot.send_at == local(LONDON, 2025, 6, 9, 8, 0)


def test_reminder_whose_quiet_hours_end_after_the_appointment_is_skipped() -> None:
    starts = local(LONDON, 2025, 6, 10, 7, 0)
    slot = place_reminder(starts, 2, LONDON, QUIET, LONG_AGO)  # 05:00 -> 08:00 > 07:00
    assert slot.send_at is None and slot.reason == "quiet-hours"


def test_end_of_quiet_hours_on_the_night_clocks_go_back_is_eight_local() -> None:
    # 26 October 2025: 02:00 BST becomes 01:00 GMT. 08:00 that morning is 08:00 UTC.
    starts = local(LONDON, 2025, 10, 26, 10, 0)  # 10:00 GMT = 10:00 UTC
    slot = place_reminder(starts, 9, LONDON, QUIET, LONG_AGO)  # 01:00 UTC, quiet
    assert slot.send_at == utc(2025, 10, 26, 8, 0)


def test_end_of_quiet_hours_on_the_morning_clocks_go_forward_is_eight_local() -> None:
    starts = local(LONDON, 2025, 3, 30, 12, 0)
    slot = shift_out_of_quiet(utc(2025, 3, 30, 0, 30), starts, LONDON, QUIET)
    assert slot.send_at == utc(2025, 3, 30, 7, 0)  # 08:00 BST


def test_reminder_outside_quiet_hours_is_unchanged() -> None:
    starts = local(LONDON, 2025, 6, 10, 15, 0)
    assert place_reminder(starts, 24, LONDON, QUIET, LONG_AGO).send_at == local(
        LONDON, 2025, 6, 9, 15, 0
    )


def test_no_quiet_hours_means_any_time() -> None:
    starts = local(LONDON, 2025, 6, 10, 9, 0)
    assert place_reminder(starts, 12, LONDON, None, LONG_AGO).send_at == local(
        LONDON, 2025, 6, 9, 21, 0
    )


def test_reminder_already_due_when_booked_is_skipped() -> None:
    starts = local(LONDON, 2025, 6, 10, 15, 0)
    now = local(LONDON, 2025, 6, 10, 9, 0)
    slot = place_reminder(starts, 24, LONDON, QUIET, now)
    assert slot.send_at is None and slot.reason == "booked-inside-window"


def test_daytime_quiet_hours_do_not_wrap() -> None:
    lunch = parse_quiet_hours("12:00-14:00")
    assert lunch is not None
    assert lunch.contains(time(13, 0)) and not lunch.contains(time(21, 0))
    starts = local(LONDON, 2025, 6, 10, 16, 0)
    assert shift_out_of_quiet(
        local(LONDON, 2025, 6, 10, 12, 30), starts, LONDON, lunch
    ).send_at == (local(LONDON, 2025, 6, 10, 14, 0))


@pytest.mark.parametrize("spec", ["20:00", "25:00-08:00", "08:00-08:00", "8:00-9:00"])
def test_malformed_quiet_hours_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_quiet_hours(spec)


def test_daily_check_in_follows_local_time_across_spring_forward() -> None:
    days = parse_days("daily")
    first = next_occurrence(days, time(9, 0), LONDON, utc(2025, 3, 29, 12, 0))
    assert first == utc(2025, 3, 30, 8, 0)  # 09:00 BST
    before = next_occurrence(days, time(9, 0), LONDON, utc(2025, 3, 28, 12, 0))
    assert before == utc(2025, 3, 29, 9, 0)  # 09:00 GMT


def test_check_in_on_chosen_days_only() -> None:
    # Wednesday 11 June 2025, after 09:00: next is Friday.
    after = local(LONDON, 2025, 6, 11, 9, 30)
    assert next_occurrence(["mon", "fri"], time(9, 0), LONDON, after) == local(
        LONDON, 2025, 6, 13, 9, 0
    )
    # Strictly after: an occurrence at exactly `after` is the one already running.
    at = local(LONDON, 2025, 6, 13, 9, 0)
    assert next_occurrence(["mon", "fri"], time(9, 0), LONDON, at) == local(
        LONDON, 2025, 6, 16, 9, 0
    )


def test_days_are_parsed_in_week_order_and_unknown_days_refused() -> None:
    assert parse_days("fri,mon") == ["mon", "fri"]
    assert parse_days("weekdays") == ["mon", "tue", "wed", "thu", "fri"]
    with pytest.raises(ValueError):
        parse_days("mon,funday")


CLINIC = {
    "id": "c",
    "name": "C",
    "region": "uk",
    "timezone": "Europe/London",
    "numbers": ["+442071234567"],
    "greeting": "Hello.",
}


def config_with(**clinic: object) -> dict[str, object]:
    return {
        "regions": {"uk": {"aws_region": "eu-west-2", "bucket": "b"}},
        "clinics": [{**CLINIC, **clinic}],
    }


def test_config_accepts_reminders_and_summary_email() -> None:
    config = parse_config(
        config_with(
            reminders={"sms_hours_before": [24, 2], "call_hours_before": [48]},
            summary_email={
                "to": ["manager@clinic.example"],
                "smtp_host": "127.0.0.1",
                "smtp_port": 2525,
                "from": "gateway@clinic.example",
            },
        )
    )
    clinic = config.clinics[0]
    assert clinic.reminders.sms_hours_before == [24, 2]
    assert clinic.summary_email is not None
    assert clinic.summary_email.from_ == "gateway@clinic.example"
    assert clinic.summary_email.smtp_port == 2525
    assert parse_config(config_with()).clinics[0].summary_email is None


@pytest.mark.parametrize(
    ("clinic", "key"),
    [
        ({"reminders": {"quiet_hours": "late"}}, "clinics[0].reminders.quiet_hours"),
        ({"reminders": {"sms_hours_before": [0]}}, "clinics[0].reminders.sms_hours_before[0]"),
        (
            {"summary_email": {"to": ["x@y.example"], "smtp_host": "h"}},
            "clinics[0].summary_email.from",
        ),
        (
            {"summary_email": {"to": ["nobody"], "smtp_host": "h", "from": "a@b.example"}},
            "clinics[0].summary_email.to[0]",
        ),
        (
            {
                "summary_email": {
                    "to": ["a@b.example"],
                    "smtp_host": "h",
                    "from": "a@b.example",
                    "x": 1,
                }
            },
            "clinics[0].summary_email.x",
        ),
    ],
)
def test_bad_outbound_config_names_the_key(clinic: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(config_with(**clinic))
    assert str(err.value).startswith(key + ":")
