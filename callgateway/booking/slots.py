"""Free appointment slots: the clinic's hours x appointment types x what is already taken.

All arithmetic is in UTC; the clinic's wall clock (zoneinfo) only sets the bounds of each
opening range. So a 45-minute appointment lasts 45 real minutes on a DST day, a local time
that does not exist is never offered twice, and the night the clocks go back is not lost.
Appointments start on 15-minute blocks; each block they cover is one `SlotHold` row, and
the database's unique key on (clinic, block) is what forbids a double booking.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import repeat
from typing import Any

from sqlalchemy import DateTime, TypeDecorator, bindparam, select, type_coerce
from sqlalchemy.orm import Session

from callgateway.booking.dates import When
from callgateway.config import AppointmentType, Clinic
from callgateway.db.models import SlotHold

BLOCK = timedelta(minutes=15)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = _EPOCH.replace(tzinfo=None)


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


def block_number(at: datetime) -> int | None:
    """The 15-minute block that starts at `at`, counted from 2000-01-01 UTC; None when `at`
    is not on the grid (so it can never equal a block start)."""
    number, rest = divmod(at.astimezone(UTC) - _EPOCH, BLOCK)
    return None if rest else number


def block_start(number: int) -> datetime:
    return _EPOCH + number * BLOCK


class _AsStored(TypeDecorator[Any]):
    """The hold column as the driver returns it (ISO text on SQLite, an aware datetime on
    PostgreSQL), without the per-row DateTime/UTCDateTime processing: a search reads up to
    a month of holds and needs only their block numbers (`_stored_number`)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def result_processor(self, dialect: Any, coltype: Any) -> None:
        return None


# What is held in a window, read once per search (a full month is ~500 rows).
_HELD = select(type_coerce(SlotHold.block_start, _AsStored())).where(
    SlotHold.clinic_id == bindparam("clinic_id"),
    SlotHold.block_start >= bindparam("start"),
    SlotHold.block_start < bindparam("end"),
)


def taken_block_numbers(
    session: Session, clinic_id: str, start: datetime, end: datetime
) -> set[int]:
    """The held blocks from `start` (its block) to `end`, as block numbers."""
    # On the session's connection: a Core read, without the ORM's row loading.
    params = {"clinic_id": clinic_id, "start": floor_block(start), "end": end}
    values = [row[0] for row in session.connection().execute(_HELD, params).fetchall()]
    # Every search reads the same holds again: each stored value's block number is kept
    # (a pure function of the value; ~1 µs to work out, ~50 ns to look up).
    known = _STORED_NUMBERS
    numbers: set[object] = set(map(known.get, values, repeat(_UNSEEN)))
    if _UNSEEN in numbers:
        if len(known) > _STORED_NUMBERS_MAX:
            known.clear()
        numbers = set()
        for value in values:
            number = known.get(value, _UNSEEN)
            if number is _UNSEEN:
                number = known[value] = _stored_number(value)
            numbers.add(number)
    numbers.discard(None)  # a hold off the 15-minute grid is no block's start
    return numbers  # type: ignore[return-value]


_UNSEEN = object()
_STORED_NUMBERS: dict[str | datetime, int | None] = {}
_STORED_NUMBERS_MAX = 20_000  # a few MB; a busy clinic holds ~40 blocks a day


def _stored_number(value: str | datetime) -> int | None:
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    # SQLite keeps the UTC time without an offset (models.UTCDateTime).
    number, rest = divmod(at - (_NAIVE_EPOCH if at.tzinfo is None else _EPOCH), BLOCK)
    return None if rest else number


def taken_blocks(session: Session, clinic_id: str, start: datetime, end: datetime) -> set[datetime]:
    return {block_start(n) for n in taken_block_numbers(session, clinic_id, start, end)}


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
    busy = {n for n in map(block_number, taken) if n is not None}
    return free_slots_among(clinic, appointment_type, when, now, busy, limit)


def free_slots_among(
    clinic: Clinic,
    appointment_type: AppointmentType,
    when: When,
    now: datetime,
    busy: Set[int],
    limit: int = 200,
) -> list[Slot]:
    """`free_slots` with what is taken given as block numbers (`taken_block_numbers`).

    Candidate starts are walked as block numbers: a month of a full diary is a few hundred
    set lookups, not a few thousand aware-datetime comparisons."""
    tz = clinic.tz
    duration = timedelta(minutes=appointment_type.minutes)
    span = -(-duration // BLOCK)  # the blocks `blocks(start, start + duration)` yields
    not_before = now.astimezone(UTC) + timedelta(minutes=clinic.min_lead_minutes)
    closed = set(clinic.closed_dates)
    hours: dict[int, list[tuple[time, time]]] = {}
    type_id = appointment_type.id
    out: list[Slot] = []
    for day in when.days:
        if day in closed:
            continue
        weekday = day.weekday()
        ranges = hours.get(weekday)
        if ranges is None:
            ranges = hours[weekday] = clinic.opening_hours(weekday)
        for opens, closes in ranges:
            close_at = _utc(day, closes, tz)
            first = _utc(day, max(opens, when.earliest or opens), tz)
            last_start = close_at - duration
            if when.latest is not None:
                last_start = min(last_start, _utc(day, when.latest, tz) - BLOCK)
            first_number = -((_EPOCH - max(first, not_before)) // BLOCK)  # ceil_block
            last_number = (last_start - _EPOCH) // BLOCK
            for number in range(first_number, last_number + 1):
                if number in busy or (
                    span > 1 and not busy.isdisjoint(range(number + 1, number + span))
                ):
                    continue
                at = _EPOCH + number * BLOCK
                out.append(Slot(at, at + duration, type_id))
                if len(out) >= limit:
                    return out
    return out


def _utc(day: date, at: time, tz: tzinfo) -> datetime:
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


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
