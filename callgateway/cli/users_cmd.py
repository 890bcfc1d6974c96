"""`callgateway users`: console accounts (add, list, disable, enable, reset-password,
set-role). Every change is audited and ends the account's sessions where it should
(`console/accounts.py`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TypeVar

import click
from sqlalchemy.exc import SQLAlchemyError

from callgateway.cli.common import actor, e164, fail, main, services
from callgateway.console import accounts, users
from callgateway.phone import mask

T = TypeVar("T")


@main.group("users")
def users_group() -> None:
    """Console users."""


def _password() -> str:
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    # Non-interactive: the first line of stdin, so `printf '%s\n' "$PW" | callgateway ...`
    # works and the password never appears in argv or the shell history.
    return sys.stdin.readline().rstrip("\r\n")


@users_group.command("add")
@click.option("--email", required=True, help="login email")
@click.option("--clinic", "clinics", multiple=True, help="clinic id (repeatable)")
@click.option("--all", "all_clinics", is_flag=True, help="every clinic")
@click.option("--role", type=click.Choice(users.ROLES), default="staff", show_default=True)
def add(email: str, clinics: tuple[str, ...], all_clinics: bool, role: str) -> None:
    """Create a console user; the password is asked for, or read from stdin."""
    if all_clinics and clinics:
        fail("give either --clinic or --all, not both")
    svc = services()
    known = {c.id for c in svc.config.clinics}
    try:
        # Bad flags are reported before anyone is asked to type a password.
        account = users.check_account(
            email, role, [users.ALL] if all_clinics else list(clinics), known
        )
        new = users.with_password(account, _password())
        with svc.db.session() as session:
            created = users.add(session, new, svc.clock())
    except users.UserError as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        fail(f"database: {type(exc).__name__} (has `callgateway db upgrade` been run?)")
    scope = "all clinics" if created.clinics == [users.ALL] else ", ".join(created.clinics)
    click.echo(f"added {created.role} {created.email} ({scope})")


def _run(action: Callable[[], T]) -> T:
    try:
        return action()
    except users.UserError as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        fail(f"database: {type(exc).__name__} (has `callgateway db upgrade` been run?)")
    raise AssertionError("unreachable")  # fail() exits


def _sessions(change: accounts.Change) -> str:
    if change.sessions_ended is None:
        return " (open sessions not ended: the session store did not answer)"
    if change.sessions_ended:
        return (
            f" ({change.sessions_ended} session{'s' if change.sessions_ended != 1 else ''} ended)"
        )
    return ""


def _line(account: accounts.Account) -> str:
    return "\t".join(
        [account.email, account.role, account.scope, "active" if account.active else "disabled"]
        + (["totp"] if account.totp else [])
    )


email_option = click.option("--email", required=True, help="the account's login email")


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of one line per user")
def list_(as_json: bool) -> None:
    """Every console user: email, role, clinics, active or disabled (tab-separated)."""
    found = _run(lambda: accounts.listing(services()))
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "email": a.email,
                        "role": a.role,
                        "clinics": a.clinics,
                        "active": a.active,
                        "totp": a.totp,
                    }
                    for a in found
                ],
                indent=2,
            )
        )
        return
    for account in found:
        click.echo(_line(account))


@users_group.command("disable")
@email_option
def disable(email: str) -> None:
    """Stop a user signing in; their open sessions end now."""
    change = _run(lambda: accounts.set_active(services(), email, False, actor("users disable")))
    verb = "disabled" if change.changed else "already disabled:"
    click.echo(f"{verb} {change.account.email}{_sessions(change)}")


@users_group.command("enable")
@email_option
def enable(email: str) -> None:
    """Let a disabled user sign in again."""
    change = _run(lambda: accounts.set_active(services(), email, True, actor("users enable")))
    verb = "enabled" if change.changed else "already enabled:"
    click.echo(f"{verb} {change.account.email}")


@users_group.command("reset-password")
@email_option
def reset_password(email: str) -> None:
    """Set a new password (asked for, or read from stdin); the user's sessions end."""
    svc = services()
    # An unknown email is reported before anyone is asked to type a password.
    _run(lambda: accounts.by_email(svc, email))
    password = _run(lambda: users.check_password(_password()))
    change = _run(
        lambda: accounts.reset_password(svc, email, password, actor("users reset-password"))
    )
    click.echo(f"password reset for {change.account.email}{_sessions(change)}")


@users_group.command("set-role")
@email_option
@click.option("--role", type=click.Choice(users.ROLES), required=True)
@click.option("--clinic", "clinics", multiple=True, help="clinic id (repeatable)")
@click.option("--all", "all_clinics", is_flag=True, help="every clinic")
def set_role(email: str, role: str, clinics: tuple[str, ...], all_clinics: bool) -> None:
    """Change a user's role and, with --clinic/--all, which clinics they see."""
    if all_clinics and clinics:
        fail("give either --clinic or --all, not both")
    scope = [users.ALL] if all_clinics else (list(clinics) or None)
    change = _run(
        lambda: accounts.set_role(services(), email, role, scope, actor("users set-role"))
    )
    a = change.account
    verb = "set" if change.changed else "unchanged:"
    click.echo(f"{verb} {a.email} to {a.role} ({a.scope}){_sessions(change)}")


@users_group.command("set-phone")
@email_option
@click.option("--phone", required=True, help="E.164, or '' to remove")
def set_phone(email: str, phone: str) -> None:
    """The user's own phone: the console rings it first when they call a patient back."""
    number = e164(phone, option="--phone") if phone else None
    change = _run(lambda: accounts.set_phone(services(), email, number, actor("users set-phone")))
    shown = mask(number) if number else "none"
    click.echo(f"phone for {change.account.email}: {shown}")


@users_group.command("reset-totp")
@email_option
def reset_totp(email: str) -> None:
    """Forget a user's authenticator (a lost phone); they set up a new one at sign-in."""
    change = _run(lambda: accounts.reset_totp(services(), email, actor("users reset-totp")))
    verb = "sign-in code removed for" if change.changed else "no sign-in code set for"
    click.echo(f"{verb} {change.account.email}{_sessions(change)}")
