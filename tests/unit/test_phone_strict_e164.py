"""E.164 means the exact form: what phonenumbers would tolerate is not accepted."""

from __future__ import annotations

import pytest

from callgateway.phone import InvalidNumber, caller_id, parse_e164
from webhooks.forms import our_number, their_number

MALFORMED = [
    "+44 20 7123 4567",  # spaces
    "+44(0)2071234567",  # national trunk prefix in brackets
    "+4402071234567",  # ... or bare: phonenumbers drops it silently
    "++442071234567",
    "+442071234567x1",  # phonenumbers drops the extension silently
    "+442071234567 ext. 1",
    "+44-20-7123-4567",
    "+44.20.7123.4567",
    "+0442071234567",  # a country code never starts with 0
    "+1234567890123456",  # 16 digits: E.164 has at most 15
    "+\u0664\u06642071234567",  # Arabic-Indic digits match `\d`, not E.164
    "+ 442071234567",
    "442071234567",
]


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("raw", MALFORMED)
def test_anything_but_plus_and_digits_is_refused(raw: str, strict: bool) -> None:
    with pytest.raises(InvalidNumber, match=r"E\.164"):
        parse_e164(raw, strict=strict)


def test_the_exact_form_is_accepted_after_trimming_surrounding_whitespace() -> None:
    assert parse_e164("+442071234567") == "+442071234567"
    assert parse_e164(" +442071234567\n") == "+442071234567"
    assert parse_e164("+447700900123", strict=False) == "+447700900123"


def test_the_exact_form_must_still_be_a_number_phonenumbers_accepts() -> None:
    with pytest.raises(InvalidNumber):
        parse_e164("+4420")
    with pytest.raises(InvalidNumber):
        parse_e164("+447700900123")  # possible (drama range) but not assigned: not strict


def test_errors_mask_the_number() -> None:
    with pytest.raises(InvalidNumber) as info:
        parse_e164("+447700900123x9", strict=False)
    assert "7700900" not in str(info.value)


def test_parsing_stays_cached() -> None:
    parse_e164.cache_clear()
    parse_e164("+442071234567")
    parse_e164("+442071234567")
    assert parse_e164.cache_info().hits >= 1


def test_webhook_numbers_as_twilio_sends_them_are_unchanged() -> None:
    assert our_number("+442071234567") == "+442071234567"
    assert our_number("") == ""
    assert our_number("+44 20 7123 4567") == ""  # no clinic matches a To that is not E.164
    assert their_number("+447700900123") == "+447700900123"
    for withheld in ("Anonymous", "Restricted", "", None, "+266696687"):
        assert their_number(withheld) == "anonymous"
    assert caller_id("client:alice") == "anonymous"
