"""`callgateway db upgrade`."""

from __future__ import annotations

import click
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
    url = settings().database_url
    try:
        migrate.upgrade(url, revision)
    except OperationalError as exc:
        fail(f"DATABASE_URL: cannot migrate: {str(exc.orig).splitlines()[0]}")
    click.echo(f"database at {revision}")
