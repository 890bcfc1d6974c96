"""Outbound contact: appointment reminders, check-in schedules, attempts and alerts.

The unique keys are the idempotency keys: several workers, RQ retries and Twilio retries
all race for the same row and the database lets exactly one of them win.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from callgateway.db.models import Base, Retained, UTCDateTime


class Reminder(Retained, Base):
    """One planned reminder of one appointment slot, by channel and offset.

    `starts_at` is part of the key: a moved appointment is reminded of again at its new
    time, while a retried or duplicated job for the same slot finds the same row.
    """

    __tablename__ = "reminders"
    __table_args__ = (
        UniqueConstraint("appointment_id", "channel", "offset_hours", "starts_at"),
        Index("ix_reminders_status_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appointment_id: Mapped[int] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE"), index=True
    )
    clinic_id: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(8))  # sms | call
    offset_hours: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # scheduled | sending | sent | skipped | cancelled | failed
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    reason: Mapped[str | None] = mapped_column(String(48))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    twilio_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    response: Mapped[str | None] = mapped_column(String(16))  # confirmed | cancelled | person
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CheckinSchedule(Retained, Base):
    """A recurring "are you OK?" call to one patient, with the people to alert."""

    __tablename__ = "checkin_schedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[str] = mapped_column(String(64), index=True)
    phone: Mapped[str] = mapped_column(String(32), index=True)
    display_name: Mapped[str | None] = mapped_column(String(100))
    days: Mapped[str] = mapped_column(String(32))  # "mon,tue,..." in week order
    local_time: Mapped[str] = mapped_column(String(5))  # HH:MM, clinic timezone
    message_text: Mapped[str | None] = mapped_column(Text)
    recording_key: Mapped[str | None] = mapped_column(String(512))  # region bucket key
    retries: Mapped[int] = mapped_column(Integer, default=2)
    retry_minutes: Mapped[int] = mapped_column(Integer, default=5)
    alert_numbers: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CheckinAttempt(Retained, Base):
    """One call of one check-in occurrence; attempt 1 is the first call, then retries."""

    __tablename__ = "checkin_attempts"
    __table_args__ = (UniqueConstraint("schedule_id", "occurrence", "attempt_no"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(
        ForeignKey("checkin_schedules.id", ondelete="CASCADE"), index=True
    )
    clinic_id: Mapped[str] = mapped_column(String(64), index=True)
    occurrence: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    attempt_no: Mapped[int] = mapped_column(Integer)
    # calling | in-call | confirmed | help | unanswered | machine | unconfirmed | failed | skipped
    status: Mapped[str] = mapped_column(String(16), default="calling")
    reason: Mapped[str | None] = mapped_column(String(48))
    call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    answered_by: Mapped[str | None] = mapped_column(String(24))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CheckinAlert(Retained, Base):
    """An alert to one receiver about one missed occurrence, by SMS or by call."""

    __tablename__ = "checkin_alerts"
    __table_args__ = (UniqueConstraint("schedule_id", "occurrence", "phone", "channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(
        ForeignKey("checkin_schedules.id", ondelete="CASCADE"), index=True
    )
    clinic_id: Mapped[str] = mapped_column(String(64), index=True)
    occurrence: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    phone: Mapped[str] = mapped_column(String(32), index=True)  # the receiver's number
    channel: Mapped[str] = mapped_column(String(8))  # sms | call
    reason: Mapped[str] = mapped_column(String(24))  # unanswered | machine | unconfirmed | help
    status: Mapped[str] = mapped_column(String(16), default="sending")  # + sent|failed|skipped
    detail: Mapped[str | None] = mapped_column(String(48))
    twilio_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SummaryEmail(Base):
    """The daily summary mail of one clinic and local day: claimed once, sent once."""

    __tablename__ = "summary_emails"
    __table_args__ = (UniqueConstraint("clinic_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="sending")  # sending | sent
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)
