"""The call journal: the AI path's call-log writes, taken off the webhook and applied in order.

The two webhooks of a conversation (the incoming call and each Gather turn) must answer in
a millisecond or so; a database transaction per request costs several. So they append what
they decided (the call's row, notes on it, transcript lines) to a Redis stream inside the
same MULTI that saves the call's live state: one round trip, nothing half-written. The
journal is applied to the database in stream order, in batches, by whoever gets there
first: the drainer thread of every web process (``start_drainer``), and ``settle()``, which
every other path that reads or updates a call row (status callbacks, escalation, rights,
console-bound jobs) calls first, so they always see a complete row.

Exactly once: the id of the last applied entry is kept in the database (``journal_marks``)
and advanced in the same transaction that applies the entries; a locked row update
serialises appliers. Applied entries are then trimmed from the stream.

Redis durability: entries live in Redis for milliseconds; run Redis with AOF
(``appendfsync everysec``) so a crash loses at most a second of them, and even then the
status callback writes the call's row (``flow.call_status``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import redis
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DataError, IntegrityError

from callgateway.db.insert import insert_ignore_all
from callgateway.db.models import Call, CallTurn, JournalMark

if TYPE_CHECKING:
    from callgateway.wiring import Services

log = logging.getLogger(__name__)

STREAM = "journal:calls"
MARK = "calls"
_START = {"name": MARK, "last_id": "0-0"}  # before every stream id
BATCH = 500
# The fields a note may set: decisions about the call, never its identity or timing.
NOTE_FIELDS = frozenset({"outcome", "handled_by", "recorded", "gate_decision", "gate_reason"})
_DATETIMES = frozenset({"started_at", "answered_at", "ended_at", "created_at"})


class JournalUnavailable(RuntimeError):
    """Redis or the database could not be reached to apply the journal."""


# -- appending (inside the caller's Redis pipeline) ---------------------------------------


def _encode(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not journal-serialisable: {type(value).__name__}")


def encode(data: dict[str, Any]) -> str:
    return json.dumps(data, default=_encode)


def add(pipe: redis.client.Pipeline, kind: str, data: dict[str, Any]) -> None:
    pipe.xadd(STREAM, {"k": kind, "d": encode(data)})


def call_entry(row: dict[str, Any], opening: dict[str, Any] | None = None) -> str:
    """The encoded data of a "call" entry: the call-log row, with its first lines if any.
    Its entry may carry an "n" field too: note fields (JSON) merged into the row on apply."""
    return encode({"row": row, "turns": opening})


def turns(
    lines: Iterable[tuple[str, str, dict[str, Any] | None]],
    clinic_id: str,
    at: datetime,
    retention_until: date,
    seq: int | None = None,
) -> dict[str, Any]:
    """Transcript lines, numbered on apply after what is stored (or from ``seq``: the
    opening line is 0, so a retried incoming webhook cannot add a second one)."""
    return {
        "clinic_id": clinic_id,
        "lines": [list(line) for line in lines],
        "at": at,
        "retention_until": retention_until,
        "seq": seq,
    }


def add_call(
    pipe: redis.client.Pipeline, row: dict[str, Any], opening: dict[str, Any] | None = None
) -> None:
    """The call-log row (``calls.start_values``), with its first transcript lines if any;
    a retried webhook's copy is ignored."""
    pipe.xadd(STREAM, {"k": "call", "d": call_entry(row, opening)})


def add_note(pipe: redis.client.Pipeline, call_sid: str, **fields: object) -> None:
    unknown = set(fields) - NOTE_FIELDS
    if unknown:
        raise ValueError(f"not a note field: {sorted(unknown)}")
    add(pipe, "note", {"call_sid": call_sid, "fields": fields})


def add_turns(pipe: redis.client.Pipeline, call_sid: str, lines: dict[str, Any]) -> None:
    add(pipe, "turns", {"call_sid": call_sid, **lines})


def add_heard(pipe: redis.client.Pipeline, call_sid: str, said: str, heard: str) -> None:
    """The caller interrupted the agent's last line `said`: the transcript keeps only
    `heard`, what was spoken before the interruption (ConversationRelay's barge-in)."""
    add(pipe, "heard", {"call_sid": call_sid, "said": said, "heard": heard})


def appended(services: Services) -> None:
    """After a pipeline with journal entries ran: in inline mode (tests, single-process
    tools) apply them now, so the next read sees them; else the drainer will. Either way a
    database that is down leaves them queued, and the webhook answers regardless."""
    if services.settings.journal == "inline":
        settle_or_log(services)


# -- applying ------------------------------------------------------------------------------


def pending(services: Services) -> int:
    """Entries not yet applied (and not yet trimmed). Raises JournalUnavailable."""
    try:
        return int(services.redis.xlen(STREAM))
    except redis.RedisError as exc:
        raise JournalUnavailable(type(exc).__name__) from None


def settle(services: Services) -> int:
    """Apply every entry appended before this call. Returns how many this call applied.

    Raises JournalUnavailable when Redis or the database cannot be reached; what was
    not applied stays in the stream for the next try.
    """
    try:
        newest = services.redis.xrevrange(STREAM, count=1)
    except redis.RedisError as exc:
        raise JournalUnavailable(type(exc).__name__) from None
    if not newest:
        return 0
    end = _sid(newest[0][0])
    applied = 0
    while True:
        count, last = _apply_batch(services, end)
        applied += count
        # Nothing left before `end` (or it went missing from the stream): settled.
        if count == 0 or last is None or _key(last) >= _key(end):
            return applied


def settle_or_log(services: Services) -> None:
    """settle(), for a path that must go on regardless: it then works with what is stored,
    and the drainer applies the rest when Redis and the database answer again."""
    try:
        settle(services)
    except JournalUnavailable as exc:
        log.error("call journal not applied", extra={"error": str(exc)})


def _apply_batch(services: Services, end: str) -> tuple[int, str | None]:
    """One transaction: lock the mark, read entries after it up to `end`, apply, advance."""
    try:
        with services.db.session() as session:
            conn = session.connection()
            marks = JournalMark.__table__
            # An UPDATE first: it takes the row lock (PostgreSQL) or the write lock (SQLite)
            # before the mark is read, so two appliers never apply the same entries.
            lock = update(marks).where(marks.c.name == MARK).values(last_id=marks.c.last_id)
            if not conn.execute(lock).rowcount:  # no mark yet (a database emptied by hand)
                insert_ignore_all(conn, JournalMark, [_START], ("name",))
                conn.execute(lock)
            mark = conn.execute(select(marks.c.last_id).where(marks.c.name == MARK)).scalar_one()
            if _key(mark) >= _key(end):
                return 0, mark
            try:
                entries = services.redis.xrange(STREAM, min="(" + mark, max=end, count=BATCH)
            except redis.RedisError as exc:
                raise JournalUnavailable(type(exc).__name__) from None
            if not entries:
                return 0, mark
            decoded = [(_sid(i), fields) for i, fields in entries]
            try:
                with conn.begin_nested():
                    _apply(conn, decoded)
            except (IntegrityError, DataError):
                _apply_one_by_one(conn, decoded)
            last = _sid(entries[-1][0])
            conn.execute(update(marks).where(marks.c.name == MARK).values(last_id=last))
    except JournalUnavailable:
        raise
    except Exception as exc:  # the database: entries stay in the stream for the next try
        raise JournalUnavailable(type(exc).__name__) from exc
    # Trim what is applied (MINID keeps ids >= its argument): XLEN 0 means settled. If this
    # fails, the next trim takes them; the mark already says they are applied.
    with contextlib.suppress(redis.RedisError):
        services.redis.xtrim(STREAM, minid=_successor(last))
    return len(entries), last


def _apply_one_by_one(conn: Connection, entries: list[tuple[str, dict[bytes, bytes]]]) -> None:
    """The batch held an entry the database refuses (a value too long for its column, say):
    apply each on its own, so that one entry is skipped and logged instead of stalling the
    journal for every call after it."""
    for entry in entries:
        try:
            with conn.begin_nested():
                _apply(conn, [entry])
        except (IntegrityError, DataError) as exc:
            log.error(
                "journal entry refused by the database; skipped",
                extra={"entry": entry[0], "error": type(exc).__name__},
            )


def _apply(conn: Connection, entries: list[tuple[str, dict[bytes, bytes]]]) -> None:
    """Rows first, then notes and transcript lines in stream order: per call, the order the
    webhooks appended them in (a note never lands before its row)."""
    rows: list[dict[str, Any]] = []
    notes: list[tuple[str, dict[str, Any]]] = []
    turns: list[dict[str, Any]] = []
    # (how many turn batches precede it, the entry): an interruption amends a line that an
    # earlier batch wrote, and no line that a later one writes.
    heard: list[tuple[int, dict[str, Any]]] = []
    for entry_id, fields in entries:
        try:
            kind = fields[b"k"].decode()
            data = json.loads(fields[b"d"])
            if kind == "call":
                row = _decoded(data["row"])
                if b"n" in fields:  # the gate's fields, decided in Redis (open_if_allowed)
                    row.update(_note_fields(json.loads(fields[b"n"])))
                if data.get("turns"):
                    turns.append({"call_sid": row["call_sid"], **data["turns"]})
                rows.append(row)
            elif kind == "note":
                notes.append((str(data["call_sid"]), _note_fields(data["fields"])))
            elif kind == "turns":
                turns.append(_checked_turns(data))
            elif kind == "heard":
                if not all(isinstance(data[k], str) for k in ("call_sid", "said", "heard")):
                    raise TypeError("heard")
                heard.append((len(turns), data))
            else:
                raise ValueError(kind)
        except (KeyError, TypeError, ValueError, UnicodeDecodeError):
            # Never written by this code; skipping it must not stall every entry after it.
            log.error("journal entry unreadable; skipped", extra={"entry": entry_id})
    if rows:
        insert_ignore_all(conn, Call, rows, ("call_sid",))
    table = Call.__table__
    for call_sid, values in notes:
        if values:
            conn.execute(table.update().where(table.c.call_sid == call_sid).values(**values))
    done = 0
    for before, amend in heard:
        if before > done:
            _apply_turns(conn, turns[done:before])
            done = before
        _apply_heard(conn, amend)
    if turns[done:]:
        _apply_turns(conn, turns[done:])


def _apply_heard(conn: Connection, data: dict[str, Any]) -> None:
    """The newest agent line of the call that says `said` now says only what was heard."""
    table = CallTurn.__table__
    found = conn.execute(
        select(table.c.id, table.c.meta)
        .where(
            table.c.call_sid == data["call_sid"],
            table.c.role == "agent",
            table.c.text == data["said"],
        )
        .order_by(table.c.seq.desc())
        .limit(1)
    ).first()
    if found is None:
        return
    meta = {**(found.meta or {}), "interrupted": True}
    conn.execute(table.update().where(table.c.id == found.id).values(text=data["heard"], meta=meta))


def apply_now(services: Services, pipe_entries: list[tuple[str, dict[str, Any]]]) -> None:
    """Redis is down: write these entries straight to the database, in order, so nothing a
    caller said is lost. Raises what the database raises."""
    encoded = [
        (f"0-{n}", {b"k": kind.encode(), b"d": json.dumps(data, default=_encode).encode()})
        for n, (kind, data) in enumerate(pipe_entries)
    ]
    with services.db.session() as session:
        _apply(session.connection(), encoded)


def _apply_turns(conn: Connection, batches: list[dict[str, Any]]) -> None:
    turns = CallTurn.__table__
    sids = sorted({b["call_sid"] for b in batches if b.get("seq") is None})
    stored: dict[str, int] = {}
    if sids:
        query = (
            select(turns.c.call_sid, func.max(turns.c.seq))
            .where(turns.c.call_sid.in_(sids))
            .group_by(turns.c.call_sid)
        )
        stored = {sid: int(top) for sid, top in conn.execute(query)}
    rows: list[dict[str, Any]] = []
    for batch in batches:
        sid = batch["call_sid"]
        fixed = batch.get("seq")
        at = datetime.fromisoformat(batch["at"])
        keep = date.fromisoformat(batch["retention_until"])
        for n, (role, text, meta) in enumerate(batch["lines"]):
            seq = int(fixed) + n if fixed is not None else stored.get(sid, 0) + 1
            stored[sid] = max(stored.get(sid, 0), seq)
            rows.append(
                {
                    "call_sid": sid,
                    "clinic_id": batch["clinic_id"],
                    "seq": seq,
                    "role": role,
                    "text": text,
                    "meta": meta,
                    "created_at": at,
                    "data_category": "transcript",
                    "retention_until": keep,
                }
            )
    insert_ignore_all(conn, CallTurn, rows, ("call_sid", "seq"))


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for name in _DATETIMES & out.keys():
        if out[name] is not None:
            out[name] = datetime.fromisoformat(out[name])
    out["retention_until"] = date.fromisoformat(out["retention_until"])
    return out


def _checked_turns(data: dict[str, Any]) -> dict[str, Any]:
    datetime.fromisoformat(data["at"])
    date.fromisoformat(data["retention_until"])
    if not isinstance(data["lines"], list) or not isinstance(data["call_sid"], str):
        raise TypeError("turns")
    return data


def _note_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if k in NOTE_FIELDS}


# -- stream ids ----------------------------------------------------------------------------


def _sid(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _successor(entry_id: str) -> str:
    ms, seq = _key(entry_id)
    return f"{ms}-{seq + 1}"


# -- the drainer ---------------------------------------------------------------------------


class Drainer:
    """A daemon thread applying the journal every `interval` seconds while there is any."""

    def __init__(self, services: Services, interval: float = 0.2) -> None:
        self.services = services
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="journal-drainer", daemon=True)
        self._failing = False

    def start(self) -> Drainer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.drain_once()

    def drain_once(self) -> int:
        try:
            if pending(self.services) == 0:
                return 0
            applied = settle(self.services)
        except JournalUnavailable as exc:
            if not self._failing:  # once per outage, not five times a second
                log.error("journal not applied; will retry", extra={"error": str(exc)})
            self._failing = True
            return 0
        if self._failing:
            log.info("journal applying again")
        self._failing = False
        return applied


_drainer_lock = threading.Lock()
_drainers: dict[tuple[int, int], Drainer] = {}


def start_drainer(services: Services) -> Drainer | None:
    """One drainer per Services in this process (gunicorn workers each get their own)."""
    if services.settings.journal != "background":
        return None
    # Keyed by pid too: a thread started before a fork (gunicorn --preload) does not exist
    # in the child, which must start its own.
    key = (os.getpid(), id(services))
    with _drainer_lock:
        found = _drainers.get(key)
        if found is None:
            found = _drainers[key] = Drainer(services).start()
        return found
