"""`callgateway db upgrade`."""

from __future__ import annotations

import click
from alembic.util import CommandError
from sqlalchemy.exc import OperationalError

from callgateway.cli.common import fail, main, settings
from callgateway.db import migrate


@main.group("db")
def db_group() -> None:
    """Database schema (Alembic)."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def upgrade(revision: str) -> None:
    """Migrate DATABASE_URL to the newest schema."""
    if not revision.strip():
        fail("--revision: must not be empty (head, or a revision id)")
    url = settings().database_url
    try:
        migrate.upgrade(url, revision)
    except OperationalError as exc:
        fail(f"DATABASE_URL: cannot migrate: {str(exc.orig).splitlines()[0]}")
    except CommandError as exc:
        # An unknown or ambiguous revision; Alembic's text may span lines, the contract not.
        fail(f"--revision: {' '.join(str(exc).split())}")
    except AssertionError as exc:
        # Alembic asserts rather than explains on some targets (`head+5` from head).
        if not _raised_by_revision_map(exc):
            raise
        fail(f"--revision: cannot resolve {revision!r}")
    click.echo(f"database at {revision}")


def _raised_by_revision_map(exc: BaseException) -> bool:
    """Whether Alembic's revision resolution raised `exc`, not a migration script."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_globals.get("__name__", "").startswith("alembic.script")
