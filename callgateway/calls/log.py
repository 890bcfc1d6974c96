"""The call log: one row per CallSid, completed idempotently by status callbacks.

The AI path writes its rows and transcript lines through the call journal (calls/journal.py)
so that its webhooks answer without a database transaction. That is this module's business
alone: `session()` and `get_call()` apply whatever is journaled before they read, so every
reader sees a complete row, and nothing outside calls/ knows the journal exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callgateway.calls import journal
from callgateway.config import Clinic, Config
from callgateway.config.retention import retention_until
from callgateway.db.insert import insert_ignore
from callgateway.db.models import Call

if TYPE_CHECKING:
    from callgateway.wiring import Services

TERMINAL = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
_RANK = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3, "answered": 3}
# A terminal status with no outcome of its own: what the log should say about the call.
_MISSED_OUTCOME = {
    "busy": "missed",
    "no-answer": "missed",
    "failed": "failed",
    "canceled": "missed",
}


def rank(status: str) -> int:
    return 9 if status in TERMINAL else _RANK.get(status, 0)


@dataclass(frozen=True)
class CallStart:
    call_sid: str
    cli: str  # E.164 or 'anonymous'
    called: str
    clinic: Clinic | None
    at: datetime
    direction: str = "inbound"
    purpose: str = "patient"


def start_values(config: Config, start: CallStart, **initial: object) -> dict[str, object]:
    """The call's complete log row, as first written (``initial``: decisions already made)."""
    return {
        "call_sid": start.call_sid,
        "clinic_id": start.clinic.id if start.clinic else None,
        "direction": start.direction,
        "purpose": start.purpose,
        "cli": start.cli,
        "called": start.called,
        "started_at": start.at,
        "status": "ringing",
        "outcome": None,
        "handled_by": "none",
        "recorded": False,
        "gate_decision": None,
        "gate_reason": None,
        "data_category": "call-metadata",
        "retention_until": retention_until(config, start.clinic, "call-metadata", start.at),
        **initial,
    }


def start_call(session: Session, config: Config, start: CallStart, **initial: object) -> Call:
    """Insert the call's row, or find it when Twilio retries (or a callback came first).

    `initial` sets decisions already made (gate decision, handled_by) in the same INSERT, so
    the incoming-call webhook writes once. On a retry the first delivery's row stands.
    """
    values = start_values(config, start, **initial)
    if insert_ignore(session, Call, values, ["call_sid"]):
        # What we just wrote is the row: no read-back on the hot path.
        return Call(**values)
    return session.scalars(select(Call).where(Call.call_sid == start.call_sid)).one()


class CallLogUnavailable(RuntimeError):
    """The call log could not be brought up to date (Redis or the database is down)."""


@contextmanager
def session(services: Services) -> Iterator[Session]:
    """A unit of work on the call log, opened after every journaled write is applied.

    If the journal cannot be applied now (Redis or the database down) the session still
    opens on what is stored: callers go on with what they can read, and the drainer
    applies the rest later.
    """
    journal.settle_or_log(services)
    with services.db.session() as s:
        yield s


def bring_up_to_date(services: Services) -> int:
    """Apply every journaled write now (returns how many), or raise CallLogUnavailable: for
    readers that must see everything or do nothing (an export, an erasure, an operator
    before a backup)."""
    try:
        return journal.settle(services)
    except journal.JournalUnavailable as exc:
        raise CallLogUnavailable(str(exc)) from None


def get_call(services: Services, call_sid: str) -> Call | None:
    """The call's row, complete."""
    with session(services) as s:
        return find_call(s, call_sid)


def find_call(session: Session, call_sid: str) -> Call | None:
    """The call's row within a unit of work opened by `session()` (or by a path that
    writes rows only directly, never through the journal)."""
    return session.scalars(select(Call).where(Call.call_sid == call_sid)).one_or_none()


def start_background_writer(services: Services) -> None:
    """The web process applies journaled writes in the background (one thread each)."""
    journal.start_drainer(services)


def pending_writes(services: Services) -> int:
    """Journaled writes not yet applied. Raises CallLogUnavailable."""
    try:
        return journal.pending(services)
    except journal.JournalUnavailable as exc:
        raise CallLogUnavailable(str(exc)) from None


def note(session: Session, call_sid: str, **fields: object) -> None:
    """Record a decision about the call (outcome, handled_by, gate decision, recorded)."""
    table = Call.__table__
    session.connection().execute(
        table.update().where(table.c.call_sid == call_sid).values(**fields)
    )


def apply_status(
    session: Session,
    call_sid: str,
    status: str,
    at: datetime,
    duration_seconds: int | None,
) -> bool:
    """Move the call forward to `status`; never backwards. True when the row changed.

    Twilio may deliver callbacks late, twice or out of order: a terminal status wins over
    a late `ringing`, and the first terminal status is final.
    """
    call = session.scalars(select(Call).where(Call.call_sid == call_sid)).one_or_none()
    if call is None:
        return False
    if rank(status) <= rank(call.status):
        return False
    fields: dict[str, object] = {"status": status}
    if status == "in-progress" and call.answered_at is None:
        fields["answered_at"] = at
    if status in TERMINAL:
        duration = duration_seconds if duration_seconds is not None else 0
        fields["duration_seconds"] = duration
        fields["ended_at"] = max(at, call.started_at + timedelta(seconds=duration))
        if call.outcome is None:
            fields["outcome"] = _MISSED_OUTCOME.get(status, "completed")
    # Guarded update: a concurrent callback that already made the call terminal wins.
    result = session.execute(
        update(Call).where(Call.call_sid == call_sid, Call.status == call.status).values(**fields)
    )
    return bool(result.rowcount)
