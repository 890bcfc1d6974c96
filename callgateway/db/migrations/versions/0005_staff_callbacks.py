"""Calling a patient back from the console: the staff member's own phone, a work item's
outcome and note, and one row per callback bridge.

Revision ID: 0005_staff_callbacks
Revises: 0004_journal_marks
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_staff_callbacks"
down_revision: str | None = "0004_journal_marks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone", sa.String(length=32), nullable=True))
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcome", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
    op.create_table(
        "staff_callbacks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.String(length=64), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("work_item_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data_category", sa.String(length=32), nullable=False),
        sa.Column("retention_until", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["staff_users.id"], name=op.f("fk_staff_callbacks_user_id_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_callbacks")),
        sa.UniqueConstraint("call_sid", name=op.f("uq_staff_callbacks_call_sid")),
    )
    with op.batch_alter_table("staff_callbacks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_callbacks_clinic_id"), ["clinic_id"])
        batch_op.create_index(batch_op.f("ix_staff_callbacks_call_id"), ["call_id"])
        batch_op.create_index(batch_op.f("ix_staff_callbacks_retention_until"), ["retention_until"])


def downgrade() -> None:
    op.drop_table("staff_callbacks")
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.drop_column("note")
        batch_op.drop_column("outcome")
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_column("phone")
