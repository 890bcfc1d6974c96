"""callgateway.logs: the JSON formatter's output, its masking, and its cheap paths."""

from __future__ import annotations

import enum
import json
import logging
import math
import re
import sys
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callgateway import logs
from callgateway.phone import mask

# --- the formatter as it was before it was made cheaper (commit e8625f2), kept as the oracle --
# (its scrub is the full substitution with today's pattern: issue 19 changed what is a number)

_OLD_NUMBER = logs._NUMBER
_OLD_SAFE = {"ts", "latency_ms", "call_sid", "message_sid", "recording_sid"}
_OLD_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


def _old_scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _OLD_NUMBER.sub(lambda m: mask(re.sub(r"[^\d+]", "", m.group())), value)
    if isinstance(value, dict):
        return {k: _old_scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_old_scrub(v) for v in value]
    return value


def _old_format(record: logging.LogRecord) -> str:
    payload: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in record.__dict__.items():
        if key not in _OLD_STANDARD and not key.startswith("_"):
            payload[key] = value
    if record.exc_info and record.exc_info[0] is not None:
        payload["error"] = record.exc_info[0].__name__
    clean = {k: v if k in _OLD_SAFE else _old_scrub(v) for k, v in payload.items()}
    return json.dumps(clean, default=str)


# --- records -----------------------------------------------------------------------------------

_LOG = logging.getLogger("callgateway.app")
SID = "CA" + "0123456789abcdef" * 2


def _record(
    msg: str = "webhook",
    *args: Any,
    level: int = logging.INFO,
    exc_info: Any = None,
    name: str = "callgateway.app",
    **extra: Any,
) -> logging.LogRecord:
    logger = logging.getLogger(name)
    return logger.makeRecord(name, level, __file__, 1, msg, args, exc_info, extra=extra)


def _exc_info() -> Any:
    try:
        raise ValueError("callback to +447700900123 failed")
    except ValueError:
        return sys.exc_info()


class Status(enum.IntEnum):
    OK = 200


class Channel(enum.StrEnum):
    SMS = "sms"


NUMBERS = [
    "+447700900123",
    "07700 900123",
    "07700900123",
    "(020) 7123 4567",
    "020-7123-4567",
    "020.7123.4567",
    "+1 (415) 555-0100",
    "+44 (0)20 7123 4567",
    "call 0044 7700 900 123 now",
    "to:+447700900123,from:+442071234567",
    "+447700900123x",  # followed by a word character: not a number to the pattern
    "x+447700900123",
    "order 12345678",
    "1234567",
    "12345678",
    "123456789012345678901234",
    "a12345678",
    "12345678a",
    "2026-11-23",
    "https://api.twilio.com/2010-04-01/Accounts/AC0123/Messages.json",
    "\u0660\u0667\u0667\u0660\u0660\u0669\u0660\u0660\u0661\u0662\u0663",  # Arabic-Indic: \d too
    "".join(chr(0xFF10 + int(d)) for d in "07700900123"),  # fullwidth digits: \d too
    "07700\t900123",
    "07700  900123",  # two separators in a row break the pattern
    "",
    "short",
    SID,
]


def _records() -> list[tuple[str, logging.LogRecord]]:
    cases: list[tuple[str, logging.LogRecord]] = [
        (
            "webhook",
            _record(
                path="/twilio/voice",
                status=200,
                latency_ms=1.23,
                call_sid=SID,
                message_sid=None,
                recording_sid=None,
                clinic="uk-london",
                rejected=False,
            ),
        ),
        ("no extras", _record("retention sweep")),
        ("args", _record("appointment %s for %s at %d", "booked", "+447700900123", 1400)),
        ("dict arg", _record("counts %(n)s", {"n": "07700 900123"})),
        ("message with a number", _record("call to 07700 900123 failed")),
        ("warning", _record("reminder failed", level=logging.WARNING, code=21610, to="+44***")),
        ("exc_info", _record("outbox crashed", level=logging.ERROR, exc_info=_exc_info(), item=7)),
        ("exc_info and error", _record("x", exc_info=_exc_info(), error="ignored")),
        ("exc_info none", _record("x", exc_info=(None, None, None))),
        (
            "nested",
            _record(
                "retention sweep",
                counts={"calls": 3, "sms": 0, "note": "from 07700 900123", "deep": [{"a": "b"}]},
                items=["+447700900123", 1, None, ("07700 900123", 2.5), {"to": "020 7123 4567"}],
                pair=("+447700900123", True),
            ),
        ),
        (
            "non-strings",
            _record(
                ints=447700900123,
                big=2**70,
                neg=-5,
                flt=1e-7,
                nan=math.nan,
                inf=-math.inf,
                yes=True,
                none=None,
                status=Status.OK,
                channel=Channel.SMS,
                when=datetime(2026, 11, 23, 10, 57, 49, tzinfo=UTC),
                day=date(2026, 11, 23),
                at=time(10, 57, 49, 123456),
                wait=timedelta(days=12345678),
                id=UUID("12345678-1234-5678-1234-567812345678"),
            ),
        ),
        ("unicode", _record("héllo ✓", clinic="münchen", note="Zoë rang ☎ twice")),
        ("other logger", _record("x", name="twilio.http_client")),
        ("underscore extra", _record("x", _private="+447700900123", visible="y")),
    ]
    for i, number in enumerate(NUMBERS):
        cases.append((f"number {i}", _record("x", value=number, nested={"v": [number]})))
    formatted = _record("went through a text formatter", clinic="uk-london")
    logging.Formatter("%(asctime)s %(message)s").format(formatted)  # adds message and asctime
    cases.append(("formatted before", formatted))
    return cases


RECORDS = _records()


@pytest.mark.parametrize(("case", "record"), RECORDS, ids=[c for c, _ in RECORDS])
def test_same_json_as_the_previous_formatter(case: str, record: logging.LogRecord) -> None:
    assert logs.JsonFormatter().format(record) == _old_format(record)


@pytest.mark.parametrize(("case", "record"), RECORDS, ids=[c for c, _ in RECORDS])
def test_same_json_without_the_prebuilt_c_encoder(
    case: str, record: logging.LogRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "_C_ENCODER", None)
    assert logs.JsonFormatter().format(record) == _old_format(record)


def test_the_webhook_line() -> None:
    line = logs.JsonFormatter().format(RECORDS[0][1])
    assert list(json.loads(line)) == [
        "ts",
        "level",
        "logger",
        "msg",
        "path",
        "status",
        "latency_ms",
        "call_sid",
        "message_sid",
        "recording_sid",
        "clinic",
        "rejected",
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", json.loads(line)["ts"])


# --- privacy -----------------------------------------------------------------------------------

CLEAR = ["+447700900123", "07700 900123", "447700900123", "7700900123", "7700 900123", "700900"]


def _assert_masked(line: str) -> None:
    for clear in CLEAR:
        assert clear not in line, line


def test_numbers_in_clear_in_extra_fields_are_masked() -> None:
    record = _record(
        "sms from %s",
        "+447700900123",
        caller="+447700900123",
        spoken="my number is 07700 900123",
        patient={"phone": "+447700900123", "notes": ["call back on 07700 900123"]},
        calls=[{"from": "07700 900123"}],
        pair=("+447700900123",),
    )
    line = logs.JsonFormatter().format(record)
    _assert_masked(line)
    out = json.loads(line)
    assert out["caller"] == "+44******0123"
    assert out["spoken"] == "my number is 077****0123"
    assert out["patient"] == {"phone": "+44******0123", "notes": ["call back on 077****0123"]}
    assert out["calls"] == [{"from": "077****0123"}]
    assert out["msg"] == "sms from +44******0123"


def test_numbers_are_masked_where_the_previous_formatter_let_them_through() -> None:
    """Five field names were exempt from the scrub, dict keys were not scrubbed, and values JSON
    cannot hold were written as str() after the scrub. All of those are scrubbed now."""
    record = _record(
        call_sid="+447700900123",
        latency_ms="07700 900123",
        by_caller={"+447700900123": 2},
        callers={"+447700900123"},
        failure=ValueError("no answer from 07700 900123"),
        ts="+447700900123",
    )
    line = logs.JsonFormatter().format(record)
    _assert_masked(line)
    out = json.loads(line)
    assert out["call_sid"] == "+44******0123"
    assert out["by_caller"] == {"+44******0123": 2}
    assert out["callers"] == "{'+44******0123'}"
    assert out["failure"] == "no answer from 077****0123"
    assert out["ts"] == "+44******0123"  # an extra named ts replaces ours, as before


def test_legitimate_sids_and_our_timestamp_are_unchanged_by_the_scrub() -> None:
    for sid in (SID, "SM" + "9" * 32, "RE" + "1234567890" * 3 + "ab", "MM0123456789"):
        assert logs.scrub(sid) == sid
    stamp = logs._timestamp(1795431469.123)
    assert logs.scrub(stamp) == stamp


# --- the cheap paths are exact -----------------------------------------------------------------


def _old_scrub_str(text: str) -> str:
    return _old_scrub(text)


def test_word_and_digit_classes_match_the_str_methods_the_shortcut_relies_on() -> None:
    chars = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    alnum = "".join(c for c in chars if c.isalnum())
    assert re.fullmatch(r"\w*", alnum)
    decimal = "".join(c for c in chars if c.isdecimal())
    assert re.fullmatch(r"\d*", decimal)
    assert re.search(r"\d", "".join(c for c in chars if not c.isdecimal())) is None


@pytest.mark.parametrize("text", NUMBERS)
def test_scrub_str_matches_the_full_substitution(text: str) -> None:
    assert logs.scrub(text) == _old_scrub_str(text)


_PIECES = st.sampled_from(
    [*"0123456789+ ().-_aZ\t\n/:é", "\u0663", "\uff10", "\u00b2", "07700", "900123", "+44", "CA"]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=40).map("".join))
def test_scrub_str_matches_the_full_substitution_for_any_text(text: str) -> None:
    assert logs.scrub(text) == _old_scrub_str(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_scrub_str_matches_the_full_substitution_for_any_unicode(text: str) -> None:
    assert logs.scrub(text) == _old_scrub_str(text)


def _old_ts(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


STAMPS = [
    0.0,
    1.0,
    1795431469.0,
    1795431469.0005,
    1795431469.0004999,
    1795431469.9995,
    1795431469.9999995,
    1795431469.99999949,
    1795431469.123,
    1795431469.1239999,
    1795431469.0000005,
    1795431470.0000004,
    951782400.5,  # 2000-02-29
    253402300799.999,
    1e-7,
    0.9999996,
]


@pytest.mark.parametrize("created", STAMPS)
def test_timestamp_is_datetimes_isoformat(created: float) -> None:
    assert logs._timestamp(created) == _old_ts(created)


@settings(max_examples=400, deadline=None)
@given(st.floats(min_value=0, max_value=253402300799.0))
def test_timestamp_is_datetimes_isoformat_for_any_time(created: float) -> None:
    assert logs._timestamp(created) == _old_ts(created)


def test_timestamp_cache_follows_time_both_ways() -> None:
    for created in (1795431469.5, 1795431470.25, 1795431469.75, 1795431469.9999996, 1.5):
        assert logs._timestamp(created) == _old_ts(created)


def test_timestamp_outside_datetimes_range_fails_as_before() -> None:
    with pytest.raises((ValueError, OverflowError, OSError)):
        logs._timestamp(1e20)


# --- the scrub masks phone numbers, and nothing else (issue 19) ---------------------------------

# Surrounding text: anything, as long as it does not run into the number (a digit or a
# number's separator then a digit right after it, or a digit or "+" right before it, would
# make it a different, longer number).
_CONTINUES = re.compile(r"(?:[ \t.-]|[ \t]?[()][ \t]?)?\d")
_BEFORE = st.text(max_size=30).filter(lambda t: not t[-1:].isdecimal() and not t.endswith("+"))
_AFTER = st.text(max_size=30).filter(lambda t: _CONTINUES.match(t) is None)
E164 = st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True)


@settings(max_examples=500, deadline=None)
@given(_BEFORE, E164, _AFTER)
def test_any_e164_number_embedded_in_text_is_masked(before: str, number: str, after: str) -> None:
    out = logs.scrub(before + number + after)
    assert number not in out
    assert out == before + mask(number) + after


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("call 07700 900123 now", "call 077****0123 now"),
        ("(020) 7123 4567", "020****4567"),
        ("020-7123-4567.", "020****4567."),
        ("+44 (0)20 7123 4567", "+44*******4567"),
        ("+1 (415) 555-0100", "+14*****0100"),
        ("(415) 555-0100", "415***0100"),
        ("415.555.0100", "415***0100"),
        ("0044 7700 900 123", "004*******0123"),
        ("to:+447700900123,from:07700900123", "to:+44******0123,from:077****0123"),
        ("tel:+447700900123", "tel:+44******0123"),
    ],
)
def test_numbers_as_people_write_them_are_masked(text: str, masked: str) -> None:
    assert logs.scrub(text) == masked


# Words around a token: no digits, so nothing around it can be read as part of a number.
_WORDS = st.text(st.characters(blacklist_categories=("Nd", "Cs")), max_size=20)
_TIMESTAMPS = st.one_of(
    st.builds(
        lambda dt, sep, spec: dt.isoformat(sep=sep, timespec=spec),
        st.datetimes(timezones=st.one_of(st.none(), st.timezones())),
        st.sampled_from(["T", " "]),
        st.sampled_from(["auto", "seconds", "milliseconds", "microseconds"]),
    ),
    st.datetimes().map(str),
    st.datetimes().map(lambda dt: dt.strftime("%Y-%m-%dT%H:%M:%SZ")),
    st.datetimes().map(lambda dt: dt.strftime("%Y%m%dT%H%M%SZ")),
    st.dates().map(date.isoformat),
    st.floats(0, 253402300799).map(logs._timestamp),
)
_HEX = "0123456789abcdef"
_SIDS = st.builds(
    lambda prefix, body: prefix + body,
    st.sampled_from(["CA", "RE", "SM", "MM", "AC", "PN", "MG", "CF"]),
    st.text(_HEX, min_size=32, max_size=32),
)
_UUIDS = st.uuids().flatmap(lambda u: st.sampled_from([str(u), u.hex, str(u).upper()]))
_JOB_IDS = st.one_of(
    _UUIDS,
    st.integers(1, 10**9).map(lambda n: f"reminder-{n}"),
    st.integers(1, 10**9).map(lambda n: f"outbox-{n}"),
    st.dates().map(lambda d: f"summary-riverside-physio-{d:%Y%m%d}"),
    st.dates().map(lambda d: f"retention-sweep-{d:%Y%m%d}"),
    st.builds(
        lambda n, dt, k: f"checkin-{n}-{dt:%Y%m%dT%H%M%SZ}-{k}",
        st.integers(1, 10**6),
        st.datetimes(),
        st.integers(1, 9),
    ),
)
_REFS = st.text("0123456789", min_size=8, max_size=8).map(lambda r: f"ref {r}")


@settings(max_examples=500, deadline=None)
@given(_WORDS, st.one_of(_TIMESTAMPS, _SIDS, _UUIDS, _JOB_IDS, _REFS), _WORDS)
def test_timestamps_ids_and_references_survive_the_scrub(
    before: str, token: str, after: str
) -> None:
    text = f"{before} {token} {after}"
    assert logs.scrub(text) == text


def test_the_lines_the_issue_quoted_are_left_alone() -> None:
    for text in ("retry at 2026-12-02 12:59:33.512451+00:00", "ref 12345678"):
        assert logs.scrub(text) == text
