"""The dashboard's figures: one narrow query per figure, counted in Python by the view."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from callgateway.db.models import Appointment, Call, ConsentEvent, WorkItem


def inbound_calls(
    db: Session, clinic_ids: list[str], since: datetime
) -> list[tuple[datetime, str | None]]:
    """(started_at, handled_by) of every inbound call since `since`."""
    stmt = select(Call.started_at, Call.handled_by).where(
        Call.clinic_id.in_(clinic_ids), Call.direction == "inbound", Call.started_at >= since
    )
    return [(at, handled_by) for at, handled_by in db.execute(stmt)]


def ai_bookings(db: Session, clinic_ids: list[str], since: datetime) -> list[datetime]:
    """When each appointment the AI booked since `since` was made."""
    stmt = select(Appointment.created_at).where(
        Appointment.clinic_id.in_(clinic_ids),
        Appointment.source == "ai",
        Appointment.created_at >= since,
    )
    return list(db.scalars(stmt))


def escalations(
    db: Session, clinic_ids: list[str], since: datetime
) -> list[tuple[datetime, str | None]]:
    """(created_at, the call's handled_by) of every put-through since `since`."""
    stmt = (
        select(WorkItem.created_at, Call.handled_by)
        .outerjoin(Call, Call.call_sid == WorkItem.call_sid)
        .where(
            WorkItem.clinic_id.in_(clinic_ids),
            WorkItem.kind == "escalation",
            WorkItem.created_at >= since,
        )
    )
    return [(at, handled_by) for at, handled_by in db.execute(stmt)]


def opt_outs(db: Session, clinic_ids: list[str], since: datetime) -> list[tuple[datetime, str]]:
    """(created_at, channel) of every opt-out since `since`."""
    stmt = select(ConsentEvent.created_at, ConsentEvent.channel).where(
        ConsentEvent.clinic_id.in_(clinic_ids),
        ConsentEvent.state == "opted_out",
        ConsentEvent.created_at >= since,
    )
    return [(at, channel) for at, channel in db.execute(stmt)]
