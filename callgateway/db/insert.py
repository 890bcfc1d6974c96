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
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # RETURNING tells a new row from a conflict on every backend; psycopg's rowcount for
    # ON CONFLICT DO NOTHING does not.
    return (
        insert(table).on_conflict_do_nothing(index_elements=list(keys)).returning(table.c[keys[0]])
    )


def insert_ignore(session: Session, model: type, values: dict[str, Any], keys: list[str]) -> bool:
    """INSERT ... ON CONFLICT (keys) DO NOTHING. True when a row was written.

    The unique constraint decides, not a prior SELECT: two retries racing each other still
    produce exactly one row.
    """
    connection = session.connection()
    stmt = _insert_ignore_stmt(model, connection.dialect.name, tuple(keys))
    return connection.execute(stmt, values).first() is not None
