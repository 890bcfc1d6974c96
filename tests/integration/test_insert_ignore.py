"""The idempotent insert every webhook relies on tells a new row from a retry on both
backends (psycopg reports a rowcount for ON CONFLICT DO NOTHING that cannot be trusted)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from callgateway.db.models import ConsentEvent
from callgateway.db.session import Database
from callgateway.dbutil import insert_ignore


def test_second_insert_with_the_same_natural_key_reports_no_new_row(db_url: str) -> None:
    db = Database(db_url)
    values = {
        "clinic_id": "riverside-physio",
        "phone": "+447700900123",
        "state": "opted_out",
        "channel": "sms",
        "source_id": "SM" + "1" * 32,
        "created_at": datetime.now(UTC),
        "data_category": "consent",
        "retention_until": date(2032, 1, 1),
    }
    with db.session() as s:
        first = insert_ignore(s, ConsentEvent, values, ["source_id"])
    with db.session() as s:
        second = insert_ignore(s, ConsentEvent, {**values, "state": "opted_in"}, ["source_id"])
    with db.session() as s:
        states = [e.state for e in s.query(ConsentEvent).all()]
    db.dispose()
    assert (first, second) == (True, False)
    assert states == ["opted_out"]
