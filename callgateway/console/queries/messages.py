"""Texts patients sent that were not consent keywords."""

from __future__ import annotations

from sqlalchemy import select, update
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
