"""`callgateway users add`: creates console accounts; bad input is one line and exit 1."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from callgateway.app import create_app
from callgateway.cli import main
from callgateway.db.models import StaffUser
from callgateway.wiring import Services
from tests.support.cli import cli_env, run_cli
from tests.support.console import Browser


@pytest.fixture
def env(sqlite_url: str) -> dict[str, str]:
    return cli_env(DATABASE_URL=sqlite_url)


def stored(svc: Services) -> list[tuple[str, str, list[str]]]:
    with svc.db.session() as session:
        return [(u.email, u.role, u.clinics) for u in session.scalars(select(StaffUser))]


def test_a_user_added_on_the_command_line_can_sign_in_to_their_clinic(
    env: dict[str, str], make_services: Callable[..., Services], sqlite_url: str
) -> None:
    result = run_cli(
        [
            "users",
            "add",
            "--email",
            "Front@Riverside.example",
            "--clinic",
            "riverside-physio",
            "--role",
            "staff",
        ],
        env,
        stdin="a long enough secret\n",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "added staff front@riverside.example (riverside-physio)\n"
    assert "a long enough secret" not in result.stdout + result.stderr
    svc = make_services(sqlite_url)
    ((email, role, clinics),) = stored(svc)
    assert (email, role, clinics) == ("front@riverside.example", "staff", ["riverside-physio"])
    with svc.db.session() as session:
        hashed = session.scalars(select(StaffUser.password_hash)).one()
    assert hashed.startswith("$argon2id$")
    browser = Browser(create_app({"TESTING": True}, services=svc).test_client())
    assert browser.login("front@riverside.example", "a long enough secret").status_code == 303
    assert browser.get("/console/calls?clinic=riverside-physio").status_code == 200
    assert browser.get("/console/calls?clinic=spree-hausarzt").status_code == 403


def test_all_and_admin_see_every_clinic(
    env: dict[str, str], make_services: Callable[..., Services], sqlite_url: str
) -> None:
    for args in (
        ["--email", "desk@group.example", "--all", "--role", "staff"],
        ["--email", "boss@group.example", "--all", "--role", "admin"],
    ):
        result = run_cli(["users", "add", *args], env, stdin="a long enough secret\n")
        assert result.returncode == 0, result.stderr
        assert "(all clinics)" in result.stdout
    assert [c for _, _, c in stored(make_services(sqlite_url))] == [["*"], ["*"]]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (
            ["--email", "x@clinic.example", "--clinic", "nowhere"],
            "long enough pw\n",
            "error: --clinic: unknown clinic 'nowhere'",
        ),
        (
            ["--email", "not-an-email", "--clinic", "riverside-physio"],
            "long enough pw\n",
            "error: --email: not an email address",
        ),
        (
            ["--email", "x@clinic.example", "--clinic", "riverside-physio"],
            "short\n",
            "error: password: must be 8 to 1024 characters",
        ),
        (
            ["--email", "x@clinic.example"],
            "long enough pw\n",
            "error: --clinic: give a clinic id or --all",
        ),
        (
            ["--email", "x@clinic.example", "--all", "--clinic", "riverside-physio"],
            "long enough pw\n",
            "error: give either --clinic or --all, not both",
        ),
        (
            ["--email", "x@clinic.example", "--all", "--role", "owner"],
            "long enough pw\n",
            "error: Invalid value for '--role': 'owner' is not one of 'staff', 'admin'.",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    env: dict[str, str],
    args: list[str],
    stdin: str,
    message: str,
    make_services: Callable[..., Services],
    sqlite_url: str,
) -> None:
    # In-process (the entry point itself is exercised above): same group, same exits.
    result = CliRunner().invoke(main, ["users", "add", *args], input=stdin, env=env)
    assert result.exit_code != 0
    assert result.stderr.strip().splitlines() == [message]
    assert stored(make_services(sqlite_url)) == []


def test_an_existing_email_is_refused_not_overwritten(env: dict[str, str]) -> None:
    args = ["users", "add", "--email", "x@clinic.example", "--clinic", "riverside-physio"]
    assert run_cli(args, env, stdin="first password\n").returncode == 0
    again = run_cli(args, env, stdin="second password\n")
    assert again.returncode == 1
    assert again.stderr == (
        "error: --email: a user with that email already exists: x@clinic.example\n"
    )
