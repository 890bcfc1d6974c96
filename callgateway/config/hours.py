"""The hours grammar: day names, "HH:MM" times of day and "HH:MM-HH:MM" spans, as written
in the clinic config (opening hours, reminder quiet hours) and in check-in schedules.

One grammar for every reader, here in config because config validates clinic hours at
start-up and everything else builds on config (booking reads opening hours through
`Clinic.opening_hours`, outbound reads quiet hours and check-in days and times). What a
caller says ("tomorrow at 3") is another language, parsed by `booking.dates`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_CLOCK = r"(\d{2}):(\d{2})"
_TIME = re.compile(rf"^{_CLOCK}$")
_SPAN = re.compile(rf"^{_CLOCK}-{_CLOCK}$")
# "24:00" may close the day: the last second of it, so that a range still ends after it
# starts on the same day.
_END_OF_DAY = time(23, 59, 59)


def _clock(hour: int, minute: int, end_of_day: bool = False) -> time | None:
    if minute > 59:
        return None
    if end_of_day and (hour, minute) == (24, 0):
        return _END_OF_DAY
    return time(hour, minute) if hour <= 23 else None


def parse_time(spec: str) -> time:
    """`"09:30"` (24-hour clock, two digits each) -> 09:30. ValueError when malformed."""
    m = _TIME.match(spec.strip())
    at = _clock(int(m.group(1)), int(m.group(2))) if m else None
    if at is None:
        raise ValueError(f"expected HH:MM, got {spec!r}")
    return at


def parse_span(spec: str, end_of_day: bool = False) -> tuple[time, time]:
    """`"08:00-12:30"` -> (08:00, 12:30), in the order written; with `end_of_day`, "24:00"
    may end it. ValueError when malformed."""
    m = _SPAN.match(spec)
    if not m:
        raise ValueError(f"expected HH:MM-HH:MM, got {spec!r}")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    start, end = _clock(h1, m1), _clock(h2, m2, end_of_day)
    if start is None or end is None:
        raise ValueError(f"no such time in {spec!r}")
    return start, end


def parse_opening_hours(spec: str) -> list[tuple[time, time]]:
    """`"08:00-12:00, 13:00-18:00"` -> [(08:00, 12:00), (13:00, 18:00)]: ranges within
    one day, in order, not overlapping."""
    ranges: list[tuple[time, time]] = []
    for part in spec.split(","):
        text = part.strip()
        start, end = parse_span(text, end_of_day=True)
        if end <= start:
            raise ValueError(f"closes before it opens: {text!r}")
        if ranges and start < ranges[-1][1]:
            raise ValueError(f"overlaps the previous range: {text!r}")
        ranges.append((start, end))
    return ranges


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time

    def contains(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        # Wraps midnight ("20:00-08:00").
        return local >= self.start or local < self.end


def parse_quiet_hours(spec: str | None) -> QuietHours | None:
    """`"20:00-08:00"` -> QuietHours (may wrap midnight); None or "" -> no quiet hours.
    ValueError when malformed."""
    if not spec:
        return None
    start, end = parse_span(spec)
    if start == end:
        raise ValueError(f"quiet hours start and end at the same time: {spec!r}")
    return QuietHours(start, end)


def parse_days(spec: str) -> list[str]:
    """`"mon,tue"` (or "daily", "weekdays") -> ["mon", "tue"] in week order."""
    text = spec.strip().lower()
    if text in ("daily", "every day", "all"):
        return list(DAYS)
    if text == "weekdays":
        return list(DAYS[:5])
    days = [d.strip() for d in text.split(",") if d.strip()]
    unknown = [d for d in days if d not in DAYS]
    if unknown or not days:
        raise ValueError(f"unknown day {unknown[0] if unknown else spec!r} (use mon..sun)")
    return [d for d in DAYS if d in days]
