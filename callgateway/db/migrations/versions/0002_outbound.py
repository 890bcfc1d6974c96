"""outbound: reminders, check-in schedules, attempts, alerts, summary e-mails

Revision ID: 0002_outbound
Revises: 0001
Create Date: 2026-11-23 07:09:53.447678
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_outbound"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "checkin_schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=True),
        sa.Column("days", sa.String(length=32), nullable=False),
        sa.Column("local_time", sa.String(length=5), nullable=False),
        sa.Column("message_text", sa.Text(), nullable=True),
        sa.Column("recording_key", sa.String(length=512), nullable=True),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("retry_minutes", sa.Integer(), nullable=False),
        sa.Column("alert_numbers", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data_category", sa.String(length=32), nullable=False),
        sa.Column("retention_until", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkin_schedules")),
    )
    with op.batch_alter_table("checkin_schedules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_checkin_schedules_clinic_id"), ["clinic_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_checkin_schedules_phone"), ["phone"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_checkin_schedules_retention_until"), ["retention_until"], unique=False
        )

    op.create_table(
        "summary_emails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_summary_emails")),
        sa.UniqueConstraint("clinic_id", "day", name=op.f("uq_summary_emails_clinic_id")),
    )
    op.create_table(
        "checkin_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.String(length=64), nullable=False),
        sa.Column("occurrence", sa.DateTime(timezone=True), nullable=False),
        sa.Column("receiver", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.String(length=48), nullable=True),
        sa.Column("twilio_sid", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data_category", sa.String(length=32), nullable=False),
        sa.Column("retention_until", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["checkin_schedules.id"],
            name=op.f("fk_checkin_alerts_schedule_id_checkin_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkin_alerts")),
        sa.UniqueConstraint(
            "schedule_id",
            "occurrence",
            "receiver",
            "channel",
            name=op.f("uq_checkin_alerts_schedule_id"),
        ),
        sa.UniqueConstraint("twilio_sid", name=op.f("uq_checkin_alerts_twilio_sid")),
    )
    with op.batch_alter_table("checkin_alerts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_checkin_alerts_clinic_id"), ["clinic_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_checkin_alerts_occurrence"), ["occurrence"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_checkin_alerts_retention_until"), ["retention_until"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_checkin_alerts_schedule_id"), ["schedule_id"], unique=False
        )

    op.create_table(
        "checkin_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.String(length=64), nullable=False),
        sa.Column("occurrence", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempt_no", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=48), nullable=True),
        sa.Column("call_sid", sa.String(length=64), nullable=True),
        sa.Column("answered_by", sa.String(length=24), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data_category", sa.String(length=32), nullable=False),
        sa.Column("retention_until", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["checkin_schedules.id"],
            name=op.f("fk_checkin_attempts_schedule_id_checkin_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkin_attempts")),
        sa.UniqueConstraint("call_sid", name=op.f("uq_checkin_attempts_call_sid")),
        sa.UniqueConstraint(
            "schedule_id", "occurrence", "attempt_no", name=op.f("uq_checkin_attempts_schedule_id")
        ),
    )
    with op.batch_alter_table("checkin_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_checkin_attempts_clinic_id"), ["clinic_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_checkin_attempts_occurrence"), ["occurrence"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_checkin_attempts_retention_until"), ["retention_until"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_checkin_attempts_schedule_id"), ["schedule_id"], unique=False
        )

    op.create_table(
        "reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("offset_hours", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=48), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("twilio_sid", sa.String(length=64), nullable=True),
        sa.Column("response", sa.String(length=16), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data_category", sa.String(length=32), nullable=False),
        sa.Column("retention_until", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_reminders_appointment_id_appointments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminders")),
        sa.UniqueConstraint(
            "appointment_id",
            "channel",
            "offset_hours",
            "starts_at",
            name=op.f("uq_reminders_appointment_id"),
        ),
        sa.UniqueConstraint("twilio_sid", name=op.f("uq_reminders_twilio_sid")),
    )
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reminders_appointment_id"), ["appointment_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_reminders_clinic_id"), ["clinic_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_reminders_retention_until"), ["retention_until"], unique=False
        )
        batch_op.create_index("ix_reminders_status_due", ["status", "due_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.drop_index("ix_reminders_status_due")
        batch_op.drop_index(batch_op.f("ix_reminders_retention_until"))
        batch_op.drop_index(batch_op.f("ix_reminders_clinic_id"))
        batch_op.drop_index(batch_op.f("ix_reminders_appointment_id"))

    op.drop_table("reminders")
    with op.batch_alter_table("checkin_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkin_attempts_schedule_id"))
        batch_op.drop_index(batch_op.f("ix_checkin_attempts_retention_until"))
        batch_op.drop_index(batch_op.f("ix_checkin_attempts_occurrence"))
        batch_op.drop_index(batch_op.f("ix_checkin_attempts_clinic_id"))

    op.drop_table("checkin_attempts")
    with op.batch_alter_table("checkin_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkin_alerts_schedule_id"))
        batch_op.drop_index(batch_op.f("ix_checkin_alerts_retention_until"))
        batch_op.drop_index(batch_op.f("ix_checkin_alerts_occurrence"))
        batch_op.drop_index(batch_op.f("ix_checkin_alerts_clinic_id"))

    op.drop_table("checkin_alerts")
    op.drop_table("summary_emails")
    with op.batch_alter_table("checkin_schedules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkin_schedules_retention_until"))
        batch_op.drop_index(batch_op.f("ix_checkin_schedules_phone"))
        batch_op.drop_index(batch_op.f("ix_checkin_schedules_clinic_id"))

    op.drop_table("checkin_schedules")
