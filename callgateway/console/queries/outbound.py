"""The outbound pages: reminders with the appointment's number, check-in schedules."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from callgateway.db.models import Appointment
from callgateway.db.models_outbound import CheckinSchedule, Reminder


def _with_phone(clinic_ids: list[str]) -> Select[tuple[Reminder, str]]:
    return (
        select(Reminder, Appointment.phone)
        .join(Appointment, Appointment.id == Reminder.appointment_id)
        .where(Reminder.clinic_id.in_(clinic_ids))
    )


def upcoming_reminders(
    db: Session, clinic_ids: list[str], limit: int
) -> list[tuple[Reminder, str]]:
    """Reminders still to send, soonest first, each with the patient's number."""
    stmt = _with_phone(clinic_ids).where(Reminder.status == "scheduled")
    return [(r, phone) for r, phone in db.execute(stmt.order_by(Reminder.due_at).limit(limit))]


def recent_reminders(db: Session, clinic_ids: list[str], limit: int) -> list[tuple[Reminder, str]]:
    """Reminders sent, skipped or cancelled, last changed first, with the number."""
    stmt = _with_phone(clinic_ids).where(Reminder.status != "scheduled")
    stmt = stmt.order_by(Reminder.updated_at.desc()).limit(limit)
    return [(r, phone) for r, phone in db.execute(stmt)]


def schedule(db: Session, schedule_id: int) -> CheckinSchedule | None:
    return db.get(CheckinSchedule, schedule_id)
