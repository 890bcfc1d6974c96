"""Pages of rows newest first, by id: `?before=<id>` opens the next page (keyset paging,
which stays one index walk however far back staff go)."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

Row = TypeVar("Row")


def newest_first(
    db: Session,
    stmt: Select[tuple[Row]],
    id_column: InstrumentedAttribute[Any],
    before: int | None,
    size: int,
) -> tuple[list[Row], int | None]:
    """One page of `stmt`'s rows with ids below `before` (all when None), and the id to
    ask the next page `before` of, or None when this page is the last."""
    if before:
        stmt = stmt.where(id_column < before)
    rows = list(db.scalars(stmt.order_by(id_column.desc()).limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return rows, (getattr(rows[-1], id_column.key) if more and rows else None)
