"""Migration 0005 gives the objects written before it a ledger row, so the retention sweep
(which no longer lists buckets) finds them too: each appointment's JSON copy and each
check-in schedule's recorded message, with their records' retention dates."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from callgateway.db import migrate

AT = "2026-11-23 09:00:00+00:00"


def _seed_before_the_ledger(url: str) -> None:
    migrate.upgrade(url, "0004_journal_marks")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO appointments (ref, clinic_id, phone, type_id, starts_at, ends_at,"
                " status, source, created_at, updated_at, data_category, retention_until)"
                " VALUES ('48213907', 'riverside-physio', '+447700900123', 'initial', :at, :at,"
                " 'booked', 'ai', :at, :at, 'appointment', '2033-11-23')"
            ),
            {"at": AT},
        )
        for key in ("clinics/riverside-physio/checkins/ab.mp3", None):
            conn.execute(
                text(
                    "INSERT INTO checkin_schedules (clinic_id, phone, days, local_time,"
                    " recording_key, retries, retry_minutes, alert_numbers, active, created_at,"
                    " updated_at, data_category, retention_until) VALUES ('riverside-physio',"
                    " '+447700900124', 'mon', '09:00', :key, 2, 5, '[]', true, :at, :at,"
                    " 'appointment', '2030-01-01')"
                ),
                {"key": key, "at": AT},
            )
    engine.dispose()


def _ledger(url: str) -> list[tuple[str, str, str | None, str, date | str]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT key, clinic_id, region, data_category, retention_until"
                " FROM stored_objects ORDER BY key"
            )
        ).all()
    engine.dispose()
    return [tuple(r) for r in rows]  # type: ignore[misc]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_objects_written_before_the_ledger_get_rows(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    _seed_before_the_ledger(url)
    migrate.upgrade(url)
    rows = _ledger(url)
    assert [(k, c, r, cat, str(d)) for k, c, r, cat, d in rows] == [
        (
            "clinics/riverside-physio/appointments/48213907.json",
            "riverside-physio", None, "appointment", "2033-11-23",
        ),
        (
            "clinics/riverside-physio/checkins/ab.mp3",
            "riverside-physio", None, "appointment", "2030-01-01",
        ),
    ]  # fmt: skip
    migrate.downgrade(url, "0004_journal_marks")
    migrate.upgrade(url)
    assert len(_ledger(url)) == 2
