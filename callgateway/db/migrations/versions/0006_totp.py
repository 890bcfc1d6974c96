"""A second factor for console sign-in: each user's TOTP secret and the last time step
used (a code works once), and a clinic's requirement of it.

Revision ID: 0006_totp
Revises: 0005_staff_callbacks
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_totp"
down_revision: str | None = "0005_staff_callbacks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_secret", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("clinic_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("require_totp", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("clinic_state", schema=None) as batch_op:
        batch_op.drop_column("require_totp")
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_column("totp_last_step")
        batch_op.drop_column("totp_secret")
