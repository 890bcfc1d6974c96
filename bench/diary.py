"""Distinct appointment times for the bench's callers, from the clinic's own hours.

If every scripted caller asked for "next Tuesday afternoon", all the calls of a block would
be offered the same first free slot at once: one books, the rest hear "that time has just
been taken" and are offered another. The turn figure would then measure that race on
nearly every confirmation, which a clinic never sees at that rate. Each caller asks for
their own time instead, starting a week out (past any lead time), so a confirmation books.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from callgateway.config import Clinic

FIRST_DAY = 7  # days from today: clear of minimum lead times and of "today" wording
MAX_DAYS = 300  # inside the agent's booking horizon


def times(clinic: Clinic, today: date, count: int) -> list[str]:
    """Up to `count` spoken times ("Tuesday 1 December at 2:15 pm"), each a distinct slot
    start of the clinic's first appointment type, in opening hours, on open days."""
    if not clinic.appointment_types:
        return []
    step = timedelta(minutes=clinic.appointment_types[0].minutes)
    closed = set(clinic.closed_dates)
    out: list[str] = []
    for offset in range(FIRST_DAY, FIRST_DAY + MAX_DAYS):
        day = today + timedelta(days=offset)
        if day in closed:
            continue
        for opens, closes in clinic.opening_hours(day.weekday()):
            at, end = datetime.combine(day, opens), datetime.combine(day, closes)
            while at + step <= end:
                out.append(f"{day:%A} {day.day} {day:%B} at {_spoken(at)}")
                if len(out) == count:
                    return out
                at += step
    return out


def _spoken(at: datetime) -> str:
    hour = at.hour % 12 or 12
    suffix = "am" if at.hour < 12 else "pm"
    return f"{hour}:{at.minute:02d} {suffix}" if at.minute else f"{hour} {suffix}"
