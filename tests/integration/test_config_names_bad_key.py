"""`callgateway config check` (the CLI, as a subprocess) names the key the operator got
wrong, numbers included. The validation itself is tests/unit/test_config_names_bad_key.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cli import cli_env, run_cli
from tests.support.config_edits import (  # noqa: F401  (the raw fixture)
    Mutation,
    clinic,
    escalate_to,
    fixture_raw,
    misspell_greeting,
)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (clinic(numbers=["+44 20 7123 4567"]), "error: clinics[0].numbers[0]: not in E.164"),
        (escalate_to("+442079460000x1"), "error: clinics[0].escalation.numbers[0]: not in E.164"),
        (
            clinic(agent={"kind": "openai", "modle": "x"}),
            "error: clinics[0].agent.modle: unknown key",
        ),
        (misspell_greeting, "error: clinics[0].gretting: unknown key"),
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
