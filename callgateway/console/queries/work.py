"""The work queue (callers who wanted a person, callback requests, voicemails to deal with):
listing it, and the guarded updates by which staff claim, release and finish an item."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from callgateway.db.models import CallTurn, StaffUser, WorkItem


def _with_claimer(
    clinic_ids: list[str], statuses: tuple[str, ...], kinds: tuple[str, ...]
) -> Select[tuple[WorkItem, str | None]]:
    return (
        select(WorkItem, StaffUser.email)
        .outerjoin(StaffUser, StaffUser.id == WorkItem.claimed_by)
        .where(
            WorkItem.clinic_id.in_(clinic_ids),
            WorkItem.kind.in_(kinds),
            WorkItem.status.in_(statuses),
        )
    )


def items(
    db: Session, clinic_ids: list[str], statuses: tuple[str, ...], kinds: tuple[str, ...]
) -> list[tuple[WorkItem, str | None]]:
    """Items in these states, oldest first, each with the email of whoever claimed it."""
    stmt = _with_claimer(clinic_ids, statuses, kinds).order_by(WorkItem.created_at.asc())
    return [(item, email) for item, email in db.execute(stmt)]


def recent_items(
    db: Session,
    clinic_ids: list[str],
    statuses: tuple[str, ...],
    kinds: tuple[str, ...],
    since: datetime,
    limit: int = 20,
) -> list[tuple[WorkItem, str | None]]:
    """Items in these states changed since `since`, last changed first, with the claimer."""
    stmt = (
        _with_claimer(clinic_ids, statuses, kinds)
        .where(WorkItem.updated_at >= since)
        .order_by(WorkItem.updated_at.desc())
        .limit(limit)
    )
    return [(item, email) for item, email in db.execute(stmt)]


# What the queue lists (voicemails have their own page): the badge counts the same rows.
QUEUE_KINDS = ("escalation", "callback")


def open_count(db: Session, clinic_ids: list[str]) -> int:
    """How many queue items at these clinics nobody has claimed yet: the rows the queue
    shows as open, and the same number as its poller's X-Open-Count."""
    stmt = (
        select(func.count())
        .select_from(WorkItem)
        .where(
            WorkItem.clinic_id.in_(clinic_ids),
            WorkItem.status == "open",
            WorkItem.kind.in_(QUEUE_KINDS),
        )
    )
    return db.scalar(stmt) or 0


def item(db: Session, item_id: int) -> WorkItem | None:
    return db.get(WorkItem, item_id)


# Each update is guarded by the state it moves from: of two people pressing at once,
# exactly one changes the row, and the other learns so from the False.


def claim(db: Session, item_id: int, user_id: int, now: datetime) -> bool:
    """An open item becomes `user_id`'s."""
    stmt = (
        update(WorkItem)
        .where(WorkItem.id == item_id, WorkItem.status == "open")
        .values(status="claimed", claimed_by=user_id, updated_at=now)
    )
    return bool(db.execute(stmt).rowcount)


def release(db: Session, item_id: int, user_id: int, now: datetime) -> bool:
    """An item `user_id` claimed goes back to the queue."""
    stmt = (
        update(WorkItem)
        .where(
            WorkItem.id == item_id,
            WorkItem.status == "claimed",
            WorkItem.claimed_by == user_id,
        )
        .values(status="open", claimed_by=None, updated_at=now)
    )
    return bool(db.execute(stmt).rowcount)


def finish(db: Session, item_id: int, done_by: int, now: datetime) -> bool:
    """An open or claimed item is done, credited to `done_by`."""
    stmt = (
        update(WorkItem)
        .where(WorkItem.id == item_id, WorkItem.status.in_(("open", "claimed")))
        .values(status="done", claimed_by=done_by, updated_at=now)
    )
    return bool(db.execute(stmt).rowcount)


def caller_lines(db: Session, call_sids: list[str]) -> dict[str, list[str]]:
    """What each caller said on these calls, in order (silence and key presses left out)."""
    if not call_sids:
        return {}
    stmt = (
        select(CallTurn.call_sid, CallTurn.text)
        .where(CallTurn.call_sid.in_(call_sids), CallTurn.role == "caller")
        .order_by(CallTurn.call_sid, CallTurn.seq)
    )
    found: dict[str, list[str]] = {}
    for call_sid, text in db.execute(stmt):
        if text and not text.startswith("["):
            found.setdefault(call_sid, []).append(text)
    return found
