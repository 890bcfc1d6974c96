"""Dialect-neutral helpers for idempotent writes (SQLite in dev, PostgreSQL in production)."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


@cache
def _insert_ignore_stmt(model: type, dialect: str, keys: tuple[str, ...]) -> Insert:
    # Built once per (table, dialect): a statement without inline values hits SQLAlchemy's
    # compiled cache, which matters on the webhook hot path.
    table = model.__table__  # type: ignore[attr-defined]
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(keys))
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(keys))


def insert_ignore(session: Session, model: type, values: dict[str, Any], keys: list[str]) -> bool:
    """INSERT ... ON CONFLICT (keys) DO NOTHING. True when a row was written.

    The unique constraint decides, not a prior SELECT: two retries racing each other still
    produce exactly one row.
    """
    connection = session.connection()
    stmt = _insert_ignore_stmt(model, connection.dialect.name, tuple(keys))
    result = connection.execute(stmt, values)
    return bool(result.rowcount)
