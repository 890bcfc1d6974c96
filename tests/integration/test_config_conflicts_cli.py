"""`callgateway config check` (a subprocess) refuses a key written twice, two regions on
one bucket and an escalation to the clinic's own number, with one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import cli_env, run_cli
from tests.support.settings import EXAMPLE_CONFIG

UK = "  uk: {aws_region: eu-west-2, bucket: callgw-uk}\n"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (UK, UK + "  uk: {aws_region: us-east-1, bucket: callgw-us}\n", "error: regions.uk: key"),
        ("bucket: callgw-us}", "bucket: callgw-uk}", "error: regions.us.bucket: bucket"),
        (
            'numbers: ["+442079460000"]',
            'numbers: ["+442071234567"]',
            "error: clinics[0].escalation",
        ),
    ],
)
def test_config_check_refuses_a_conflict_in_one_line(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    text = EXAMPLE_CONFIG.read_text()
    assert old in text
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace(old, new, 1))
    result = run_cli(["config", "check"], cli_env(CALLGATEWAY_CONFIG=str(bad)))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), result.stderr
