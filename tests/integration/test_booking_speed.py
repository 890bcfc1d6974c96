"""Holds are written in one statement, outside the unit of work: the same rows, the same
refusals (SQLite here; tests/integration/test_booking_* run both backends)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from callgateway.booking import appointments
from callgateway.booking.slots import BLOCK
from callgateway.config import load_config
from callgateway.db.models import SlotHold
from tests.support.settings import EXAMPLE_CONFIG

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TUESDAY_10 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def _holds(s: Session) -> list[tuple[datetime, int]]:
    rows = s.execute(select(SlotHold.block_start, SlotHold.appointment_id).order_by("id"))
    return [(at, appointment_id) for at, appointment_id in rows]


def test_holds_cover_the_appointment_and_refuse_an_overlap(sqlite_url: str) -> None:
    config = load_config(EXAMPLE_CONFIG)
    clinic = next(c for c in config.clinics if c.id == "riverside-physio")  # 45 and 30 min
    engine = create_engine(sqlite_url)
    with Session(engine) as s:
        first = appointments.book(
            s, config, clinic, phone="+447700900123", type_id="initial", start=TUESDAY_10, now=NOW
        )
        s.commit()
        assert _holds(s) == [(TUESDAY_10 + n * BLOCK, first.id) for n in range(3)]

    with Session(engine) as s, pytest.raises(appointments.SlotTaken):
        appointments.book(
            s, config, clinic, phone="+447700900456", type_id="follow-up",
            start=TUESDAY_10 + 2 * BLOCK, now=NOW,
        )  # fmt: skip

    with Session(engine) as s:
        assert len(_holds(s)) == 3  # the refused booking left nothing behind
        later = TUESDAY_10 + timedelta(hours=2)
        moved = appointments.move(
            s, config, clinic, appointment_id=first.id, phone="+447700900123", start=later,
            now=NOW,
        )  # fmt: skip
        s.commit()
        assert moved.starts_at == later
        assert _holds(s) == [(later + n * BLOCK, first.id) for n in range(3)]
        second = appointments.book(
            s, config, clinic, phone="+447700900456", type_id="follow-up", start=TUESDAY_10,
            now=NOW,
        )  # fmt: skip
        s.commit()
        assert _holds(s)[3:] == [(TUESDAY_10 + n * BLOCK, second.id) for n in range(2)]
    engine.dispose()
