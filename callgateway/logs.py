"""Structured JSON logs. Nothing personal in clear: numbers are masked before they get here,
and a last-resort filter masks anything that still looks like a phone number."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, date, datetime, time, timedelta
from json.encoder import c_make_encoder, encode_basestring_ascii
from typing import Any
from uuid import UUID

from callgateway.phone import mask

_NUMBER = re.compile(r"(?<![\w+])\+?\d(?:[\s().-]?\d){7,14}(?!\w)")
# A cheap necessary condition for _NUMBER: eight digits somewhere in the string.
_EIGHT_DIGITS = re.compile(r"\d(?:\D*\d){7}")
_NOT_DIGIT = re.compile(r"[^\d+]")
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}
# Types JSON writes as they are and that carry no string to scrub.
_PLAIN = frozenset({int, float, bool, type(None)})
# Types JSON cannot hold whose str() is never personal (and which the scrub could garble:
# str(datetime) has a space before the hour). Anything else is scrubbed after str().
_NOT_PERSONAL = (date, time, timedelta, UUID)


def _mask_match(match: re.Match[str]) -> str:
    return mask(_NOT_DIGIT.sub("", match.group()))


def _scrub_str(text: str) -> str:
    """`text` with anything that looks like a phone number masked.

    The tests before the substitution only let through strings `_NUMBER` cannot match: a
    match needs 8 digits, and in a string of word characters only (a Twilio SID, an id) its
    lookarounds only allow a match spanning the whole string, which would be all digits.
    """
    if len(text) < 8 or (text.isalnum() and not text.isdecimal()):
        return text
    if _EIGHT_DIGITS.search(text) is None or _NUMBER.search(text) is None:
        return text
    return _NUMBER.sub(_mask_match, text)


def _scrub(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    if isinstance(value, str):
        return _scrub_str(value)
    if isinstance(value, dict):
        return {_scrub_str(k) if isinstance(k, str) else k: _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    # Anything else JSON cannot hold (a set, an exception, an object) is written as its str(),
    # which _default scrubs.
    return value


def _default(value: Any) -> str:
    text = str(value)
    return text if isinstance(value, _NOT_PERSONAL) else _scrub_str(text)


_ENCODER = json.JSONEncoder(default=_default)
# The C encoder _ENCODER.encode() would build for every record, built once. Without a circular
# reference check: _scrub has copied every dict and list, and _default only returns strings.
try:
    _C_ENCODER = c_make_encoder(
        None, _default, encode_basestring_ascii, None, ": ", ", ", False, False, True
    )
except TypeError:  # no C accelerator, or a signature this code does not know
    _C_ENCODER = None

_YEAR_10000 = 253402300800.0  # the first timestamp datetime cannot represent
_second: tuple[int, str] = (-1, "")  # the last whole second formatted, shared by all threads


def _timestamp(created: float) -> str:
    """`datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")` without a
    datetime per record: the same half-even rounding to whole microseconds, and the date and
    time of day formatted once per second."""
    global _second
    if not 0 <= created < _YEAR_10000:
        return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    whole = int(created)
    micros = round((created - whole) * 1e6)
    if micros >= 1_000_000:
        whole += 1
        micros -= 1_000_000
    second, text = _second
    if second != whole:
        text = datetime.fromtimestamp(whole, UTC).isoformat()[:19]
        _second = (whole, text)
    return f"{text}.{micros // 1000:03d}+00:00"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # Every value is scrubbed except the timestamp written here.
        payload: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": _scrub_str(record.levelname.lower()),
            "logger": _scrub(record.name),
            "msg": _scrub_str(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key in _STANDARD or key[:1] == "_":
                continue
            kind = type(value)  # _scrub, with its commonest cases inline
            if kind is str:
                payload[key] = _scrub_str(value)
            elif kind in _PLAIN:
                payload[key] = value
            else:
                payload[key] = _scrub(value)
        if record.exc_info and record.exc_info[0] is not None:
            payload["error"] = _scrub_str(record.exc_info[0].__name__)
        if _C_ENCODER is None:
            return _ENCODER.encode(payload)
        return "".join(_C_ENCODER(payload, 0))


def configure(level: str = "INFO") -> None:
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    # Library loggers that would print URLs with numbers in them at INFO/DEBUG.
    for name in ("twilio", "botocore", "urllib3", "httpx", "openai", "werkzeug"):
        logging.getLogger(name).setLevel(logging.WARNING)
