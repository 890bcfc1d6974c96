"""Bad input to a command is one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.cli import cli_env, run_cli

PATIENT = "+447700900123"
CLINIC_NUMBER = "+442071234567"


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:"), lines[0]
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.mark.parametrize(
    "args",
    [
        ["db", "upgrade"],
        ["consent", "status", "--clinic", "riverside-physio", "--phone", PATIENT],
    ],
)
@pytest.mark.parametrize("url", ["nope://", "notaurl"])
def test_an_unusable_database_url_is_named(args: list[str], url: str) -> None:
    result = run_cli(args, cli_env(DATABASE_URL=url))
    assert_one_line_error(result, "DATABASE_URL")


def test_an_unusable_redis_url_is_named(sqlite_db: str) -> None:
    args = ["consent", "status", "--clinic", "riverside-physio", "--phone", PATIENT]
    result = run_cli(args, cli_env(DATABASE_URL=sqlite_db, REDIS_URL="notaurl"))
    assert_one_line_error(result, "REDIS_URL")


@pytest.mark.parametrize("revision", ["bogus", "head+5", ""])
def test_an_unknown_revision_is_named(sqlite_db: str, revision: str) -> None:
    result = run_cli(["db", "upgrade", "--revision", revision], cli_env(DATABASE_URL=sqlite_db))
    assert_one_line_error(result, "--revision")


# Each a number phonenumbers reads happily (dropping the extension of the last).
SPACED, TRUNK, DOUBLE_PLUS, EXTENSION = (
    "+44 20 7123 4567",
    "+44(0)2071234567",
    "++442071234567",
    "+442071234567x1",
)
CHECKIN = ("checkins", "add", "--clinic", "riverside-physio", "--days", "daily", "--time", "10:00")


# One bad number per command keeps this to a subprocess each; together they cover all four.
@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["consent", "status", "--clinic", "riverside-physio", "--phone", SPACED], "--phone"),
        (["rights", "export", "--phone", TRUNK], "--phone"),
        (["sms", "--to", DOUBLE_PLUS, "--from", PATIENT, "hello"], "--to"),
        (["sms", "--to", CLINIC_NUMBER, "--from", EXTENSION, "hello"], "--from"),
        (["call", "--to", EXTENSION], "--to"),
        (["call", "--to", CLINIC_NUMBER, "--from", TRUNK], "--from"),
        ([*CHECKIN, "--phone", DOUBLE_PLUS, "--alert", "+447700900456"], "--phone"),
        ([*CHECKIN, "--phone", PATIENT, "--alert", SPACED], "--alert"),
    ],
)
def test_a_number_not_in_exact_e164_form_is_refused(
    args: list[str], option: str, sqlite_db: str
) -> None:
    # An unreachable gateway: a number that got through would fail later, differently.
    env = cli_env(DATABASE_URL=sqlite_db, PUBLIC_BASE_URL="http://127.0.0.1:9")
    result = run_cli(args, env)
    assert_one_line_error(result, option, "E.164")
