"""Idempotent writes: the one INSERT ... ON CONFLICT (keys) DO NOTHING, on SQLite in dev
and PostgreSQL in production alike.

The unique constraint decides, never a prior SELECT: two retries racing each other still
produce exactly one row. Three entry points, for what callers need to know afterwards:
`insert_ignore` (was a row written?), `insert_new` (the new row's id) and
`insert_ignore_all` (many rows at once, nothing to report).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session


@cache
def _statement(model: type, dialect: str, keys: tuple[str, ...], returning: str | None) -> Insert:
    # Built once per (table, dialect, keys): a statement without inline values hits
    # SQLAlchemy's compiled cache, which matters on the webhook hot path.
    table = model.__table__  # type: ignore[attr-defined]
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table).on_conflict_do_nothing(index_elements=list(keys))
    # RETURNING tells a new row from a conflict on every backend; psycopg's rowcount for
    # ON CONFLICT DO NOTHING does not (it depends on the driver and how it was executed).
    return stmt.returning(table.c[returning]) if returning else stmt


def insert_ignore(
    session: Session, model: type, values: Mapping[str, Any], keys: Sequence[str]
) -> bool:
    """INSERT ... ON CONFLICT (keys) DO NOTHING. True when a row was written."""
    connection = session.connection()
    stmt = _statement(model, connection.dialect.name, tuple(keys), keys[0])
    return connection.execute(stmt, values).first() is not None


def insert_new(
    session: Session, model: type, values: Mapping[str, Any], keys: Sequence[str]
) -> int | None:
    """Insert unless the unique `keys` already exist: the new row's id, or None if they did
    (a claim on an idempotency row: only the caller that gets an id goes on)."""
    connection = session.connection()
    stmt = _statement(model, connection.dialect.name, tuple(keys), "id")
    return connection.execute(stmt, values).scalar_one_or_none()


def insert_ignore_all(
    connection: Connection, model: type, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]
) -> None:
    """Many rows in one executemany, each skipped when its `keys` exist. No RETURNING: the
    caller does not ask which were new, and the driver keeps its fast executemany path."""
    stmt = _statement(model, connection.dialect.name, tuple(keys), None)
    connection.execute(stmt, list(rows))
