"""The call log page."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from callgateway.console.queries.paging import newest_first
from callgateway.db.models import Call


def calls(
    db: Session, clinic_ids: list[str], handled_by: str | None, before: int | None, size: int
) -> tuple[list[Call], int | None]:
    """One page of calls at these clinics, newest first, optionally by who handled them."""
    stmt = select(Call).where(Call.clinic_id.in_(clinic_ids))
    if handled_by:
        stmt = stmt.where(Call.handled_by == handled_by)
    return newest_first(db, stmt, Call.id, before, size)
