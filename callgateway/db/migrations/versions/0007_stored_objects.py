"""stored_objects: the ledger of bucket objects the retention sweep reads (issue 19).

Backfilled from what existed before: each appointment's JSON copy (the outbox wrote it under
a key made from the ref) and each check-in schedule's recorded message. Their region is not
in the database (it is the clinic's, in the config): the sweep looks it up. Neither they nor
the recordings stored before have a version id: the sweep lists their versions first.

Revision ID: 0007_stored_objects
Revises: 0006_totp
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_stored_objects"
down_revision: str | None = "0006_totp"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stored_objects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("clinic_id", sa.String(length=64), nullable=False),
        sa.Column("region", sa.String(length=16), nullable=True),
        sa.Column("version_id", sa.String(length=1024), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data_category", sa.String(length=32), nullable=False),
        sa.Column("retention_until", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stored_objects")),
        sa.UniqueConstraint("key", name=op.f("uq_stored_objects_key")),
    )
    op.create_index(
        op.f("ix_stored_objects_clinic_id"), "stored_objects", ["clinic_id"], unique=False
    )
    op.create_index(
        op.f("ix_stored_objects_retention_until"),
        "stored_objects",
        ["retention_until"],
        unique=False,
    )
    op.add_column("recordings", sa.Column("version_id", sa.String(length=1024), nullable=True))
    op.execute(
        "INSERT INTO stored_objects (key, clinic_id, region, created_at, data_category,"
        " retention_until)"
        " SELECT 'clinics/' || clinic_id || '/appointments/' || ref || '.json', clinic_id,"
        " NULL, created_at, 'appointment', retention_until FROM appointments"
    )
    op.execute(
        "INSERT INTO stored_objects (key, clinic_id, region, created_at, data_category,"
        " retention_until)"
        " SELECT recording_key, MIN(clinic_id), NULL, MIN(created_at), 'appointment',"
        " MAX(retention_until) FROM checkin_schedules WHERE recording_key IS NOT NULL"
        " AND recording_key NOT IN (SELECT key FROM stored_objects) GROUP BY recording_key"
    )


def downgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.drop_column("version_id")
    op.drop_index(op.f("ix_stored_objects_retention_until"), table_name="stored_objects")
    op.drop_index(op.f("ix_stored_objects_clinic_id"), table_name="stored_objects")
    op.drop_table("stored_objects")
