"""Config that would send data or calls to the wrong place is refused, naming the key: a
key written twice in the YAML, two regions sharing a bucket, an escalation number that is
one of our own clinic numbers."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from callgateway.config import ConfigError, load_config, parse_config
from callgateway.config.yaml_keys import duplicate_key
from tests.support.config_edits import fixture_raw  # noqa: F401  (the raw fixture)
from tests.support.settings import EXAMPLE_CONFIG


def _refused(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    return str(err.value)


def test_two_regions_sharing_a_bucket_are_refused(raw: dict[str, Any]) -> None:
    broken = copy.deepcopy(raw)
    broken["regions"]["us"]["bucket"] = broken["regions"]["uk"]["bucket"]
    assert _refused(broken) == "regions.us.bucket: bucket 'callgw-uk' is already region 'uk''s"


def test_an_escalation_to_the_clinics_own_number_is_refused(raw: dict[str, Any]) -> None:
    broken = copy.deepcopy(raw)
    broken["clinics"][0]["escalation"]["numbers"] = list(broken["clinics"][0]["numbers"])
    assert _refused(broken) == (
        "clinics[0].escalation.numbers[0]: number is clinic 'riverside-physio''s own Twilio number"
    )


def test_an_escalation_to_another_clinics_number_is_refused(raw: dict[str, Any]) -> None:
    broken = copy.deepcopy(raw)
    broken["clinics"][1]["escalation"]["numbers"] = ["+442071234567"]
    assert _refused(broken).startswith("clinics[1].escalation.numbers[0]: number is clinic")


def test_the_example_config_has_no_conflict() -> None:
    load_config(EXAMPLE_CONFIG)


def test_a_region_written_twice_is_refused_naming_it(tmp_path: Path) -> None:
    text = EXAMPLE_CONFIG.read_text().replace(
        "  uk: {aws_region: eu-west-2, bucket: callgw-uk}\n",
        "  uk: {aws_region: eu-west-2, bucket: callgw-uk}\n"
        "  uk: {aws_region: us-east-1, bucket: callgw-us}\n",
    )
    assert text.count("  uk: ") == 2
    path = tmp_path / "twice.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == "regions.uk: key written twice (only one may be meant)"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("a: 1\na: 2\n", "a"),
        ("clinics:\n  - id: x\n    greeting: hi\n    greeting: ho\n", "clinics[0].greeting"),
        ("r: {uk: {bucket: a, bucket: b}}\n", "r.uk.bucket"),
        ("base: &b {x: 1}\none: {<<: *b, y: 2}\ntwo: *b\n", None),
        ("a: 1\nb: 1\n", None),
        ("", None),
    ],
)
def test_duplicate_keys_are_found_by_path(text: str, where: str | None) -> None:
    assert duplicate_key(text) == where
