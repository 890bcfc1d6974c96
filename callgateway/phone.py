"""E.164 numbers: parsing, withheld caller IDs, masking for logs."""

from __future__ import annotations

import hashlib
import hmac
import re
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


# E.164 as written: "+", then at most 15 ASCII digits, the first not 0. Not `\d`, which
# also matches other scripts' digits.
_E164_FORM = re.compile(r"\+[1-9][0-9]{0,14}")


@lru_cache(maxsize=8192)
def parse_e164(raw: str, strict: bool = True) -> str:
    """Return `raw` (trimmed) if it is an E.164 number, else raise InvalidNumber.

    Only the exact form is accepted, not what phonenumbers would tolerate: spaces,
    punctuation, "(0)", a doubled "+" or an extension (which it silently drops) mean the
    text was not written as E.164, and a config or command line must not be guessed at.
    `strict` checks the number is assigned in its country's plan (right for the clinic's
    own numbers); callers' numbers only need to be possible, since drama and newly opened
    ranges (e.g. +44 7700 900xxx) are real CLIs.
    Cached: every webhook parses its To, and the same numbers come back all day.
    """
    text = (raw or "").strip()
    if not text.startswith("+"):
        raise InvalidNumber(f"not in E.164 form (must start with +): {mask(text)}")
    if not _E164_FORM.fullmatch(text):
        raise InvalidNumber(
            f"not in E.164 form (+ and up to 15 digits, no spaces or punctuation): {mask(text)}"
        )
    canonical = _checked(text, strict)
    if canonical != text:
        # Digits phonenumbers drops on the way, e.g. a national trunk 0 after the code.
        raise InvalidNumber(f"not in E.164 form (leave out the national prefix): {mask(text)}")
    return canonical


@lru_cache(maxsize=8192)
def _lenient(text: str) -> str:
    """International form with punctuation tolerated: for caller IDs only (see caller_id)."""
    if not text.startswith("+"):
        raise InvalidNumber(f"not in E.164 form (must start with +): {mask(text)}")
    return _checked(text, strict=False)


def _checked(text: str, strict: bool) -> str:
    """The number's canonical E.164 form, if phonenumbers accepts it as valid (or possible)."""
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
        # Lenient on punctuation, unlike parse_e164: Twilio sends E.164, and what a carrier
        # formats otherwise is still the caller, not a typo in our config.
        return _lenient((raw or "").strip())
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


def country_of(number: str) -> str | None:
    """The ISO country (phonenumbers' region code, e.g. "GB") of an E.164 number."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        return None


def parse_typed(raw: str, country: str | None) -> str:
    """What a person typed (`07700 900123`, `+44 (0)7700-900123`, `0044 7700 900123`) as
    E.164, read in `country`'s national format when it has no country code. For people at
    a keyboard only: config and webhooks stay strict (parse_e164, caller_id)."""
    text = (raw or "").strip()[:64]
    if not text:
        raise InvalidNumber("no number given")
    try:
        parsed = phonenumbers.parse(text, country)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(f"not a telephone number: {mask(text)}") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidNumber(f"not a valid number: {mask(text)}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
