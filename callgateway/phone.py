"""E.164 numbers: parsing, withheld caller IDs, masking for logs."""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

import phonenumbers

ANONYMOUS = "anonymous"

# Values Twilio (and carriers behind it) put in `From` when the caller ID is withheld.
_WITHHELD = {
    "",
    "anonymous",
    "restricted",
    "unknown",
    "unavailable",
    "blocked",
    "+266696687",
    "+86282452253",
    "+8656696",
    "+2562533",
    "+7378742833",
}


class InvalidNumber(ValueError):
    """A string that is not a valid E.164 telephone number."""


@lru_cache(maxsize=8192)
def parse_e164(raw: str, strict: bool = True) -> str:
    """Return the canonical E.164 form of `raw` or raise InvalidNumber.

    Only international form is accepted: a clinic's config or an operator's command line
    must not depend on a default country guess. `strict` checks the number is assigned in
    its country's plan (right for the clinic's own numbers); callers' numbers only need to
    be possible, since drama and newly opened ranges (e.g. +44 7700 900xxx) are real CLIs.
    Cached: every webhook parses its From and To, and the same numbers come back all day.
    """
    text = (raw or "").strip()
    if not text.startswith("+"):
        raise InvalidNumber(f"not in E.164 form (must start with +): {mask(text)}")
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(f"not a telephone number: {mask(text)}") from exc
    ok = phonenumbers.is_valid_number if strict else phonenumbers.is_possible_number
    if not ok(parsed):
        raise InvalidNumber(f"not a valid number: {mask(text)}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def is_withheld(raw: str | None) -> bool:
    return (raw or "").strip().lower() in _WITHHELD


def caller_id(raw: str | None) -> str:
    """The caller's number as we record it: E.164, or `anonymous` when withheld or unusable."""
    if is_withheld(raw):
        return ANONYMOUS
    try:
        return parse_e164(raw or "", strict=False)
    except InvalidNumber:
        # A CLI we cannot parse is no better than a withheld one: never guess a patient.
        return ANONYMOUS


def mask(number: str | None) -> str:
    """`+442071234567` -> `+44******4567`: enough for staff to tell calls apart, not to dial."""
    if not number:
        return ""
    if number == ANONYMOUS:
        return ANONYMOUS
    digits = number.strip()
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def subject_hash(number: str, salt: str) -> str:
    """A keyed hash of a number, for suppression lists and audit subjects."""
    return hmac.new(salt.encode(), number.encode(), hashlib.sha256).hexdigest()
