"""The idempotent insert every webhook relies on tells a new row from a retry on both
backends (psycopg reports a rowcount for ON CONFLICT DO NOTHING that cannot be trusted)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy.exc import IntegrityError

from callgateway.db.insert import insert_ignore
from callgateway.db.models import ConsentEvent
from callgateway.db.session import Database


def opt_out(phone: str, source_id: str) -> dict[str, object]:
    return {
        "clinic_id": "riverside-physio",
        "phone": phone,
        "state": "opted_out",
        "channel": "sms",
        "source_id": source_id,
        "created_at": datetime.now(UTC),
        "data_category": "consent",
        "retention_until": date(2032, 1, 1),
    }


def test_second_insert_with_the_same_natural_key_reports_no_new_row(db_url: str) -> None:
    db = Database(db_url)
    values = opt_out("+447700900123", "SM" + "1" * 32)
    with db.session() as s:
        first = insert_ignore(s, ConsentEvent, values, ["source_id"])
    with db.session() as s:
        second = insert_ignore(s, ConsentEvent, {**values, "state": "opted_in"}, ["source_id"])
    with db.session() as s:
        states = [e.state for e in s.query(ConsentEvent).all()]
    db.dispose()
    assert (first, second) == (True, False)
    assert states == ["opted_out"]


def test_a_database_error_names_the_sql_but_never_the_number_bound_to_it(db_url: str) -> None:
    # Such text reaches log lines and the tracebacks RQ keeps for failed jobs.
    db = Database(db_url)
    values = opt_out("+447700900456", "SM" + "2" * 32)
    with db.session() as s:
        s.add(ConsentEvent(**values))
    try:
        with pytest.raises(IntegrityError) as failed, db.session() as s:
            s.add(ConsentEvent(**values))  # the same source_id: a unique violation
    finally:
        db.dispose()
    text = str(failed.value)
    assert "consent_events" in text  # still says what failed
    assert "7700900456" not in text  # the number was a bound value: hidden
    # (PostgreSQL's own DETAIL names the conflicting key, here a MessageSid: no unique key
    # that can raise holds a number in clear; the alert one is only written ON CONFLICT.)
