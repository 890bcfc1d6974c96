"""The ledger of bucket objects: one `stored_objects` row per object we write (recordings
and voicemails excepted: their `recordings` row is theirs), so that the retention sweep
finds what has expired with one indexed query.

The row goes first, in the caller's transaction (the outbox entry that will write the
object, or a commit just before the put): an object of ours never exists without a row,
while a row whose object was never written costs the sweep one harmless delete.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from callgateway.db.insert import insert_ignore
from callgateway.db.models import StoredObject


def record_object(
    session: Session,
    *,
    clinic_id: str,
    region: str,
    key: str,
    category: str,
    retention_until: date,
    now: datetime,
) -> None:
    """Note that `key` is (or is about to be) written, in the caller's unit of work. A key
    written again (an appointment's copy after a move) keeps one row, with the latest date."""
    values = {
        "key": key,
        "clinic_id": clinic_id,
        "region": region,
        "data_category": category,
        "retention_until": retention_until,
        "created_at": now,
    }
    if not insert_ignore(session, StoredObject, values, ["key"]):
        session.execute(
            update(StoredObject)
            .where(StoredObject.key == key)
            .values(region=region, data_category=category, retention_until=retention_until)
        )


def object_written(session: Session, key: str, version_id: str) -> None:
    """The put of `key` succeeded and made `version_id`: the sweep deletes that version by
    its id, without listing the key's versions."""
    session.execute(
        update(StoredObject).where(StoredObject.key == key).values(version_id=version_id)
    )
