"""`callgateway users add`: console accounts."""

from __future__ import annotations

import sys

import click
from sqlalchemy.exc import SQLAlchemyError

from callgateway.cli.common import fail, main, services
from callgateway.console import users


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
