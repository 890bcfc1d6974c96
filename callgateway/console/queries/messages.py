"""Texts patients sent that were not consent keywords."""

from __future__ import annotations

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from callgateway.db.models import Message


def incoming(db: Session, clinic_ids: list[str], todo_only: bool, limit: int) -> list[Message]:
    """Received texts, newest first; only those nobody has handled when `todo_only`."""
    stmt = select(Message).where(Message.direction == "in", Message.clinic_id.in_(clinic_ids))
    if todo_only:
        stmt = stmt.where(Message.handled.is_(False))
    return list(db.scalars(stmt.order_by(Message.created_at.desc()).limit(limit)))


def incoming_message(db: Session, message_id: int) -> Message | None:
    """A received text by id; None for one we sent."""
    message = db.get(Message, message_id)
    return message if message is not None and message.direction == "in" else None


def mark_handled(db: Session, message_id: int) -> None:
    db.execute(update(Message).where(Message.id == message_id).values(handled=True))


def replies(db: Session, message_ids: list[int]) -> dict[int, list[Message]]:
    """Staff replies to these texts, oldest first (keyed `reply:<message id>:<request>`)."""
    if not message_ids:
        return {}
    prefixes = [Message.idempotency_key.startswith(f"reply:{i}:") for i in message_ids]
    stmt = (
        select(Message)
        .where(Message.direction == "out", Message.kind == "staff-reply", or_(*prefixes))
        .order_by(Message.id)
    )
    found: dict[int, list[Message]] = {}
    for message in db.scalars(stmt):
        found.setdefault(int((message.idempotency_key or "::").split(":")[1]), []).append(message)
    return found
