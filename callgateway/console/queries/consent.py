"""The consent page: recent events and every number's current state."""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased

from callgateway.console.queries.paging import newest_first
from callgateway.db.models import ConsentEvent


def recent_events(db: Session, clinic_ids: list[str], limit: int = 20) -> list[ConsentEvent]:
    """The newest consent events at these clinics."""
    stmt = (
        select(ConsentEvent)
        .where(ConsentEvent.clinic_id.in_(clinic_ids))
        .order_by(ConsentEvent.id.desc())
        .limit(limit)
    )
    return list(db.scalars(stmt))


def numbers(
    db: Session, clinic_ids: list[str], before: int | None, size: int
) -> tuple[list[ConsentEvent], int | None]:
    """One page of numbers with their newest event (that event's state is the number's
    state), newest change first, and the cursor for the next page.

    Not `ledger.latest_per_number`: that loads every number of one clinic, and this list
    is paged across clinics. "No newer event for the number" lets the database walk ids
    downwards and stop after a page, each check one lookup on the (clinic_id, phone, id)
    index.
    """
    newer = aliased(ConsentEvent)
    stmt = select(ConsentEvent).where(
        ConsentEvent.clinic_id.in_(clinic_ids),
        ~exists().where(
            newer.clinic_id == ConsentEvent.clinic_id,
            newer.phone == ConsentEvent.phone,
            newer.id > ConsentEvent.id,
        ),
    )
    return newest_first(db, stmt, ConsentEvent.id, before, size)
