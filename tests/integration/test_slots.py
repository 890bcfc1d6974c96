"""Taken slots read from the database: the holds of one clinic inside a window (SQLite).
Free slots themselves are tests/unit/test_slots.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from callgateway.booking.slots import BLOCK


def test_taken_block_numbers_read_the_holds_of_the_clinic_and_window(sqlite_url: str) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from callgateway.booking import slots
    from callgateway.db.models import Appointment, SlotHold

    start = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    engine = create_engine(sqlite_url)
    with Session(engine) as s:
        holds = [
            ("c", start - BLOCK),  # before the window
            ("c", start),
            ("c", start + 3 * BLOCK),
            ("c", start + 5 * BLOCK + timedelta(microseconds=1)),  # off the grid
            ("other", start + 4 * BLOCK),
            ("c", start + 8 * BLOCK),  # the window's end is exclusive
        ]
        for i, (clinic_id, at) in enumerate(holds):
            a = Appointment(
                ref=f"REF{i:03d}", clinic_id=clinic_id, phone="+447700900123", type_id="short",
                starts_at=at, ends_at=at + BLOCK, status="booked", source="ai", created_at=start,
                updated_at=start, data_category="appointment", retention_until=date(2030, 1, 1),
            )  # fmt: skip
            s.add(a)
            s.flush()
            s.add(SlotHold(clinic_id=clinic_id, block_start=at, appointment_id=a.id))
        s.commit()
        expected = {start, start + 3 * BLOCK}
        for _ in range(2):  # the second read uses the remembered numbers
            numbers = slots.taken_block_numbers(
                s, "c", start + timedelta(minutes=7), start + 8 * BLOCK
            )
            assert {slots.block_start(n) for n in numbers} == expected
            assert slots.taken_blocks(s, "c", start, start + 8 * BLOCK) == expected
        slots._STORED_NUMBERS.clear()
        assert slots.taken_blocks(s, "c", start, start + 8 * BLOCK) == expected
    engine.dispose()
