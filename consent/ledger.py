"""Append-only consent events per (clinic, number); the newest one is the current state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from callgateway.db.models import ConsentEvent, Suppression
from callgateway.dbutil import insert_ignore

NONE = "none"
OPTED_OUT = "opted_out"
OPTED_IN = "opted_in"
CHANNELS = ("sms", "voice", "staff")


@dataclass(frozen=True)
class NewEvent:
    clinic_id: str
    phone: str
    state: str  # OPTED_OUT | OPTED_IN
    channel: str
    source_id: str  # MessageSid, CallSid or "staff:<user id>:<nonce>"
    at: datetime
    retention_until: date


def append(session: Session, event: NewEvent) -> bool:
    """Add the event unless its source id was seen before. True when it was new."""
    if event.state not in (OPTED_OUT, OPTED_IN):
        raise ValueError(f"unknown consent state {event.state!r}")
    if event.channel not in CHANNELS:
        raise ValueError(f"unknown consent channel {event.channel!r}")
    return insert_ignore(
        session,
        ConsentEvent,
        {
            "clinic_id": event.clinic_id,
            "phone": event.phone,
            "state": event.state,
            "channel": event.channel,
            "source_id": event.source_id,
            "created_at": event.at,
            "data_category": "consent",
            "retention_until": event.retention_until,
        },
        ["source_id"],
    )


def current_state(session: Session, clinic_id: str, phone: str, phone_hash: str) -> str:
    """The state from the ledger; an erased-but-suppressed number stays opted out."""
    latest = session.scalars(
        select(ConsentEvent.state)
        .where(ConsentEvent.clinic_id == clinic_id, ConsentEvent.phone == phone)
        .order_by(ConsentEvent.id.desc())
        .limit(1)
    ).first()
    if latest is not None:
        return latest
    suppressed = session.scalars(
        select(Suppression.id).where(
            Suppression.clinic_id == clinic_id, Suppression.phone_hash == phone_hash
        )
    ).first()
    return OPTED_OUT if suppressed is not None else NONE


def history(session: Session, clinic_id: str | None, phone: str) -> list[ConsentEvent]:
    stmt = select(ConsentEvent).where(ConsentEvent.phone == phone)
    if clinic_id is not None:
        stmt = stmt.where(ConsentEvent.clinic_id == clinic_id)
    return list(session.scalars(stmt.order_by(ConsentEvent.id)))
