"""`callgateway config check` (the CLI, as a subprocess): one line per clinic, or one line
naming the offending key. The config's own validation is tests/unit/test_config.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.support.cli import cli_env, run_cli
from tests.support.config_edits import fixture_raw  # noqa: F401  (the raw fixture)


def test_config_check_prints_one_line_per_clinic() -> None:
    result = run_cli(["config", "check"], cli_env())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 5
    assert lines[0].startswith("riverside-physio: Riverside Physiotherapy | region uk")


def test_config_check_fails_with_one_line_naming_the_key(
    tmp_path: Path, raw: dict[str, Any]
) -> None:
    raw["clinics"][2]["timezone"] = "Mars/Olympus"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    result = run_cli(["config", "check"], cli_env(CALLGATEWAY_CONFIG=str(bad)))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: clinics[2].timezone: unknown timezone 'Mars/Olympus'"
    ]


def test_unreadable_and_non_yaml_configs_are_named(tmp_path: Path) -> None:
    missing = run_cli(["config", "check"], cli_env(CALLGATEWAY_CONFIG=str(tmp_path / "no.yaml")))
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: CALLGATEWAY_CONFIG: cannot read")
    junk = tmp_path / "junk.yaml"
    junk.write_text("regions: [unclosed\n")
    result = run_cli(["config", "check"], cli_env(CALLGATEWAY_CONFIG=str(junk)))
    assert result.returncode == 1
    assert "not valid YAML" in result.stderr
