"""journal_marks: how far the call journal has been applied (callgateway.calls.journal).

Revision ID: 0004_journal_marks
Revises: 0003_checkin_alert_phone
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_journal_marks"
down_revision: str | None = "0003_checkin_alert_phone"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    marks = op.create_table(
        "journal_marks",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_id", sa.String(length=48), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_journal_marks")),
    )
    # The row the appliers lock; "0-0" is before every stream id.
    op.bulk_insert(marks, [{"name": "calls", "last_id": "0-0"}])


def downgrade() -> None:
    op.drop_table("journal_marks")
