"""The rights and retention commands: bad input ends in one line on stderr and a non-zero
exit, and nothing is erased without a confirmation."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from callgateway.cli import main
from callgateway.privacy.rights import export_schema
from callgateway.wiring import Services
from tests.support.regions import stored_cli_env
from tests.support.twilio import PATIENT

pytest_plugins = ["tests.support.region_fixtures"]


@pytest.fixture
def env(stored_services: Services, aws_env: str, region_config_path: Path) -> dict[str, str]:
    return stored_cli_env(stored_services, region_config_path, aws_env)


@pytest.mark.parametrize(
    "args",
    [
        ["rights", "export", "--phone", "07700 900123"],
        ["rights", "export", "--phone", "+4477"],
        ["rights", "export", "--phone", PATIENT, "--clinic", "nowhere"],
        ["rights", "erase", "--phone", PATIENT, "--clinic", "nowhere", "--yes"],
        ["rights", "erase", "--phone", PATIENT],
        ["retention", "sweep", "--now", "yesterday"],
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(env: dict[str, str], args: list[str]) -> None:
    result = CliRunner().invoke(main, args, env=env, input="")
    assert result.exit_code != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error:")


def test_erase_without_yes_asks_and_does_nothing_on_no(env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        main, ["rights", "erase", "--phone", PATIENT, "--clinic", "riverside-physio"],
        env=env, input="n\n",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "Erase everything riverside-physio holds" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "error: aborted"
    assert result.stdout == ""


def test_erase_confirmed_at_the_prompt_prints_only_json_on_stdout(env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        main, ["rights", "erase", "--phone", PATIENT, "--clinic", "riverside-physio"],
        env=env, input="y\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["clinic"] == "riverside-physio"
    assert "Erase everything" in result.stderr


def test_export_of_an_unknown_number_is_valid_and_empty(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["rights", "export", "--phone", PATIENT], env=env)
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, export_schema())
    assert doc["phone"] == PATIENT and doc["calls"] == []
