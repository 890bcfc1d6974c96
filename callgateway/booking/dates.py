"""What a caller means by "next Tuesday afternoon" or "tomorrow at 3", in the clinic's time.

Calendar dates are resolved by dateparser (relative to the clinic's local now, preferring
the future). Around it sit only the pieces dateparser does not do for a booking line:
clock times said the way people say them to a receptionist ("at 3" means 3 pm when the
clinic is open in the afternoon), parts of the day, week ranges and "the next free one".
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["When", "parse_date", "parse_when", "say_date", "say_time", "say_when", "warm_up"]

# How far ahead a caller may book, and the range searched when no day was named.
HORIZON_DAYS = 366
ASAP_DAYS = 28

_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY = "|".join(_WEEKDAYS)
_DATEISH = re.compile(
    rf"\d|\b(?:{_MONTHS}|{_WEEKDAY}|today|tomorrow|tonight|day|days|week|weeks|month)\b"
)
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}  # fmt: skip
_NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}  # fmt: skip
_SUFFIX = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd", 31: "st"}
_ORDINAL_WORD = re.compile(r"\b(?:(twenty|thirty)[ -])?(" + "|".join(_ORDINALS) + r")\b")

_PARTS = {
    "morning": (time(0, 0), time(12, 0)),
    "lunchtime": (time(11, 30), time(14, 0)),
    "afternoon": (time(12, 0), time(17, 0)),
    "evening": (time(17, 0), time(23, 59)),
}
_PART = re.compile(
    r"\b(?:in the |this |tomorrow )?(morning|lunchtime|lunch time|afternoon|evening)\b"
)
_ASAP = re.compile(
    r"\b(?:next (?:free|available)|first (?:free|available)|earliest|soonest|as soon as"
    r"|any ?time|whenever|anything free)\b"
)
_HOUR = r"(\d{1,2}|" + "|".join(_NUMBERS) + r")"
# "at 3", "3 pm", "3:15", "15.30", "3 o'clock", "after 2", "before 11 am"
_CLOCK = re.compile(
    r"\b(?:(?P<prep>at|around|about|for|from|after|before|by)\s+)?"
    + _HOUR.replace("(", "(?P<hour>", 1)
    + r"(?:[:.](?P<min>\d{2}))?\s*(?P<mer>a\.?m\.?|p\.?m\.?|o'?clock)?(?![\w'])"
)
_HALF = re.compile(
    r"\b(?:(?P<prep>at|around|about|after|before)\s+)?(?P<part>half|quarter) (?P<rel>past|to) "
    + _HOUR.replace("(", "(?P<hour>", 1)
    + r"\b"
)
_NOON = re.compile(r"\b(?:(?P<prep>at|around|about|after|before)\s+)?(?:12 )?\b(?:noon|midday)\b")
_WEEK = re.compile(r"\b(next week|this week|later this week|the week after next)\b")
_DAY_AFTER = re.compile(r"\bthe day after tomorrow\b")
_BARE_DAY = re.compile(r"^(?:on )?(?:the )?(\d{1,2})(?:st|nd|rd|th)?$")
_MONTH_WORD = re.compile(rf"\b(?:{_MONTHS})\b")


@dataclass(frozen=True)
class When:
    """A caller's wish as a search window in the clinic's local calendar."""

    first_day: date
    last_day: date
    earliest: time | None = None  # window start within each day
    latest: time | None = None  # window end within each day
    at: time | None = None  # the exact time asked for, if any
    named_day: bool = False  # the caller named a day (rather than "next free")

    @property
    def days(self) -> list[date]:
        return [
            self.first_day + timedelta(n) for n in range((self.last_day - self.first_day).days + 1)
        ]


def _search_dates(text: str, settings: dict[str, object]) -> list[tuple[str, datetime]] | None:
    # Imported on first use: dateparser costs ~0.5 s to import and load its English data,
    # which a web worker should not pay while booting (or at all, if no one books).
    from dateparser.search import search_dates

    return search_dates(text, languages=["en"], settings=settings)


def warm_up() -> None:
    """Load dateparser now (a worker or a benchmark may want the first turn fast)."""
    _search_dates("next tuesday", {})


_PUNCTUATION = re.compile(r"[,;!?]")
_SPACES = re.compile(r"\s+")
_WEEKDAY_BEFORE_DATE = re.compile(rf"\b(?:{_WEEKDAY}) (?=the \d)")


def _normalise(text: str) -> str:
    text = text.lower().replace("\u2019", "'")
    text = _PUNCTUATION.sub(" ", text)
    text = _SPACES.sub(" ", text).strip().rstrip(".")
    if _MONTH_WORD.search(text):
        # "the first of december": ordinal words only mean days next to a month name.
        text = _ORDINAL_WORD.sub(_ordinal_digits, text)
    # "tuesday the 1st": the weekday only repeats the date (and confuses dateparser).
    return _WEEKDAY_BEFORE_DATE.sub("", text)


def _ordinal_digits(match: re.Match[str]) -> str:
    day = {"twenty": 20, "thirty": 30}.get(match.group(1) or "", 0) + _ORDINALS[match.group(2)]
    return f"{day}{_SUFFIX.get(day, 'th')}"


def _hour(token: str) -> int:
    return _NUMBERS[token] if token in _NUMBERS else int(token)


def _clock(hour: int, minute: int, meridiem: str | None) -> time | None:
    mer = (meridiem or "").replace(".", "")
    if hour > 23 or minute > 59:
        return None
    if mer == "pm" and hour < 12:
        hour += 12
    elif mer == "am" and hour == 12:
        hour = 0
    elif not mer.endswith("m") and 1 <= hour <= 7:
        # Said without am/pm, 1 to 7 o'clock is the afternoon at a clinic.
        hour += 12
    return time(hour, minute)


def _take_clock(text: str) -> tuple[str, time | None, str | None]:
    """Find a clock time; returns (text without it, time, preposition)."""
    m = _NOON.search(text)
    if m:
        return text[: m.start()] + text[m.end() :], time(12, 0), m.group("prep")
    m = _HALF.search(text)
    if m:
        hour = _hour(m.group("hour"))
        minutes = 30 if m.group("part") == "half" else 15
        if m.group("rel") == "to":
            hour, minutes = hour - 1, 60 - minutes
        at = _clock(hour, minutes, None)
        return text[: m.start()] + text[m.end() :], at, m.group("prep")
    for m in _CLOCK.finditer(text):
        prep, minute, mer = m.group("prep"), m.group("min"), m.group("mer")
        hour_token = m.group("hour")
        # A bare number is a day of the month or a count, not a time: "the 14th", "2 days".
        if not (prep or minute or mer):
            continue
        if prep in ("for", "by") and not (minute or mer):
            continue
        if hour_token in _NUMBERS and not (prep or mer):
            continue
        rest = text[m.end() :].lstrip()
        if rest.startswith(("st ", "nd ", "rd ", "th ", "days", "day", "weeks", "week")):
            continue
        if rest.startswith(("of ",)) or _MONTH_WORD.match(rest):
            continue
        at = _clock(_hour(hour_token), int(minute or 0), mer)
        if at is None:
            continue
        return text[: m.start()] + " " + text[m.end() :], at, prep
    return text, None, None


def _local_now(now: datetime, tz: ZoneInfo) -> datetime:
    return now.astimezone(tz)


def _week_range(phrase: str, today: date) -> tuple[date, date]:
    monday = today - timedelta(days=today.weekday())
    if phrase == "next week":
        return monday + timedelta(7), monday + timedelta(13)
    if phrase == "the week after next":
        return monday + timedelta(14), monday + timedelta(20)
    return today, monday + timedelta(6)


# --- The day dateparser finds, once per phrase and local date ------------------------------
#
# dateparser takes about a millisecond a phrase, and callers say the same few phrases
# ("next tuesday", "tomorrow"). What it finds depends on the text and the clinic's local
# now. When every word is a calendar word (weekdays, months, day numbers, counts of days,
# weeks or months, today, tomorrow) or one dateparser does not know at all, nothing in the
# text can carry a time of day or a timezone, so the answer depends on the local date only:
# it is kept per (text, local date). Anything else ("in 2 hours", "now", "tonight", "10:30",
# "bst", "i'm" whose "m" is a minute) goes to dateparser every time.
# tests/unit/test_dates_speed.py checks both word lists against dateparser's own data.
_MONTH_NAMES = frozenset(_MONTHS.split("|"))
_COUNTED = frozenset({"day", "days", "week", "weeks", "month", "months"})
_BEFORE_COUNT = _COUNTED | _MONTH_NAMES
_CALENDAR_WORDS = frozenset(
    {"today", "tomorrow", "next", "this", "on", "the", "of", "in", "a", "an", "and"}
).union(_WEEKDAYS, _MONTH_NAMES, _COUNTED)
_UNKNOWN_TO_DATEPARSER = frozenset(
    {
        "i", "i'd", "id", "me", "us", "you", "please", "can", "could", "would", "like",
        "to", "come", "see", "for", "book", "appointment", "maybe", "perhaps", "yes", "yeah",
        "ok", "okay", "um", "uh", "erm", "er", "how", "what", "is", "it", "that", "be", "do",
        "have", "possible", "then", "actually", "instead", "so", "well", "any", "free",
        "good", "great", "fine", "or", "if",
    }
)  # fmt: skip
_DAY_NUMBER = re.compile(r"\d{1,2}(?:st|nd|rd|th)")
_COUNT = re.compile(r"\d{1,2}")
_SEEN_DAYS: OrderedDict[tuple[str, date], date | None] = OrderedDict()
_SEEN_DAYS_MAX = 512
_SEEN_DAYS_LOCK = threading.Lock()


def _calendar_only(text: str) -> bool:
    """True when the day `text` names cannot depend on the time of day (see above)."""
    words = text.split()
    for i, word in enumerate(words):
        if word in _CALENDAR_WORDS or word in _UNKNOWN_TO_DATEPARSER:
            continue
        if _DAY_NUMBER.fullmatch(word):
            continue
        # A number only as a count or a day beside a month: "in 2 days", "24 november".
        if _COUNT.fullmatch(word) and (
            (i + 1 < len(words) and words[i + 1] in _BEFORE_COUNT)
            or (i > 0 and words[i - 1] in _MONTH_NAMES)
        ):
            continue
        return False
    return True


def _find_day(text: str, today: date, base: datetime) -> date | None:
    """The calendar day named in `text`, via dateparser; None when there is none."""
    if not _DATEISH.search(text):
        return None
    if not _calendar_only(text):
        return _parse_day(text, today, base)
    key = (text, today)
    with _SEEN_DAYS_LOCK:
        if key in _SEEN_DAYS:
            _SEEN_DAYS.move_to_end(key)
            return _SEEN_DAYS[key]
    day = _parse_day(text, today, base)
    with _SEEN_DAYS_LOCK:
        _SEEN_DAYS[key] = day
        if len(_SEEN_DAYS) > _SEEN_DAYS_MAX:
            _SEEN_DAYS.popitem(last=False)
    return day


def _parse_day(text: str, today: date, base: datetime) -> date | None:
    found = _search_dates(
        text,
        {
            "PREFER_DATES_FROM": "future",
            "RELATIVE_BASE": base.replace(tzinfo=None),
            "RETURN_AS_TIMEZONE_AWARE": False,
        },
    )
    for fragment, value in found or []:
        words = fragment.strip().split()
        # "may I book…": a lone month name is a verb or a whole month, not a day.
        if len(words) == 1 and _MONTH_WORD.fullmatch(words[0]):
            continue
        if fragment.strip() in ("now",):
            return today
        day = value.date()
        bare = _BARE_DAY.match(fragment.strip())
        if bare:
            # dateparser's search mis-reads "on the 1st"; a bare day of the month is this
            # month's, or next month's once it has passed.
            n = int(bare.group(1))
            day = _day_of_month(today, n)
            if day is None:
                continue
        elif day < today:
            day = _add_years(day, 1) if _MONTH_WORD.search(fragment) else _add_months(day, 1)
        elif _add_years(day, -1) >= today:
            # dateparser's "future" skips today itself ("the 23rd of November", said on the
            # 23rd, is today, not next year): the nearest date not in the past.
            day = _add_years(day, -1)
        return day
    return None


def _day_of_month(today: date, n: int) -> date | None:
    for months in range(3):
        first = _add_months(today.replace(day=1), months)
        try:
            candidate = first.replace(day=n)
        except ValueError:
            continue
        if candidate >= today:
            return candidate
    return None


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    for d in (day.day, 30, 29, 28):
        try:
            return day.replace(year=year, month=month, day=d)
        except ValueError:
            continue
    raise ValueError("unreachable")


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def parse_when(text: str, tz: ZoneInfo, now: datetime) -> When | None:
    """The window a caller asks for, or None when they named no time at all."""
    local = _local_now(now, tz)
    today = local.date()
    norm = _DAY_AFTER.sub("in 2 days", _normalise(text))
    found = False
    first, last = today, today + timedelta(ASAP_DAYS)
    named_day = False

    norm, at, prep = _take_clock(norm)
    earliest = latest = None
    if at is not None:
        found = True
        if prep == "after":
            earliest, at = at, None
        elif prep == "before":
            latest, at = at, None

    part = _PART.search(norm)
    if part:
        found = True
        lo, hi = _PARTS[part.group(1).replace(" ", "")]
        earliest = max(earliest, lo) if earliest else lo
        latest = min(latest, hi) if latest else hi
        if "tomorrow" in part.group(0):
            norm = norm.replace(part.group(0), " tomorrow ")
        else:
            norm = norm.replace(part.group(0), " ")

    week = _WEEK.search(norm)
    if week:
        found = named_day = True
        first, last = _week_range(week.group(1), today)
        norm = norm.replace(week.group(0), " ")

    day = _find_day(norm, today, local)
    if day is not None:
        found = named_day = True
        if week and first <= today + timedelta(7) and day < first:
            # "Tuesday next week": the weekday inside the named week.
            day = day + timedelta(days=7 * ((first - day).days // 7 + 1))
        first = last = day
    if _ASAP.search(norm):
        found = True

    if not found:
        return None
    if at is not None and not named_day:
        # "at 3" alone: today if 3 pm is still ahead, otherwise from tomorrow on.
        first = today if local.time() < at else today + timedelta(1)
        last = first + timedelta(ASAP_DAYS)
    last = min(last, today + timedelta(HORIZON_DAYS))
    return When(first, max(first, last), earliest, latest, at, named_day)


def parse_date(text: str, tz: ZoneInfo, now: datetime) -> date | None:
    """A single calendar day said by the caller ("Tuesday", "the 1st of December")."""
    when = parse_when(text, tz, now)
    if when is None or not when.named_day or when.first_day != when.last_day:
        return None
    return when.first_day


def widen(when: When, days: int = ASAP_DAYS) -> When:
    """The same wish with any day or time: what to offer when the asked-for window is full."""
    return replace(
        when,
        last_day=when.first_day + timedelta(days),
        earliest=None,
        latest=None,
        at=None,
        named_day=False,
    )


# --- Saying dates and times back --------------------------------------------------------


def say_time(at: datetime | time, language: str = "en-GB") -> str:
    t = at.time() if isinstance(at, datetime) else at
    hour12 = t.hour % 12 or 12
    if t.hour == 12 and t.minute == 0:
        return "midday" if language != "en-US" else "noon"
    suffix = "am" if t.hour < 12 else "pm"
    return f"{hour12} {suffix}" if t.minute == 0 else f"{hour12}:{t.minute:02d} {suffix}"


def say_date(day: date, language: str = "en-GB") -> str:
    weekday = day.strftime("%A")
    month = day.strftime("%B")
    if language == "en-US":
        return f"{weekday}, {month} {day.day}"
    return f"{weekday} {day.day} {month}"


def say_when(at: datetime, tz: ZoneInfo, language: str = "en-GB") -> str:
    local = at.astimezone(tz)
    return f"{say_date(local.date(), language)} at {say_time(local, language)}"
