"""The schema. Alembic owns it (see migrations/); every personal record has a retention date.

Natural keys from Twilio (CallSid, MessageSid, RecordingSid) and the consent source id are
unique so that a retried webhook finds its row instead of writing a second one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware UTC time")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Retained:
    """Mixin: the data category and the day after which the row must be gone."""

    data_category: Mapped[str] = mapped_column(String(32))
    retention_until: Mapped[date] = mapped_column(Date, index=True)


class ClinicState(Base):
    """Runtime state of a clinic that staff may change without editing the config."""

    __tablename__ = "clinic_state"

    clinic_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)
    require_totp: Mapped[bool] = mapped_column(Boolean, default=False)  # for its staff
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class JournalMark(Base):
    """How far the call journal (callgateway.calls.journal) has been applied: a stream id.

    Bookkeeping, not a record about anyone: one row per journal, no retention date."""

    __tablename__ = "journal_marks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_id: Mapped[str] = mapped_column(String(48))


class Call(Retained, Base):
    """The call log: one row per call, whatever Twilio sends and however often."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    clinic_id: Mapped[str | None] = mapped_column(String(64), index=True)
    direction: Mapped[str] = mapped_column(String(16), default="inbound")
    cli: Mapped[str] = mapped_column(String(32), index=True)  # E.164 or 'anonymous'
    called: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(32), default="patient")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(24), default="ringing")
    outcome: Mapped[str | None] = mapped_column(String(32))
    handled_by: Mapped[str] = mapped_column(String(16), default="none")
    recorded: Mapped[bool] = mapped_column(Boolean, default=False)
    gate_decision: Mapped[str | None] = mapped_column(String(16))
    gate_reason: Mapped[str | None] = mapped_column(String(64))


class CallTurn(Retained, Base):
    """Transcript: what the caller said, what the agent answered, which tools it used."""

    __tablename__ = "call_turns"
    __table_args__ = (UniqueConstraint("call_sid", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), index=True)
    clinic_id: Mapped[str] = mapped_column(String(64), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))  # caller | agent | tool | system
    text: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Appointment(Retained, Base):
    __tablename__ = "appointments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(32), unique=True)
    clinic_id: Mapped[str] = mapped_column(String(64), index=True)
    phone: Mapped[str] = mapped_column(String(32), index=True)
    type_id: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="booked")  # booked | cancelled
    patient_name: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16), default="ai")
    source_call_sid: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SlotHold(Base):
    """One row per occupied slot block: the unique key is what forbids double booking.

    A check-then-insert would race; the database refuses the second insert instead.
    """

    __tablename__ = "slot_holds"
    __table_args__ = (UniqueConstraint("clinic_id", "block_start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[str] = mapped_column(String(64))
    block_start: Mapped[datetime] = mapped_column(UTCDateTime())
    appointment_id: Mapped[int] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE"), index=True
    )


class ConsentEvent(Retained, Base):
    """Append-only consent ledger; the newest event per (clinic, phone) is the state."""

    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_events_clinic_phone", "clinic_id", "phone", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))  # opted_out | opted_in
    channel: Mapped[str] = mapped_column(String(8))  # sms | voice | staff
    source_id: Mapped[str] = mapped_column(String(96), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Suppression(Base):
    """An erased number that must stay opted out: only a keyed hash is kept."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("clinic_id", "phone_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[str] = mapped_column(String(64))
    phone_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Message(Retained, Base):
    """SMS in and out. Inbound free text is kept for staff; outbound tracks delivery."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    clinic_id: Mapped[str] = mapped_column(String(64), index=True)
    direction: Mapped[str] = mapped_column(String(8))  # in | out
    phone: Mapped[str] = mapped_column(String(32), index=True)
    clinic_number: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(24), default="text")
    status: Mapped[str] = mapped_column(String(24), default="received")
    handled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Recording(Retained, Base):
    """A call recording or voicemail: where it is, and whether Twilio's copy is gone."""

    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_sid: Mapped[str] = mapped_column(String(64), unique=True)
    call_sid: Mapped[str] = mapped_column(String(64), index=True)
    clinic_id: Mapped[str] = mapped_column(String(64), index=True)
    phone: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # recording | voicemail
    status: Mapped[str] = mapped_column(String(16), default="pending")
    region: Mapped[str] = mapped_column(String(16))
    bucket: Mapped[str | None] = mapped_column(String(128))
    key: Mapped[str | None] = mapped_column(String(512))
    # The bucket version the transfer wrote (callgateway.adapters.storage.StoredObject).
    version_id: Mapped[str | None] = mapped_column(String(1024))
    media_url: Mapped[str | None] = mapped_column(String(512))
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    deleted_at_twilio: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WorkItem(Retained, Base):
    """Something a person must do: an escalation, a callback request, a voicemail to hear."""

    __tablename__ = "work_items"
    __table_args__ = (UniqueConstraint("call_sid", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # escalation | callback | voicemail
    call_sid: Mapped[str] = mapped_column(String(64))
    clinic_id: Mapped[str] = mapped_column(String(64), index=True)
    phone: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | claimed | done
    claimed_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    recording_sid: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # What came of it, as staff or a callback bridge recorded it (reached, no-answer...).
    outcome: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))  # staff | admin
    clinics: Mapped[list[str]] = mapped_column(JSON, default=list)  # ["*"] for all
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    phone: Mapped[str | None] = mapped_column(String(32))  # rung first when they call back
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)  # a code works once


class StaffCallback(Retained, Base):
    """Staff calling a patient back from the console: Twilio rings the staff member's own
    phone (`call_sid`), then bridges them to the caller of `call_id` from the clinic's
    number. No number is kept here: the patient's is read from the call when dialled."""

    __tablename__ = "staff_callbacks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[str] = mapped_column(String(64), index=True)
    call_id: Mapped[int] = mapped_column(Integer, index=True)
    work_item_id: Mapped[int | None] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(24))  # calling-staff | bridging | done
    outcome: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditEntry(Retained, Base):
    """Who did what to whose data, when. The subject is a keyed hash, never the number."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64))
    clinic_id: Mapped[str | None] = mapped_column(String(64))
    subject_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class OutboxItem(Retained, Base):
    """Durable side effects (bucket writes, SMS) done after commit and retried until done."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    clinic_id: Mapped[str] = mapped_column(String(64), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    last_error: Mapped[str | None] = mapped_column(Text)


class StoredObject(Retained, Base):
    """A bucket object we write, other than a recording or voicemail (whose `recordings` row
    says where it is): its key, its region and the day it must be gone. Written before the
    object exists (with the outbox entry that will write it, or just before the put), so the
    retention sweep finds every expired object from the database, never by listing buckets.

    `region` is empty only for rows made by migration 0005 from what existed before it (the
    sweep then takes the clinic's region from the config)."""

    __tablename__ = "stored_objects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(512), unique=True)
    clinic_id: Mapped[str] = mapped_column(String(64), index=True)
    region: Mapped[str | None] = mapped_column(String(16))
    # The version the last put wrote, once it is written: the sweep deletes it by id. A
    # version a key's earlier put left behind (an appointment moved) is noncurrent, and the
    # bucket's noncurrent-version rule removes it (infra/cloudformation/cell.yaml).
    version_id: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
