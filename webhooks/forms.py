"""Twilio form fields -> the domain's typed events (E.164, 'anonymous', ints)."""

from __future__ import annotations

import re

from werkzeug.datastructures import MultiDict

from callgateway.phone import InvalidNumber, caller_id, parse_e164

_SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")


class BadEvent(ValueError):
    """A signed request whose fields cannot describe a Twilio event."""


def sid(form: MultiDict[str, str], name: str, prefix: str) -> str:
    value = (form.get(name) or "").strip()
    if not _SID.match(value) or not value.startswith(prefix):
        raise BadEvent(f"{name}: missing or malformed")
    return value


def our_number(raw: str | None) -> str:
    """The clinic-side number (To on inbound). Unparseable -> '' (no clinic will match)."""
    try:
        return parse_e164(raw or "")
    except InvalidNumber:
        return ""


def their_number(raw: str | None) -> str:
    return caller_id(raw)


# The largest id or count a signed field may carry: PostgreSQL's `integer` ends here, and a
# bigger value must be refused by us, not by the database mid-request.
MAX_INT = 2**31 - 1


def ascii_int(raw: str | None) -> int | None:
    """A non-negative ASCII integer up to MAX_INT, else None. Not str.isdigit() alone: it
    accepts '²' and '①', which int() then refuses, and other scripts' digits."""
    value = (raw or "").strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 10:
        return None
    number = int(value)
    return number if number <= MAX_INT else None


def int_field(form: MultiDict[str, str], name: str) -> int | None:
    return ascii_int(form.get(name))


def text_field(form: MultiDict[str, str], name: str, limit: int = 2000) -> str:
    return (form.get(name) or "")[:limit]
