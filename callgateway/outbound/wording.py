"""What outbound messages and calls say: dates in the clinic's words, numbers kept private."""

from __future__ import annotations

from datetime import datetime

import phonenumbers

from callgateway.config import Clinic
from callgateway.phone import mask


def _us_style(clinic: Clinic) -> bool:
    return clinic.language.lower() in ("en-us", "en-ca")


def when(at: datetime, clinic: Clinic) -> str:
    """`Tuesday 10 June at 09:00` (or `Tuesday, June 10 at 9:00 AM` for US English)."""
    local = at.astimezone(clinic.tz)
    if _us_style(clinic):
        clock = local.strftime("%I:%M %p").lstrip("0")
        return f"{local:%A}, {local:%B} {local.day} at {clock}"
    return f"{local:%A} {local.day} {local:%B} at {local:%H:%M}"


def national(number: str) -> str:
    """A clinic number the way people write it (`020 7123 4567`), for texts and speech."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


def spoken_digits(text: str) -> str:
    return " ".join(ch for ch in text if ch.isdigit())


def who_in_text(display_name: str | None, phone: str) -> str:
    """The patient for an alert SMS: their display name if staff gave one, else masked."""
    return display_name or f"the patient on {mask(phone)}"


def who_spoken(display_name: str | None, phone: str) -> str:
    """The same for a call: the name, or only the last four digits, never the whole number."""
    return display_name or f"the patient whose number ends {spoken_digits(phone[-4:])}"
