"""Config errors name the key the operator got wrong, and numbers must be exact E.164."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from callgateway.config import ConfigError, OpenAIAgent, RulesAgent, parse_config
from tests.support.config_edits import (  # noqa: F401  (the raw fixture)
    Mutation,
    clinic,
    escalate_to,
    fixture_raw,
    misspell_greeting,
)

CASES: list[tuple[Mutation, str]] = [
    (clinic(numbers=["+44 20 7123 4567"]), "clinics[0].numbers[0]: not in E.164 form"),
    (clinic(numbers=["+44(0)2071234567"]), "clinics[0].numbers[0]: not in E.164 form"),
    (clinic(numbers=["++442071234567"]), "clinics[0].numbers[0]: not in E.164 form"),
    (clinic(numbers=["+442071234567x1"]), "clinics[0].numbers[0]: not in E.164 form"),
    (clinic(numbers=["+4402071234567"]), "clinics[0].numbers[0]: not in E.164 form"),
    (escalate_to("+44 20 7946 0000"), "clinics[0].escalation.numbers[0]: not in E.164 form"),
    (escalate_to("+442079460000x12"), "clinics[0].escalation.numbers[0]: not in E.164 form"),
    (clinic(agent={"kind": "openai", "modle": "x"}), "clinics[0].agent.modle: unknown key"),
    (clinic(agent={"kind": "rules", "model": "x"}), "clinics[0].agent.model: unknown key"),
    (clinic(agent={"kind": "gpt"}), "clinics[0].agent: unknown agent kind 'gpt'"),
    (clinic(agent="gpt"), "clinics[0].agent: unknown agent kind 'gpt'"),
    (clinic(agent={"model": "x"}), "clinics[0].agent: kind is required"),
    (clinic(agent=5), "clinics[0].agent: expected one of rules, openai"),
    (
        clinic(agent={"kind": "openai", "timeout_seconds": 99}),
        "clinics[0].agent.timeout_seconds:",
    ),
    (misspell_greeting, "clinics[0].gretting: unknown key"),
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
