"""One log stream: JSON lines, numbers masked, written the same way by every process.

Every process (the web app, the RQ worker with rq's own lines, the outbox, the relay) calls
`configure()` once; records of any logger then reach one handler on the root logger, whose
formatter writes one JSON object per line.

Nothing personal in clear: numbers are masked before they get here, and the formatter's
last-resort scrub masks what still looks like a phone number, and nothing else: timestamps,
dates, Twilio SIDs, UUIDs, job ids and 8-digit references pass untouched.
"""

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

# Between two digits of a number as people write it: nothing, one space, dot or hyphen, or a
# parenthesis with a space either side ("+44 (0)20 7123 4567", "(020) 7123 4567"). Never a
# colon or a slash: those join the parts of times, dates and paths.
_SEP = r"(?:[ \t.-]|[ \t]?[()][ \t]?)?"
_DIGIT = rf"{_SEP}\d"
# Where a number written without "+" may start: not inside a word, and not after the
# punctuation that joins a longer token ("2026-12-02 12:59", a UUID's "-0123-4567-", the
# fraction of "33.512451").
_START = r"(?<![\w+])(?<![0-9A-Fa-f][.:/-])"
# Where it may end: not inside a word or before the next part of such a token.
_END = r"(?!\w)(?![.:/-]\w)"
_NUMBER = re.compile(
    # International with "+": 7 to 15 digits (E.164, also as written with spaces).
    rf"(?<![\d+])\+[1-9](?:{_DIGIT}){{6,14}}(?!\d)"
    # International with the "00" prefix.
    rf"|{_START}00[1-9](?:{_DIGIT}){{7,13}}{_END}"
    # National after a trunk "0" (UK, most of Europe, Australia): 10 to 12 digits in all,
    # so an 8-digit reference or a date never qualifies.
    rf"|{_START}\(?0[1-9](?:{_DIGIT}){{8,10}}{_END}"
    # North American without "+1": 3-3-4, the last separator written (a bare 10-digit
    # run is more often a Unix time than a number).
    rf"|{_START}\(?[2-9]\d\d\)?[ .-]?[2-9]\d\d[ .-]\d{{4}}{_END}"
)
# A cheap necessary condition for _NUMBER: seven digits somewhere in the string.
_SEVEN_DIGITS = re.compile(r"\d(?:\D*\d){6}")
_NOT_DIGIT = re.compile(r"[^\d+]")
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}
# Types JSON writes as they are and that carry no string to scrub.
_PLAIN = frozenset({int, float, bool, type(None)})
# Types JSON cannot hold whose str() is never personal. Anything else is scrubbed after str().
_NOT_PERSONAL = (date, time, timedelta, UUID)
# Libraries that would print URLs with numbers in them at INFO/DEBUG.
_QUIET = ("twilio", "botocore", "urllib3", "httpx", "openai", "werkzeug")
# Libraries that attach plain-text handlers of their own: rq's worker prints its lines to
# stdout (`rq.logutils.setup_loghandlers`, called by `rq worker` before our worker exists),
# gunicorn its own to stderr (unless told otherwise, `callgateway.cli.serve_cmd.JsonLogger`).
_ADOPTED = frozenset({"rq", "gunicorn"})


def _mask_match(match: re.Match[str]) -> str:
    return mask(_NOT_DIGIT.sub("", match.group()))


def scrub(text: str) -> str:
    """`text` with every phone number in it masked, and nothing else changed.

    The tests before the substitution only let through strings `_NUMBER` cannot match: a
    match needs 7 digits, and in a string of word characters only (a Twilio SID, an id) a
    match could only span the whole string, which would then be all digits.
    """
    if len(text) < 7 or (text.isalnum() and not text.isdecimal()):
        return text
    if _SEVEN_DIGITS.search(text) is None:
        return text
    return _NUMBER.sub(_mask_match, text)


def _scrub(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(k) if isinstance(k, str) else k: _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    # Anything else JSON cannot hold (a set, an exception, an object) is written as its str(),
    # which _default scrubs.
    return value


def _default(value: Any) -> str:
    text = str(value)
    return text if isinstance(value, _NOT_PERSONAL) else scrub(text)


_ENCODER = json.JSONEncoder(default=_default)
# The C encoder _ENCODER.encode() would build for every record, built once. Without a circular
# reference check: _scrub has copied every dict and list, and _default only returns strings.
# Why this private constructor and not a logging library: python-json-logger 4.2 and
# structlog 26.1, writing the same lines with this scrub, cost 6.1 and 12.9 us a line against
# 4.6 here (timeit, same six records, best of 25 runs; issue 19). When the accelerator is
# missing or its signature changes, the public encoder writes the same JSON (tests cover both).
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
            "level": scrub(record.levelname.lower()),
            "logger": _scrub(record.name),
            "msg": scrub(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key in _STANDARD or key[:1] == "_":
                continue
            kind = type(value)  # _scrub, with its commonest cases inline
            if kind is str:
                payload[key] = scrub(value)
            elif kind in _PLAIN:
                payload[key] = value
            else:
                payload[key] = _scrub(value)
        if record.exc_info and record.exc_info[0] is not None:
            payload["error"] = scrub(record.exc_info[0].__name__)
        if _C_ENCODER is None:
            return _ENCODER.encode(payload)
        return "".join(_C_ENCODER(payload, 0))


def configure(level: str = "INFO") -> None:
    """Send every logger's records, the libraries' too, to one JSON handler on stderr.

    Idempotent. Loggers that a library gave handlers of their own (rq's worker prints plain
    text to stdout) are brought back to the root's handler, so a process writes one stream.
    """
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
        root.setLevel(level)
        for name in _QUIET:
            logging.getLogger(name).setLevel(logging.WARNING)
    adopt_library_loggers()


def adopt_library_loggers() -> None:
    """Remove the handlers the libraries in `_ADOPTED` attached to their own loggers and let
    their records propagate to the root's JSON handler instead. Called again by a process
    (the RQ worker) whose library sets up its logging after `configure()`."""
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger) or not logger.handlers:
            continue
        if name.split(".", 1)[0] not in _ADOPTED:
            continue
        for handler in list(logger.handlers):
            if not isinstance(handler.formatter, JsonFormatter):
                logger.removeHandler(handler)
        logger.propagate = True
