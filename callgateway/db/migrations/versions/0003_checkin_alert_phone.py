"""checkin_alerts.receiver -> phone: the receiver's number under the name rights export and
erase look for, so an alert receiver's own records are found like anyone's.

Revision ID: 0003_checkin_alert_phone
Revises: 0002_outbound
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003_checkin_alert_phone"
down_revision: str | None = "0002_outbound"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("checkin_alerts", schema=None) as batch_op:
        batch_op.alter_column("receiver", new_column_name="phone")
    op.create_index(op.f("ix_checkin_alerts_phone"), "checkin_alerts", ["phone"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_checkin_alerts_phone"), table_name="checkin_alerts")
    with op.batch_alter_table("checkin_alerts", schema=None) as batch_op:
        batch_op.alter_column("phone", new_column_name="receiver")
