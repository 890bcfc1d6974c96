"""Append-only consent events per (clinic, number); the newest one is the current state.

Events are never updated or deleted here (only retention and erasure remove them). The
unique source id (MessageSid, "<CallSid>:opt_out", "staff:<user>:<request>") is what makes
a retried webhook a no-op: the database refuses the second insert, nobody checks first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, Select, bindparam, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from callgateway.db.insert import insert_ignore
from callgateway.db.models import ConsentEvent, Suppression

NONE = "none"
OPTED_OUT = "opted_out"
OPTED_IN = "opted_in"
STATES = (NONE, OPTED_OUT, OPTED_IN)
CHANNELS = ("sms", "voice", "staff")


@dataclass(frozen=True)
class NewEvent:
    clinic_id: str
    phone: str
    state: str  # OPTED_OUT | OPTED_IN
    channel: str
    source_id: str  # MessageSid, "<CallSid>:opt_out" or "staff:<user id>:<request id>"
    at: datetime
    retention_until: date


@dataclass(frozen=True)
class Snapshot:
    """The state of one (clinic, number) and the ledger position it was read at.

    `version` is the id of the newest event (0 when there is none): ids only grow, so the
    cache can refuse to replace a newer snapshot with an older one.
    """

    state: str
    version: int
    since: datetime | None
    suppressed: bool = False


def append(session: Session, event: NewEvent) -> bool:
    """Add the event unless its source id was seen before. True when it was new."""
    if event.state not in (OPTED_OUT, OPTED_IN):
        raise ValueError(f"unknown consent state {event.state!r}")
    if event.channel not in CHANNELS:
        raise ValueError(f"unknown consent channel {event.channel!r}")
    values = {
        "clinic_id": event.clinic_id,
        "phone": event.phone,
        "state": event.state,
        "channel": event.channel,
        "source_id": event.source_id,
        "created_at": event.at,
        "data_category": "consent",
        "retention_until": event.retention_until,
    }
    return insert_ignore(session, ConsentEvent, values, ["source_id"])


def snapshot(conn: Connection | Session, clinic_id: str, phone: str, phone_hash: str) -> Snapshot:
    """The current state with its version, in one statement of index lookups (clinic, phone,
    id) whatever the ledger's size; an erased number with no newer event stays opted out by
    its suppression. Core, not ORM: the voice webhook asks this for every uncached caller."""
    row = conn.execute(
        _snapshot_query(), {"clinic": clinic_id, "phone": phone, "hash": phone_hash}
    ).one()
    if row.id is not None:
        return Snapshot(row.state, row.id, row.created_at)
    if row.suppressed_at is not None:
        return Snapshot(OPTED_OUT, 0, row.suppressed_at, suppressed=True)
    return Snapshot(NONE, 0, None)


@cache
def _snapshot_query() -> Select[Any]:
    events, suppressions = ConsentEvent.__table__, Suppression.__table__

    def newest(column: ColumnElement[Any]) -> ScalarSelect[Any]:
        return (
            select(column)
            .where(events.c.clinic_id == bindparam("clinic"), events.c.phone == bindparam("phone"))
            .order_by(events.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )

    suppressed_at = (
        select(suppressions.c.created_at)
        .where(
            suppressions.c.clinic_id == bindparam("clinic"),
            suppressions.c.phone_hash == bindparam("hash"),
        )
        .limit(1)
        .scalar_subquery()
    )
    return select(
        newest(events.c.id).label("id"),
        newest(events.c.state).label("state"),
        newest(events.c.created_at).label("created_at"),
        suppressed_at.label("suppressed_at"),
    )


def current_state(session: Session, clinic_id: str, phone: str, phone_hash: str) -> str:
    """The state from the ledger; an erased-but-suppressed number stays opted out."""
    return snapshot(session, clinic_id, phone, phone_hash).state


def history(session: Session, clinic_id: str | None, phone: str) -> list[ConsentEvent]:
    """Every event for the number, oldest first (at one clinic, or at all of them)."""
    stmt = select(ConsentEvent).where(ConsentEvent.phone == phone)
    if clinic_id is not None:
        stmt = stmt.where(ConsentEvent.clinic_id == clinic_id)
    return list(session.scalars(stmt.order_by(ConsentEvent.id)))


def latest_per_number(session: Session, clinic_id: str) -> dict[str, ConsentEvent]:
    """The newest event of every number with one at this clinic (the console's list)."""
    newest = (
        select(func.max(ConsentEvent.id))
        .where(ConsentEvent.clinic_id == clinic_id)
        .group_by(ConsentEvent.phone)
    )
    rows = session.scalars(select(ConsentEvent).where(ConsentEvent.id.in_(newest)))
    return {row.phone: row for row in rows}
