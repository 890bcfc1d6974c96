"""Book, move and cancel appointments; the caller's number at the clinic owns them.

Double booking is refused by the database: each 15-minute block an appointment covers is a
`SlotHold` row, unique per (clinic, block). Two callers racing for 2 pm both insert; one
commit wins, the other gets an IntegrityError and hears the next free time. No lookup
decides it.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callgateway.booking.slots import BLOCK, blocks, floor_block
from callgateway.config import Clinic, Config
from callgateway.config.retention import retention_until
from callgateway.db.models import Appointment, SlotHold

# Easy to say and to hear on a phone line: no 0/O, 1/I/L, 2/Z, 5/S, 6/G, 8/B look-alikes.
REF_ALPHABET = "ACDEFHJKMNPRTUVWXY3479"
REF_LENGTH = 6


class BookingError(Exception):
    """Base for refusals the agent turns into words."""


class SlotTaken(BookingError):
    """Someone else holds at least one block of this time (the database said so)."""


class RefCollision(BookingError):
    """The random reference already exists; the caller retries with a new one."""


class NotBookable(BookingError):
    """The time is not on the 15-minute grid, unknown type, or otherwise invalid."""


class NotYours(BookingError):
    """No booked appointment with that id for this number at this clinic."""


def new_ref() -> str:
    return "".join(secrets.choice(REF_ALPHABET) for _ in range(REF_LENGTH))


def _retention(config: Config, clinic: Clinic, starts_at: datetime, now: datetime) -> date:
    # Kept for the clinic's appointment retention counted from the visit, not the phone call.
    return retention_until(config, clinic, "appointment", max(starts_at, now))


def _hold(
    session: Session, clinic_id: str, appointment_id: int, start: datetime, end: datetime
) -> None:
    rows = [
        {"clinic_id": clinic_id, "block_start": block, "appointment_id": appointment_id}
        for block in blocks(start, end)
    ]
    try:
        session.flush()  # anything pending first, as the unit of work did
        if rows:
            session.connection().execute(insert(SlotHold.__table__), rows)
    except IntegrityError:
        raise SlotTaken("slot already held") from None


def _check_start(clinic: Clinic, type_id: str, start: datetime) -> timedelta:
    kind = clinic.appointment_type(type_id)
    if kind is None:
        raise NotBookable(f"unknown appointment type {type_id!r}")
    if start.tzinfo is None or floor_block(start) != start.astimezone(UTC):
        raise NotBookable("start must be an aware time on a 15-minute block")
    return timedelta(minutes=kind.minutes)


def book(
    session: Session,
    config: Config,
    clinic: Clinic,
    *,
    phone: str,
    type_id: str,
    start: datetime,
    now: datetime,
    call_sid: str | None = None,
    source: str = "ai",
    patient_name: str | None = None,
) -> Appointment:
    """Insert the appointment and its holds in the caller's transaction (flushed, not
    committed). Raises SlotTaken or RefCollision; the session must then be rolled back."""
    duration = _check_start(clinic, type_id, start)
    start = start.astimezone(UTC)
    appointment = Appointment(
        ref=new_ref(),
        clinic_id=clinic.id,
        phone=phone,
        type_id=type_id,
        starts_at=start,
        ends_at=start + duration,
        status="booked",
        patient_name=patient_name,
        source=source,
        source_call_sid=call_sid,
        created_at=now,
        updated_at=now,
        data_category="appointment",
        retention_until=_retention(config, clinic, start, now),
    )
    session.add(appointment)
    try:
        session.flush()
    except IntegrityError:
        raise RefCollision("reference already used") from None
    _hold(session, clinic.id, appointment.id, appointment.starts_at, appointment.ends_at)
    return appointment


def _owned(session: Session, clinic: Clinic, appointment_id: int, phone: str) -> Appointment:
    appointment = session.scalars(
        select(Appointment)
        .where(
            Appointment.id == appointment_id,
            Appointment.clinic_id == clinic.id,
            Appointment.phone == phone,
            Appointment.status == "booked",
        )
        .with_for_update()
    ).one_or_none()
    if appointment is None:
        raise NotYours("no such booked appointment for this number")
    return appointment


def move(
    session: Session,
    config: Config,
    clinic: Clinic,
    *,
    appointment_id: int,
    phone: str,
    start: datetime,
    now: datetime,
) -> Appointment:
    """Release the old blocks and hold the new ones in one transaction: if the new time is
    taken, the rollback leaves the old appointment exactly as it was."""
    appointment = _owned(session, clinic, appointment_id, phone)
    duration = _check_start(clinic, appointment.type_id, start)
    start = start.astimezone(UTC)
    session.execute(delete(SlotHold).where(SlotHold.appointment_id == appointment.id))
    _hold(session, clinic.id, appointment.id, start, start + duration)
    appointment.starts_at = start
    appointment.ends_at = start + duration
    appointment.updated_at = now
    appointment.retention_until = _retention(config, clinic, start, now)
    session.flush()
    return appointment


def cancel(
    session: Session, clinic: Clinic, *, appointment_id: int, phone: str, now: datetime
) -> Appointment:
    appointment = _owned(session, clinic, appointment_id, phone)
    session.execute(delete(SlotHold).where(SlotHold.appointment_id == appointment.id))
    appointment.status = "cancelled"
    appointment.updated_at = now
    session.flush()
    return appointment


def upcoming(session: Session, clinic_id: str, phone: str, now: datetime) -> list[Appointment]:
    """The caller's booked appointments at this clinic that have not started yet."""
    return list(
        session.scalars(
            select(Appointment)
            .where(
                Appointment.clinic_id == clinic_id,
                Appointment.phone == phone,
                Appointment.status == "booked",
                Appointment.starts_at > now,
            )
            .order_by(Appointment.starts_at)
        )
    )


def on_local_day(appointments: list[Appointment], clinic: Clinic, day: date) -> list[Appointment]:
    return [a for a in appointments if a.starts_at.astimezone(clinic.tz).date() == day]


def document(appointment: Appointment, clinic: Clinic) -> dict[str, Any]:
    """The JSON written to the clinic's region bucket: the appointment as it stands now."""
    kind = clinic.appointment_type(appointment.type_id)
    tz = clinic.tz
    return {
        "ref": appointment.ref,
        "clinic_id": appointment.clinic_id,
        "clinic_name": clinic.name,
        "status": appointment.status,
        "phone": appointment.phone,
        "patient_name": appointment.patient_name,
        "appointment_type": {
            "id": appointment.type_id,
            "name": kind.name if kind else appointment.type_id,
            "minutes": kind.minutes if kind else None,
        },
        "starts_at": appointment.starts_at.astimezone(tz).isoformat(),
        "ends_at": appointment.ends_at.astimezone(tz).isoformat(),
        "timezone": clinic.timezone,
        "source": appointment.source,
        "source_call_sid": appointment.source_call_sid,
        "created_at": appointment.created_at.isoformat(),
        "updated_at": appointment.updated_at.isoformat(),
        "data_category": appointment.data_category,
        "retention_until": appointment.retention_until.isoformat(),
    }


__all__ = [
    "BLOCK",
    "BookingError",
    "NotBookable",
    "NotYours",
    "RefCollision",
    "SlotTaken",
    "book",
    "cancel",
    "document",
    "move",
    "new_ref",
    "on_local_day",
    "upcoming",
]
