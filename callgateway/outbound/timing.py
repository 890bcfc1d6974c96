"""When outbound contact may happen: reminder due times, quiet hours, check-in occurrences.

Pure functions over aware datetimes and the clinic's timezone (no I/O), so that the rules
around DST and quiet hours are tested on their own.

Wall-clock rules, because that is what a patient reads on the calendar:
- a reminder offset that is a whole number of days means "same local time, N days before"
  (a 24-hour reminder for 10:00 on the Sunday clocks go forward still arrives at 10:00 on
  Saturday); other offsets are elapsed hours;
- quiet hours and check-in times are local wall-clock times in the clinic's timezone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from callgateway.config.hours import DAYS, QuietHours


def at_local(day: datetime | object, wall: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock `wall` on local date `day` in `tz`.

    A wall time inside a spring-forward gap lands just after the gap (fold=0 semantics of
    zoneinfo, normalised through UTC); an ambiguous one in autumn takes its first
    occurrence.
    """
    local = datetime.combine(day, wall, tzinfo=tz)  # type: ignore[arg-type]
    return local.astimezone(UTC)


def reminder_due(starts_at: datetime, offset_hours: int, tz: ZoneInfo) -> datetime:
    """Nominal send time of a reminder `offset_hours` before `starts_at` (aware, UTC)."""
    if offset_hours % 24 == 0:
        local = starts_at.astimezone(tz)
        day = local.date() - timedelta(days=offset_hours // 24)
        return at_local(day, local.time().replace(tzinfo=None), tz)
    return (starts_at - timedelta(hours=offset_hours)).astimezone(UTC)


def end_of_quiet(at: datetime, quiet: QuietHours, tz: ZoneInfo) -> datetime:
    """The first instant at or after `at` outside quiet hours (`at` itself when outside)."""
    local = at.astimezone(tz)
    if not quiet.contains(local.time().replace(tzinfo=None)):
        return at.astimezone(UTC)
    day = local.date()
    candidate = at_local(day, quiet.end, tz)
    if candidate <= at:
        candidate = at_local(day + timedelta(days=1), quiet.end, tz)
    return candidate


@dataclass(frozen=True)
class Slot:
    """Where a reminder lands: `send_at`, or None with the reason it is skipped."""

    send_at: datetime | None
    reason: str | None = None


def place_reminder(
    starts_at: datetime,
    offset_hours: int,
    tz: ZoneInfo,
    quiet: QuietHours | None,
    now: datetime,
) -> Slot:
    """Send time for one reminder, moved out of quiet hours; skipped when that is too late."""
    due = reminder_due(starts_at, offset_hours, tz)
    if due < now:
        # Booked inside the reminder window: a "24 hours before" sent at once would be noise.
        return Slot(None, "booked-inside-window")
    return shift_out_of_quiet(due, starts_at, tz, quiet)


def shift_out_of_quiet(
    at: datetime, starts_at: datetime, tz: ZoneInfo, quiet: QuietHours | None
) -> Slot:
    """`at` itself, or the end of quiet hours if that is still before the appointment."""
    send_at = end_of_quiet(at, quiet, tz) if quiet else at.astimezone(UTC)
    if send_at >= starts_at:
        return Slot(None, "quiet-hours")
    return Slot(send_at)


def next_occurrence(days: list[str], wall: time, tz: ZoneInfo, after: datetime) -> datetime:
    """The first check-in instant strictly after `after` on one of `days` at local `wall`."""
    if not days:
        raise ValueError("a check-in schedule needs at least one day")
    local_day = after.astimezone(tz).date()
    for i in range(8):
        day = local_day + timedelta(days=i)
        if DAYS[day.weekday()] not in days:
            continue
        candidate = at_local(day, wall, tz)
        if candidate > after:
            return candidate
    raise AssertionError("unreachable: a week always holds one of the days")
