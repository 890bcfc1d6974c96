"""The config is validated at start-up; every error names the offending key."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from callgateway.config import ConfigError, parse_config
from tests.support.config_edits import fixture_raw  # noqa: F401  (the raw fixture)


def test_example_config_has_one_clinic_per_region(raw: dict[str, Any]) -> None:
    config = parse_config(raw)
    assert sorted(c.region for c in config.clinics) == sorted(config.regions)


def error_for(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("mutate", "key", "words"),
    [
        (lambda r: r["clinics"][0].update(region="mars"), "clinics[0].region", "unknown region"),
        (
            lambda r: r["clinics"][1]["numbers"].append(r["clinics"][0]["numbers"][0]),
            "clinics[1].numbers[1]",
            "already claimed",
        ),
        (lambda r: r["clinics"][0].update(numbers=["+4412"]), "clinics[0].numbers[0]", "number"),
        (
            lambda r: r["clinics"][0].update(numbers=["02071234567"]),
            "clinics[0].numbers[0]",
            "E.164",
        ),
        (
            lambda r: r["clinics"][0]["hours"].update(mon="18:00-08:00"),
            "clinics[0].hours",
            "closes before it opens",
        ),
        (lambda r: r["clinics"][0]["hours"].update(mon="8am-6pm"), "clinics[0].hours", "HH:MM"),
        (
            lambda r: r["clinics"][0]["hours"].update(funday="08:00-09:00"),
            "clinics[0].hours",
            "day",
        ),
        (
            lambda r: r["clinics"][0].update(timezone="Europe/Atlantis"),
            "clinics[0].timezone",
            "timezone",
        ),
        (lambda r: r["clinics"][0].update(colour="blue"), "clinics[0].colour", "unknown key"),
        (lambda r: r.update(extras=1), "extras", "unknown key"),
        (
            lambda r: r["clinics"][0].update(default_appointment_type="massage"),
            "clinics[0]",
            "unknown appointment type",
        ),
        (
            lambda r: r["clinics"][0]["escalation"].update(numbers=["+44 nope"]),
            "clinics[0].escalation.numbers[0]",
            "number",
        ),
        (lambda r: r["regions"]["uk"].pop("bucket"), "regions.uk.bucket", "required"),
    ],
)
def test_invalid_config_names_the_key(
    raw: dict[str, Any], mutate: Any, key: str, words: str
) -> None:
    broken = copy.deepcopy(raw)
    mutate(broken)
    message = error_for(broken)
    assert message.startswith(key + ":") or message.startswith(key + "."), message
    assert words.lower() in message.lower()


def test_cell_refuses_clinics_of_other_regions(raw: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"clinics\[1\]\.region"):
        parse_config(raw, cell="uk")
    only_uk = {**raw, "clinics": [c for c in raw["clinics"] if c["region"] == "uk"]}
    assert [c.id for c in parse_config(only_uk, cell="uk").clinics] == ["riverside-physio"]
