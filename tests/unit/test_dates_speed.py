"""dateparser runs once per calendar phrase and local date, and only where that is exact.

`callgateway.booking.dates` keeps the day dateparser found for a phrase made only of
calendar words and words dateparser does not know: such a phrase cannot depend on the
time of day. These tests hold the word lists to dateparser's own data and check the
claim itself across DST changes, month and year ends and midnight.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from callgateway.booking import dates

LONDON = ZoneInfo("Europe/London")
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dates, "_SEEN_DAYS", OrderedDict())


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The texts handed to dateparser."""
    seen: list[str] = []
    real = dates._search_dates

    def counting(text: str, settings: dict[str, object]) -> Any:
        seen.append(text)
        return real(text, settings)

    monkeypatch.setattr(dates, "_search_dates", counting)
    yield seen


def _dateparser_words() -> tuple[set[str], set[str], list[re.Pattern[str]], set[str]]:
    """dateparser's English vocabulary, timezone names, simplifications and day units."""
    from dateparser.data.date_translation_data.en import info
    from dateparser.languages.locale import _compile_simplification
    from dateparser.timezones import timezone_info_list

    words: set[str] = set()

    def walk(x: object) -> None:
        if isinstance(x, str):
            words.update(x.lower().split())
        elif isinstance(x, dict):
            for k, v in x.items():
                walk(k)
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(info)
    zones = {name.lower() for group in timezone_info_list for name, _ in group["timezones"]}
    simplifications = [
        _compile_simplification(next(iter(s)), False) for s in info["simplifications"]
    ]
    return words, zones, simplifications, {w.lower() for w in info["day"]}


def test_unknown_words_are_unknown_to_dateparser() -> None:
    words, zones, simplifications, day_units = _dateparser_words()
    for word in dates._UNKNOWN_TO_DATEPARSER:
        pieces = [p for p in re.split(r"\W|_", word) if p]
        for piece in pieces:  # "i'd": "i", and "d" which is dateparser's "day"
            assert piece not in zones, word
            assert piece not in words or piece in day_units, word
        assert not any(s.search(word) for s in simplifications), word


def test_calendar_words_carry_no_time_of_day_or_zone() -> None:
    _, zones, _, _ = _dateparser_words()
    clock = {
        "hour", "hours", "hr", "hrs", "h", "min", "mins", "minute", "minutes", "m", "sec",
        "secs", "second", "seconds", "s", "am", "pm", "now", "noon", "midnight", "tonight",
        "night", "morning", "afternoon", "evening", "ago", "time",
    }  # fmt: skip
    for word in dates._CALENDAR_WORDS:
        assert word not in clock and word not in zones, word


@pytest.mark.parametrize(
    "said",
    [
        "in 2 hours", "in 30 minutes", "now", "tonight", "i'm free tuesday", "tuesday 10",
        "10:30 tuesday", "tuesday bst", "tuesday at 10", "2026-12-01", "12/01", "noon",
        "tuesday night", "in an hour", "the 24th 2027",
    ],
)  # fmt: skip
def test_phrases_that_could_hold_a_time_or_zone_are_parsed_every_time(said: str) -> None:
    assert not dates._calendar_only(said)


# Local dates where a wrong answer would show: DST changes (London, New York, Sydney),
# month, year and leap-day ends, and an ordinary Monday.
DAYS = [
    date(2026, 3, 29), date(2026, 10, 25), date(2026, 3, 8), date(2026, 4, 5),
    date(2026, 11, 23), date(2026, 11, 30), date(2026, 12, 31), date(2028, 2, 29),
]  # fmt: skip
TIMES = [time(0, 0), time(0, 0, 0, 1), time(12, 0), time(23, 59, 59, 999999)]
CALENDAR_PHRASES = [
    "next tuesday", "tuesday", "on sunday", "this friday", "tomorrow", "today", "on the 1st",
    "the 31st", "24 november", "the 29th of february", "in 2 days", "in a week",
    "can i come in on the 3rd of december please", "i'd like monday",
]  # fmt: skip


@pytest.mark.parametrize("said", CALENDAR_PHRASES)
def test_a_calendar_phrase_names_the_same_day_at_any_time_of_that_day(said: str) -> None:
    assert dates._calendar_only(said)
    for day in DAYS:
        found = {dates._parse_day(said, day, datetime.combine(day, t)) for t in TIMES}
        assert len(found) == 1, (said, day, found)


def test_a_calendar_phrase_is_parsed_once_per_local_date(parses: list[str]) -> None:
    first = dates.parse_when("next Tuesday afternoon", LONDON, MONDAY)
    again = dates.parse_when("next Tuesday afternoon", LONDON, MONDAY + timedelta(hours=10))
    assert first == again and first is not None and first.first_day == date(2026, 11, 24)
    assert [text.strip() for text in parses] == ["next tuesday"]
    # Another local date parses again: 23:30 UTC is already Tuesday in Sydney.
    sydney = dates.parse_when("next Tuesday", ZoneInfo("Australia/Sydney"), MONDAY.replace(hour=23))
    assert sydney is not None and sydney.first_day == date(2026, 12, 1)
    assert len(parses) == 2


def test_other_phrases_are_parsed_every_time(parses: list[str]) -> None:
    for _ in range(2):
        when = dates.parse_when("in 3 hours", LONDON, MONDAY)
        assert when is not None and when.first_day == date(2026, 11, 23)
    assert len(parses) == 2


def test_kept_days_are_the_days_dateparser_gives(parses: list[str]) -> None:
    for said in CALENDAR_PHRASES:
        for now in (MONDAY, MONDAY + timedelta(hours=14)):
            today = now.astimezone(LONDON).date()
            local = now.astimezone(LONDON)
            assert dates._find_day(said, today, local) == dates._parse_day(said, today, local)


def test_the_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dates, "_search_dates", lambda text, settings: [])
    start = date(2026, 1, 1)
    for n in range(dates._SEEN_DAYS_MAX + 50):
        dates._find_day("next tuesday", start + timedelta(n), datetime(2026, 1, 1))
    assert len(dates._SEEN_DAYS) == dates._SEEN_DAYS_MAX
