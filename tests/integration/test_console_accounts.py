"""Running accounts: `callgateway users list | disable | enable | reset-password |
set-role`, the admins' Users page doing the same, and every sign-in in the audit log.

A leaver's account is disabled and their open session ends on its next request; a reset
password ends the old sessions; bad input is one line and exit 1, changing nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select

from callgateway.app import create_app
from callgateway.cli import main
from callgateway.db.models import StaffUser
from callgateway.wiring import Services
from tests.support.cli import cli_env, run_cli
from tests.support.console import PASSWORD, Browser, add_user, audit_entries

A, B = "riverside-physio", "spree-hausarzt"
LEAVER = "leaver@riverside.example"
ADMIN = "boss@group.example"
NEW_PASSWORD = "a brand new secret"


@pytest.fixture
def svc(make_services: Callable[..., Services], sqlite_url: str) -> Services:
    return make_services(sqlite_url)


@pytest.fixture
def env(sqlite_url: str, redis_url: str) -> dict[str, str]:
    return cli_env(DATABASE_URL=sqlite_url, REDIS_URL=redis_url)


@pytest.fixture
def app(svc: Services) -> Flask:
    return create_app({"TESTING": True}, services=svc)


def signed_in(app: Flask, email: str, password: str = PASSWORD) -> Browser:
    browser = Browser(app.test_client())
    assert browser.login(email, password).status_code == 303
    assert browser.get("/console/queue").status_code == 200
    return browser


def is_signed_out(browser: Browser) -> bool:
    response = browser.get("/console/queue")
    return response.status_code == 302 and "/console/login" in response.headers["Location"]


def account(svc: Services, email: str) -> tuple[str, list[str], bool]:
    with svc.db.session() as s:
        user = s.scalars(select(StaffUser).where(StaffUser.email == email)).one()
        return user.role, list(user.clinics), user.active


# --- the command line --------------------------------------------------------------------


def test_users_list_prints_one_line_per_account_and_json_on_request(
    svc: Services, env: dict[str, str]
) -> None:
    add_user(svc, "front@riverside.example", [A])
    add_user(svc, ADMIN, [], role="admin")
    add_user(svc, LEAVER, [A, B])
    run_cli(["users", "disable", "--email", LEAVER], env)
    result = run_cli(["users", "list"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "boss@group.example\tadmin\tall clinics\tactive",
        "front@riverside.example\tstaff\triverside-physio\tactive",
        "leaver@riverside.example\tstaff\triverside-physio, spree-hausarzt\tdisabled",
    ]
    as_json = CliRunner().invoke(main, ["users", "list", "--json"], env=env)
    assert as_json.exit_code == 0
    assert '"email": "leaver@riverside.example"' in as_json.stdout
    assert '"active": false' in as_json.stdout


def test_a_disabled_user_is_signed_out_at_once_and_cannot_sign_in_until_enabled(
    svc: Services, app: Flask, env: dict[str, str]
) -> None:
    add_user(svc, LEAVER, [A])
    desk = signed_in(app, LEAVER)
    other_browser = signed_in(app, LEAVER)
    result = run_cli(["users", "disable", "--email", "Leaver@Riverside.example"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "disabled leaver@riverside.example (2 sessions ended)\n"
    assert is_signed_out(desk) and is_signed_out(other_browser)
    assert Browser(app.test_client()).login(LEAVER).status_code == 401
    (entry,) = audit_entries(svc, "user.disable")
    assert entry.actor.startswith("cli:") and entry.actor.endswith(":users disable")
    assert entry.detail["email"] == LEAVER

    again = run_cli(["users", "disable", "--email", LEAVER], env)
    assert again.stdout == "already disabled: leaver@riverside.example\n"
    assert len(audit_entries(svc, "user.disable")) == 1

    assert run_cli(["users", "enable", "--email", LEAVER], env).stdout == (
        "enabled leaver@riverside.example\n"
    )
    # The sessions that were open when the account was disabled do not come back.
    assert is_signed_out(desk)
    signed_in(app, LEAVER)
    assert len(audit_entries(svc, "user.enable")) == 1


def test_reset_password_reads_stdin_and_ends_the_old_sessions(
    svc: Services, app: Flask, env: dict[str, str]
) -> None:
    add_user(svc, LEAVER, [A])
    old = signed_in(app, LEAVER)
    result = run_cli(["users", "reset-password", "--email", LEAVER], env, stdin=NEW_PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "password reset for leaver@riverside.example (1 session ended)\n"
    assert NEW_PASSWORD not in result.stdout + result.stderr
    assert is_signed_out(old)
    assert Browser(app.test_client()).login(LEAVER).status_code == 401
    signed_in(app, LEAVER, NEW_PASSWORD)
    (entry,) = audit_entries(svc, "user.reset-password")
    assert NEW_PASSWORD not in str(entry.detail)


def test_set_role_changes_role_and_scope_and_keeps_the_scope_when_none_is_given(
    svc: Services, app: Flask, env: dict[str, str]
) -> None:
    add_user(svc, LEAVER, [A])
    result = run_cli(
        ["users", "set-role", "--email", LEAVER, "--role", "staff", "--clinic", B], env
    )
    assert result.stdout == "set leaver@riverside.example to staff (spree-hausarzt)\n"
    browser = signed_in(app, LEAVER)
    assert browser.get(f"/console/calls?clinic={A}").status_code == 403
    assert browser.get(f"/console/calls?clinic={B}").status_code == 200
    promoted = run_cli(["users", "set-role", "--email", LEAVER, "--role", "admin"], env)
    assert promoted.stdout == (
        "set leaver@riverside.example to admin (all clinics) (1 session ended)\n"
    )
    assert account(svc, LEAVER) == ("admin", ["*"], True)
    demoted = run_cli(["users", "set-role", "--email", LEAVER, "--role", "staff"], env)
    assert demoted.stdout == "set leaver@riverside.example to staff (all clinics)\n"
    (first, *_rest) = audit_entries(svc, "user.set-role")
    assert first.detail["from"] == {"role": "staff", "clinics": [A]}


NOBODY = "nobody@clinic.example"
NO_SUCH = f"error: --email: no user with that email: {NOBODY}"


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["disable", "--email", NOBODY], "", NO_SUCH),
        (["enable", "--email", NOBODY], "", NO_SUCH),
        (["reset-password", "--email", NOBODY], "long enough pw\n", NO_SUCH),
        (
            ["reset-password", "--email", LEAVER],
            "short\n",
            "error: password: must be 8 to 1024 characters",
        ),
        (
            ["set-role", "--email", LEAVER, "--role", "staff", "--clinic", "nowhere"],
            "",
            "error: --clinic: unknown clinic 'nowhere'",
        ),
        (
            ["set-role", "--email", LEAVER, "--role", "staff", "--all", "--clinic", A],
            "",
            "error: give either --clinic or --all, not both",
        ),
        (
            ["set-role", "--email", LEAVER, "--role", "owner"],
            "",
            "error: Invalid value for '--role': 'owner' is not one of 'staff', 'admin'.",
        ),
        (["disable"], "", "error: Missing option '--email'."),
    ],
)
def test_bad_input_is_one_line_exit_1_and_changes_nothing(
    svc: Services, env: dict[str, str], args: list[str], stdin: str, message: str
) -> None:
    add_user(svc, LEAVER, [A])
    with svc.db.session() as s:
        before = s.scalars(select(StaffUser.password_hash)).one()
    result = CliRunner().invoke(main, ["users", *args], input=stdin, env=env)
    assert result.exit_code != 0
    assert result.stderr.strip().splitlines() == [message]
    assert account(svc, LEAVER) == ("staff", [A], True)
    with svc.db.session() as s:
        assert s.scalars(select(StaffUser.password_hash)).one() == before


# --- the admins' Users page --------------------------------------------------------------


def test_an_admin_disables_a_leaver_from_the_console_and_their_session_ends(
    svc: Services, app: Flask
) -> None:
    add_user(svc, ADMIN, [], role="admin")
    leaver_id = add_user(svc, LEAVER, [A])
    leaver = signed_in(app, LEAVER)
    admin = signed_in(app, ADMIN)
    page = admin.text("/console/users")
    assert LEAVER in page and "Disable" in page
    response = admin.post(f"/console/users/{leaver_id}/active", {"active": "0"})
    assert response.status_code == 303
    assert "is disabled and signed out everywhere" in admin.text("/console/users")
    assert is_signed_out(leaver)
    assert account(svc, LEAVER)[2] is False
    (entry,) = audit_entries(svc, "user.disable")
    assert entry.actor == f"user:{account_id(svc, ADMIN)}"
    admin.post(f"/console/users/{leaver_id}/active", {"active": "1"})
    assert account(svc, LEAVER)[2] is True


def account_id(svc: Services, email: str) -> int:
    with svc.db.session() as s:
        return s.scalars(select(StaffUser.id).where(StaffUser.email == email)).one()


def test_an_admin_resets_a_password_and_changes_a_role_from_the_console(
    svc: Services, app: Flask
) -> None:
    add_user(svc, ADMIN, [], role="admin")
    user_id = add_user(svc, LEAVER, [A])
    admin = signed_in(app, ADMIN)
    short = admin.post(f"/console/users/{user_id}/password", {"password": "short"})
    assert short.status_code == 303
    assert "a password must be 8 to 1024 characters" in admin.text("/console/users")
    admin.post(f"/console/users/{user_id}/password", {"password": NEW_PASSWORD})
    signed_in(app, LEAVER, NEW_PASSWORD)
    admin.post(f"/console/users/{user_id}/role", {"role": "staff", "clinics": B})
    assert account(svc, LEAVER) == ("staff", [B], True)
    admin.post(f"/console/users/{user_id}/role", {"role": "staff"})
    assert "give a clinic id or all clinics" in admin.text("/console/users")
    assert account(svc, LEAVER) == ("staff", [B], True)


def test_an_admin_cannot_disable_or_demote_themselves_from_the_console(
    svc: Services, app: Flask
) -> None:
    admin_id = add_user(svc, ADMIN, [], role="admin")
    admin = signed_in(app, ADMIN)
    admin.post(f"/console/users/{admin_id}/active", {"active": "0"})
    assert "cannot disable your own account" in admin.text("/console/users")
    admin.post(f"/console/users/{admin_id}/role", {"role": "staff", "clinics": A})
    assert account(svc, ADMIN) == ("admin", ["*"], True)
    # Their own password may change; this session stays, the others end.
    elsewhere = signed_in(app, ADMIN)
    admin.post(f"/console/users/{admin_id}/password", {"password": NEW_PASSWORD})
    assert admin.get("/console/users").status_code == 200
    assert is_signed_out(elsewhere)


def test_staff_cannot_open_the_users_page_or_change_an_account(svc: Services, app: Flask) -> None:
    add_user(svc, ADMIN, [], role="admin")
    staff_id = add_user(svc, "front@riverside.example", [A])
    staff = signed_in(app, "front@riverside.example")
    assert staff.get("/console/users").status_code == 403
    assert "Users</a>" not in staff.text("/console/queue")
    assert staff.post(f"/console/users/{staff_id}/role", {"role": "admin"}).status_code == 403
    assert account(svc, "front@riverside.example") == ("staff", [A], True)


# --- sign-in audit -----------------------------------------------------------------------


def test_every_sign_in_and_every_failure_is_audited_without_the_password(
    svc: Services, app: Flask
) -> None:
    user_id = add_user(svc, LEAVER, [A])
    signed_in(app, LEAVER)
    Browser(app.test_client()).login(LEAVER, "wrong password here")
    Browser(app.test_client()).login(PASSWORD)  # the password typed into the email box
    with svc.db.session() as s:
        s.get(StaffUser, user_id).active = False  # type: ignore[union-attr]
    Browser(app.test_client()).login(LEAVER)
    (ok,) = audit_entries(svc, "console.login")
    assert ok.actor == f"user:{user_id}" and ok.detail["email"] == LEAVER
    failed = audit_entries(svc, "console.login.failed")
    assert [(e.detail["email"], e.detail["reason"]) for e in failed] == [
        (LEAVER, "bad-credentials"),
        ("(not an email address)", "bad-credentials"),
        (LEAVER, "disabled"),
    ]
    for entry in [ok, *failed]:
        assert PASSWORD not in str(entry.detail) and "wrong password" not in str(entry.detail)
