"""One call's page: the call, its transcript, its recordings, work items and appointments."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from callgateway.db.models import (
    Appointment,
    Call,
    CallTurn,
    Recording,
    StaffCallback,
    StaffUser,
    WorkItem,
)


def call(db: Session, call_id: int) -> Call | None:
    return db.get(Call, call_id)


def call_by_sid(db: Session, call_sid: str) -> Call | None:
    return db.scalars(select(Call).where(Call.call_sid == call_sid)).one_or_none()


def transcript(db: Session, call_sid: str) -> list[CallTurn]:
    stmt = select(CallTurn).where(CallTurn.call_sid == call_sid).order_by(CallTurn.seq)
    return list(db.scalars(stmt))


def recordings(db: Session, call_sid: str) -> list[Recording]:
    stmt = select(Recording).where(Recording.call_sid == call_sid).order_by(Recording.id)
    return list(db.scalars(stmt))


def work_items(db: Session, call_sid: str) -> list[tuple[WorkItem, str | None]]:
    stmt = (
        select(WorkItem, StaffUser.email)
        .outerjoin(StaffUser, StaffUser.id == WorkItem.claimed_by)
        .where(WorkItem.call_sid == call_sid)
        .order_by(WorkItem.id)
    )
    return [(item, email) for item, email in db.execute(stmt)]


def appointments(db: Session, clinic_id: str, call_sid: str, refs: list[str]) -> list[Appointment]:
    """Appointments the call made, or moved or cancelled (named by ref in its transcript)."""
    touched = [Appointment.source_call_sid == call_sid]
    if refs:
        touched.append(Appointment.ref.in_(refs))
    stmt = (
        select(Appointment)
        .where(Appointment.clinic_id == clinic_id, or_(*touched))
        .order_by(Appointment.starts_at)
    )
    return list(db.scalars(stmt))


def callbacks(db: Session, call_id: int) -> list[tuple[StaffCallback, str | None]]:
    stmt = (
        select(StaffCallback, StaffUser.email)
        .outerjoin(StaffUser, StaffUser.id == StaffCallback.user_id)
        .where(StaffCallback.call_id == call_id)
        .order_by(StaffCallback.id)
    )
    return [(cb, email) for cb, email in db.execute(stmt)]


def work_item(db: Session, item_id: int) -> WorkItem | None:
    return db.get(WorkItem, item_id)
