"""Claiming an idempotency row: INSERT ... ON CONFLICT DO NOTHING RETURNING id.

RETURNING, not the row count: whether a conflicting insert reports rowcount 0 depends on
the driver and on how the statement is executed, while "did a row come back" does not.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_new(
    session: Session, model: type, values: dict[str, Any], keys: list[str]
) -> int | None:
    """Insert unless the unique `keys` already exist; the new row's id, or None if it did."""
    connection = session.connection()
    table = model.__table__  # type: ignore[attr-defined]
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=keys)
        .returning(table.c.id)
    )
    return connection.execute(stmt).scalar_one_or_none()
