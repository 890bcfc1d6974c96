"""Free slots from hours x types x what is taken, in the clinic's timezone (DST included)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from callgateway.booking.dates import When, say_when
from callgateway.booking.slots import (
    BLOCK,
    blocks,
    ceil_block,
    free_slots,
    is_closed_day,
    local_to_utc,
    pick_offers,
)
from callgateway.config import AppointmentType, Clinic

INITIAL = AppointmentType(id="initial", name="Initial assessment", minutes=45)
SHORT = AppointmentType(id="short", name="Short", minutes=15)


def clinic(tz: str = "Europe/London", **kw: object) -> Clinic:
    data: dict[str, object] = {
        "id": "c",
        "name": "C",
        "region": "uk",
        "timezone": tz,
        "numbers": ["+442071234567"],
        "greeting": "Hi",
        "hours": {d: "08:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")},
        "appointment_types": [INITIAL.model_dump(), SHORT.model_dump()],
        "min_lead_minutes": 60,
    }
    data.update(kw)
    return Clinic.model_validate(data)


def day(d: date, **kw: object) -> When:
    return When(d, d, named_day=True, **kw)  # type: ignore[arg-type]


MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_slots_start_on_quarter_hours_and_end_by_closing() -> None:
    slots = free_slots(clinic(), INITIAL, day(date(2026, 11, 24)), MONDAY, set())
    assert slots[0].start == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert slots[-1].end == datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
    assert {s.start.minute for s in slots} == {0, 15, 30, 45}
    assert all(s.end - s.start == timedelta(minutes=45) for s in slots)


def test_taken_blocks_remove_every_overlapping_start() -> None:
    taken = set(
        blocks(
            datetime(2026, 11, 24, 10, 0, tzinfo=UTC), datetime(2026, 11, 24, 10, 45, tzinfo=UTC)
        )
    )
    starts = {
        s.start.time()
        for s in free_slots(clinic(), INITIAL, day(date(2026, 11, 24)), MONDAY, taken)
    }
    assert time(9, 15) in starts and time(10, 45) in starts
    assert not starts & {time(9, 30), time(9, 45), time(10, 0), time(10, 15), time(10, 30)}


def test_lead_time_hides_the_next_hour() -> None:
    slots = free_slots(clinic(), SHORT, day(date(2026, 11, 23)), MONDAY, set())
    assert slots[0].start == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    later = MONDAY + timedelta(minutes=7)
    assert free_slots(clinic(), SHORT, day(date(2026, 11, 23)), later, set())[0].start.minute == 15


def test_closed_dates_and_days_without_hours_have_no_slots() -> None:
    c = clinic(closed_dates=["2026-12-25"])
    assert free_slots(c, SHORT, day(date(2026, 12, 25)), MONDAY, set()) == []
    assert free_slots(c, SHORT, day(date(2026, 11, 28)), MONDAY, set()) == []  # Saturday
    assert is_closed_day(c, date(2026, 12, 25)) and is_closed_day(c, date(2026, 11, 29))
    assert not is_closed_day(c, date(2026, 12, 24))


def test_a_part_of_day_window_limits_the_start_not_the_end() -> None:
    afternoon = day(date(2026, 11, 24), earliest=time(12, 0), latest=time(17, 0))
    slots = free_slots(clinic(), INITIAL, afternoon, MONDAY, set())
    assert slots[0].start.time() == time(12, 0)
    assert slots[-1].start.time() == time(16, 45)


def test_split_hours_give_no_slot_across_the_lunch_break() -> None:
    c = clinic("Europe/Berlin", hours={"mon": "08:00-12:00,14:00-18:00"})
    slots = free_slots(c, INITIAL, day(date(2026, 11, 30)), MONDAY, set())
    local = [s.start.astimezone(c.tz).time() for s in slots]
    assert time(11, 15) in local and time(11, 30) not in local and time(14, 0) in local


def test_on_the_spring_dst_day_wall_clock_hours_hold_and_durations_are_real() -> None:
    # London, Sunday 29 March 2026: 01:00 GMT jumps to 02:00 BST.
    c = clinic(hours={"sun": "00:00-04:00"}, min_lead_minutes=0)
    sunday = date(2026, 3, 29)
    slots = free_slots(c, INITIAL, day(sunday), datetime(2026, 3, 1, tzinfo=UTC), set())
    local_starts = [s.start.astimezone(c.tz).strftime("%H:%M") for s in slots]
    assert "01:30" not in local_starts  # a time that does not exist is never offered
    assert local_starts[0] == "00:00" and local_starts[-1] == "03:15"
    # 00:00 GMT to 04:00 BST is three real hours: 10 starts of 45 minutes on 15-minute steps.
    assert len(slots) == 10
    assert all(s.end - s.start == timedelta(minutes=45) for s in slots)
    assert len({s.start for s in slots}) == len(slots)


def test_on_the_autumn_dst_day_the_repeated_hour_is_bookable_twice() -> None:
    # London, Sunday 25 October 2026: 02:00 BST falls back to 01:00 GMT.
    c = clinic(hours={"sun": "00:00-03:00"}, min_lead_minutes=0)
    slots = free_slots(c, SHORT, day(date(2026, 10, 25)), datetime(2026, 10, 1, tzinfo=UTC), set())
    assert len(slots) == 16  # four real hours between 00:00 BST and 03:00 GMT
    ones = [s for s in slots if s.start.astimezone(c.tz).hour == 1]
    assert len(ones) == 8 and {s.start.astimezone(c.tz).fold for s in ones} == {0, 1}


def test_the_monday_after_a_dst_change_is_offered_in_local_time() -> None:
    c = clinic("America/New_York", hours={"mon": "09:00-17:00"})
    slots = free_slots(
        c, INITIAL, day(date(2026, 11, 2)), datetime(2026, 10, 30, tzinfo=UTC), set()
    )
    assert slots[0].start == datetime(2026, 11, 2, 14, 0, tzinfo=UTC)  # 09:00 EST
    before = free_slots(
        c, INITIAL, day(date(2026, 10, 26)), datetime(2026, 10, 20, tzinfo=UTC), set()
    )
    assert before[0].start == datetime(2026, 10, 26, 13, 0, tzinfo=UTC)  # 09:00 EDT
    assert say_when(slots[0].start, c.tz, "en-US") == "Monday, November 2 at 9 am"


@pytest.mark.parametrize("tz", ["Asia/Kathmandu", "America/St_Johns", "Australia/Adelaide"])
def test_odd_offsets_still_start_on_local_quarter_hours(tz: str) -> None:
    c = clinic(tz)
    slots = free_slots(c, SHORT, day(date(2026, 11, 24)), MONDAY - timedelta(days=2), set())
    assert slots[0].start.astimezone(c.tz).time() == time(8, 0)
    assert {s.start.astimezone(c.tz).minute for s in slots} == {0, 15, 30, 45}


def test_offers_prefer_the_asked_time_then_spread_out() -> None:
    c = clinic()
    tuesday = day(date(2026, 11, 24), at=time(15, 0))
    slots = free_slots(c, INITIAL, tuesday, MONDAY, set())
    offers = pick_offers(c, slots, tuesday)
    assert [o.start.time() for o in offers] == [time(15, 0), time(14, 0), time(16, 0)]
    plain = pick_offers(c, slots, day(date(2026, 11, 24)))
    assert [o.start.time() for o in plain] == [time(8, 0), time(9, 0), time(10, 0)]


def test_block_helpers() -> None:
    at = datetime(2026, 11, 24, 10, 7, tzinfo=UTC)
    assert ceil_block(at) == datetime(2026, 11, 24, 10, 15, tzinfo=UTC)
    assert ceil_block(at.replace(minute=15)) == at.replace(minute=15)
    assert blocks(at.replace(minute=0), at.replace(minute=0) + 2 * BLOCK) == [
        at.replace(minute=0),
        at.replace(minute=15),
    ]
    assert local_to_utc(clinic(), date(2026, 7, 1), time(9, 0)) == datetime(
        2026, 7, 1, 8, 0, tzinfo=UTC
    )


# --- The fast paths give the same answers ------------------------------------------------


def _walk(
    c: Clinic, kind: AppointmentType, when: When, now: datetime, taken: set[datetime], limit: int
) -> list[tuple[datetime, datetime]]:
    """The slot search written plainly (aware datetimes, block by block): the oracle."""
    duration = timedelta(minutes=kind.minutes)
    not_before = now + timedelta(minutes=c.min_lead_minutes)
    out: list[tuple[datetime, datetime]] = []
    for d in when.days:
        if d in c.closed_dates:
            continue
        for opens, closes in c.opening_hours(d.weekday()):
            last_start = local_to_utc(c, d, closes) - duration
            if when.latest is not None:
                last_start = min(last_start, local_to_utc(c, d, when.latest) - BLOCK)
            at = ceil_block(max(local_to_utc(c, d, max(opens, when.earliest or opens)), not_before))
            while at <= last_start:
                if not set(blocks(at, at + duration)) & taken:
                    out.append((at, at + duration))
                    if len(out) >= limit:
                        return out
                at += BLOCK
    return out


@pytest.mark.parametrize("seed", range(6))
def test_block_number_search_matches_the_plain_walk(seed: int) -> None:
    import random

    rng = random.Random(seed)
    zones = ["Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"]
    hours = ["08:00-18:00", "08:00-12:00,14:00-18:00", "00:00-04:00", "01:00-03:30"]
    found = 0
    for _ in range(40):
        c = clinic(
            rng.choice(zones),
            hours={d: rng.choice(hours) for d in ("mon", "tue", "sat", "sun")},
            min_lead_minutes=rng.choice([0, 7, 60]),
            closed_dates=[str(date(2026, 10, 26))],
        )
        kind = AppointmentType(id="k", name="K", minutes=rng.choice([5, 15, 20, 45, 90]))
        first = rng.choice([date(2026, 3, 29), date(2026, 10, 25), date(2026, 11, 1)])
        when = When(
            first,
            first + timedelta(days=rng.choice([0, 1, 9])),
            earliest=rng.choice([None, time(1, 10), time(12)]),
            latest=rng.choice([None, time(2, 30), time(17)]),
            named_day=True,
        )
        now = datetime.combine(first, time(rng.randint(0, 23), rng.choice([0, 7])), tzinfo=UTC)
        grid = [datetime.combine(first, time(0), tzinfo=UTC) + n * BLOCK for n in range(-96, 1200)]
        taken = set(rng.sample(grid, rng.choice([0, 100, 900])))
        taken.add(now + timedelta(minutes=1, microseconds=1))  # off the grid: holds nothing
        limit = rng.choice([3, 48, 500])
        got = free_slots(c, kind, when, now, taken, limit)
        assert [(s.start, s.end) for s in got] == _walk(c, kind, when, now, taken, limit)
        assert all(s.start.tzinfo is UTC for s in got)
        found += bool(got)
    assert found > 5


def test_block_numbers() -> None:
    from callgateway.booking.slots import block_number, block_start

    at = datetime(2026, 11, 24, 10, 15, tzinfo=UTC)
    assert block_start(block_number(at) or 0) == at
    assert block_number(at.astimezone(ZoneInfo("Asia/Kathmandu"))) == block_number(at)
    assert block_number(at + timedelta(minutes=1)) is None
    assert block_number(at + timedelta(microseconds=1)) is None
