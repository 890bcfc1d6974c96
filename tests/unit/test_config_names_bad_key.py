"""Config errors name the key the operator got wrong, and numbers must be exact E.164."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from callgateway.config import ConfigError, OpenAIAgent, RulesAgent, parse_config
from tests.support.cli import cli_env, run_cli
from tests.support.settings import EXAMPLE_CONFIG

Mutation = Callable[[dict[str, Any]], None]


@pytest.fixture
def raw() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE_CONFIG.read_text())


def _clinic(**changes: Any) -> Mutation:
    return lambda r: r["clinics"][0].update(changes)


def _misspell_greeting(r: dict[str, Any]) -> None:
    r["clinics"][0]["gretting"] = r["clinics"][0].pop("greeting")


def _escalate_to(number: str) -> Mutation:
    return lambda r: r["clinics"][0]["escalation"].update(numbers=[number])


CASES: list[tuple[Mutation, str]] = [
    (_clinic(numbers=["+44 20 7123 4567"]), "clinics[0].numbers[0]: not in E.164 form"),
    (_clinic(numbers=["+44(0)2071234567"]), "clinics[0].numbers[0]: not in E.164 form"),
    (_clinic(numbers=["++442071234567"]), "clinics[0].numbers[0]: not in E.164 form"),
    (_clinic(numbers=["+442071234567x1"]), "clinics[0].numbers[0]: not in E.164 form"),
    (_clinic(numbers=["+4402071234567"]), "clinics[0].numbers[0]: not in E.164 form"),
    (_escalate_to("+44 20 7946 0000"), "clinics[0].escalation.numbers[0]: not in E.164 form"),
    (_escalate_to("+442079460000x12"), "clinics[0].escalation.numbers[0]: not in E.164 form"),
    (_clinic(agent={"kind": "openai", "modle": "x"}), "clinics[0].agent.modle: unknown key"),
    (_clinic(agent={"kind": "rules", "model": "x"}), "clinics[0].agent.model: unknown key"),
    (_clinic(agent={"kind": "gpt"}), "clinics[0].agent: unknown agent kind 'gpt'"),
    (_clinic(agent="gpt"), "clinics[0].agent: unknown agent kind 'gpt'"),
    (_clinic(agent={"model": "x"}), "clinics[0].agent: kind is required"),
    (_clinic(agent=5), "clinics[0].agent: expected one of rules, openai"),
    (
        _clinic(agent={"kind": "openai", "timeout_seconds": 99}),
        "clinics[0].agent.timeout_seconds:",
    ),
    (_misspell_greeting, "clinics[0].gretting: unknown key"),
    (
        lambda r: r["regions"]["uk"].update(buckte=r["regions"]["uk"].pop("bucket")),
        "regions.uk.buckte: unknown key",
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), CASES)
def test_the_error_names_the_offending_key(
    raw: dict[str, Any], mutate: Mutation, expected: str
) -> None:
    broken = copy.deepcopy(raw)
    mutate(broken)
    with pytest.raises(ConfigError) as info:
        parse_config(broken)
    message = str(info.value)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_agent_shorthand_and_mapping_are_both_accepted(raw: dict[str, Any]) -> None:
    raw["clinics"][0]["agent"] = "openai"
    raw["clinics"][1]["agent"] = {"kind": "openai", "model": "gpt-x", "timeout_seconds": 3}
    raw["clinics"][2]["agent"] = {"kind": "rules"}
    del raw["clinics"][3]["agent"]
    clinics = parse_config(raw).clinics
    assert [c.agent_kind for c in clinics] == ["openai", "openai", "rules", "rules", "rules"]
    assert clinics[0].agent == OpenAIAgent(kind="openai")
    assert clinics[1].agent == OpenAIAgent(kind="openai", model="gpt-x", timeout_seconds=3)
    assert clinics[3].agent == RulesAgent(kind="rules")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_clinic(numbers=["+44 20 7123 4567"]), "error: clinics[0].numbers[0]: not in E.164"),
        (_escalate_to("+442079460000x1"), "error: clinics[0].escalation.numbers[0]: not in E.164"),
        (
            _clinic(agent={"kind": "openai", "modle": "x"}),
            "error: clinics[0].agent.modle: unknown key",
        ),
        (_misspell_greeting, "error: clinics[0].gretting: unknown key"),
    ],
)
def test_config_check_fails_with_one_line_naming_the_key(
    tmp_path: Path, raw: dict[str, Any], mutate: Mutation, expected: str
) -> None:
    mutate(raw)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    result = run_cli(["config", "check"], cli_env(CALLGATEWAY_CONFIG=str(bad)))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), result.stderr
