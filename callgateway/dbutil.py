"""Dialect-neutral helpers for idempotent writes (SQLite in dev, PostgreSQL in production)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignore(session: Session, model: type, values: dict[str, Any], keys: list[str]) -> bool:
    """INSERT ... ON CONFLICT (keys) DO NOTHING. True when a row was written.

    The unique constraint decides, not a prior SELECT: two retries racing each other still
    produce exactly one row.
    """
    stmt: Insert
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        stmt = postgresql.insert(model).values(**values).on_conflict_do_nothing(index_elements=keys)
    else:
        stmt = sqlite.insert(model).values(**values).on_conflict_do_nothing(index_elements=keys)
    result = session.execute(stmt)
    return bool(result.rowcount)
