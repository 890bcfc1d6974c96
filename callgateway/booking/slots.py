"""Free appointment slots: the clinic's hours x appointment types x what is already taken.

All arithmetic is in UTC; the clinic's wall clock (zoneinfo) only sets the bounds of each
opening range. So a 45-minute appointment lasts 45 real minutes on a DST day, a local time
that does not exist is never offered twice, and the night the clocks go back is not lost.
Appointments start on 15-minute blocks; each block they cover is one `SlotHold` row, and
the database's unique key on (clinic, block) is what forbids a double booking.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from callgateway.booking.dates import When
from callgateway.config import AppointmentType, Clinic
from callgateway.db.models import SlotHold

BLOCK = timedelta(minutes=15)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Slot:
    start: datetime  # aware, UTC
    end: datetime
    type_id: str


def floor_block(at: datetime) -> datetime:
    at = at.astimezone(UTC)
    return at - ((at - _EPOCH) % BLOCK)


def ceil_block(at: datetime) -> datetime:
    floor = floor_block(at)
    return floor if floor == at.astimezone(UTC) else floor + BLOCK


def blocks(start: datetime, end: datetime) -> list[datetime]:
    """The 15-minute blocks an appointment from `start` to `end` occupies."""
    out, at = [], floor_block(start)
    while at < end:
        out.append(at)
        at += BLOCK
    return out


def local_to_utc(clinic: Clinic, day: date, at: time) -> datetime:
    """A wall-clock time at the clinic as UTC. A time skipped by DST maps forward by the
    jump (zoneinfo's fold=0 rule); a repeated one takes its first occurrence."""
    return datetime.combine(day, at, tzinfo=clinic.tz).astimezone(UTC)


def is_closed_day(clinic: Clinic, day: date) -> bool:
    return day in clinic.closed_dates or not clinic.opening_hours(day.weekday())


def taken_blocks(session: Session, clinic_id: str, start: datetime, end: datetime) -> set[datetime]:
    rows = session.scalars(
        select(SlotHold.block_start).where(
            SlotHold.clinic_id == clinic_id,
            SlotHold.block_start >= floor_block(start),
            SlotHold.block_start < end,
        )
    )
    return set(rows)


def day_bounds(clinic: Clinic, first: date, last: date) -> tuple[datetime, datetime]:
    """UTC instants covering the local days first..last (for loading what is taken)."""
    return (
        local_to_utc(clinic, first, time(0, 0)),
        local_to_utc(clinic, last + timedelta(days=1), time(0, 0)),
    )


def free_slots(
    clinic: Clinic,
    appointment_type: AppointmentType,
    when: When,
    now: datetime,
    taken: Iterable[datetime],
    limit: int = 200,
) -> list[Slot]:
    """Free slots in the window, earliest first; none before now + the clinic's lead time."""
    duration = timedelta(minutes=appointment_type.minutes)
    not_before = now.astimezone(UTC) + timedelta(minutes=clinic.min_lead_minutes)
    busy = {b.astimezone(UTC) for b in taken}
    out: list[Slot] = []
    for day in when.days:
        if day in clinic.closed_dates:
            continue
        for opens, closes in clinic.opening_hours(day.weekday()):
            close_at = local_to_utc(clinic, day, closes)
            first = local_to_utc(clinic, day, max(opens, when.earliest or opens))
            last_start = close_at - duration
            if when.latest is not None:
                last_start = min(last_start, local_to_utc(clinic, day, when.latest) - BLOCK)
            at = ceil_block(max(first, not_before))
            while at <= last_start:
                end = at + duration
                if not any(b in busy for b in blocks(at, end)):
                    out.append(Slot(at, end, appointment_type.id))
                    if len(out) >= limit:
                        return out
                at += BLOCK
    return out


def pick_offers(
    clinic: Clinic,
    slots: list[Slot],
    when: When | None,
    count: int = 3,
    spacing: timedelta = timedelta(hours=1),
) -> list[Slot]:
    """A few distinct choices, as a receptionist would say them: the nearest to an asked-for
    time first (on the first day that has room), otherwise the earliest; then others at
    least `spacing` apart so that the caller hears a real choice."""
    ordered = list(slots)
    if when is not None and when.at is not None:
        wanted = when.at.hour * 60 + when.at.minute

        def distance(slot: Slot) -> tuple[date, int]:
            local = slot.start.astimezone(clinic.tz)
            return local.date(), abs(local.hour * 60 + local.minute - wanted)

        ordered.sort(key=distance)
    chosen: list[Slot] = []
    for slot in ordered:
        if all(abs(slot.start - c.start) >= spacing for c in chosen):
            chosen.append(slot)
        if len(chosen) == count:
            break
    return chosen
