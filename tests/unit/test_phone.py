from __future__ import annotations

import pytest

from callgateway.phone import InvalidNumber, caller_id, mask, parse_e164

WITHHELD = [
    "Anonymous",
    "Restricted",
    "Unknown",
    "Unavailable",
    "Blocked",
    "+266696687",
    "+86282452253",
    "+8656696",
    "+2562533",
    "+7378742833",
    "",
    None,
    "anonymous",
    " RESTRICTED ",
]


@pytest.mark.parametrize("raw", WITHHELD)
def test_withheld_caller_ids_are_logged_as_anonymous(raw: str | None) -> None:
    assert caller_id(raw) == "anonymous"


def test_real_caller_ids_are_kept_in_e164() -> None:
    assert caller_id("+447700900123") == "+447700900123"
    assert caller_id("+1 (212) 555-0123") == "+12125550123"


def test_garbage_caller_id_is_treated_as_anonymous_not_guessed() -> None:
    assert caller_id("client:alice") == "anonymous"
    assert caller_id("12") == "anonymous"


def test_clinic_numbers_must_be_valid_e164() -> None:
    assert parse_e164("+442071234567") == "+442071234567"
    for bad in ("02071234567", "+4420", "+44 abc", "++44207"):
        with pytest.raises(InvalidNumber):
            parse_e164(bad)


def test_mask_keeps_country_code_and_last_four() -> None:
    assert mask("+442071234567") == "+44******4567"
    assert mask("anonymous") == "anonymous"
