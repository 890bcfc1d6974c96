"""Transcript rows: what the caller said, what the agent answered, which tools it used.

Sequence numbers come from an atomic Redis counter per call, so two turns racing (a Twilio
retry, a benchmark) never collide; rows are inserted idempotently by (call_sid, seq).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import redis
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from callgateway.config import Clinic
from callgateway.db.models import CallTurn
from callgateway.retention import retention_until
from callgateway.wiring import Services

SEQ_TTL_SECONDS = 4 * 3600

Event = tuple[str, str, dict[str, Any] | None]


def opening_row(
    services: Services, clinic: Clinic, call_sid: str, text: str, now: datetime
) -> dict[str, Any]:
    """The agent's first line as row 0: written with the call's own INSERT, so the incoming
    webhook commits once; caller turns number from 1 (the Redis counter's first value)."""
    return {
        "call_sid": call_sid,
        "clinic_id": clinic.id,
        "seq": 0,
        "role": "agent",
        "text": text,
        "meta": None,
        "created_at": now,
        "data_category": "transcript",
        "retention_until": retention_until(services.config, clinic, "transcript", now),
    }


def _stored_max(services: Services, call_sid: str) -> int:
    with services.db.session() as session:
        stored = session.scalar(select(func.max(CallTurn.seq)).where(CallTurn.call_sid == call_sid))
    return int(stored or 0)


def _next_seqs(services: Services, call_sid: str, count: int) -> list[int]:
    key = f"call:{call_sid}:seq"
    try:
        pipe = services.redis.pipeline(transaction=False)
        pipe.incrby(key, count)
        pipe.expire(key, SEQ_TTL_SECONDS)
        last = int(pipe.execute()[0])
        if last == count:
            # A fresh counter (first turn, or the key expired): continue after what is stored.
            stored = _stored_max(services, call_sid)
            if stored:
                last = int(services.redis.incrby(key, stored))
    except redis.RedisError:
        last = _stored_max(services, call_sid) + count
    return list(range(last - count + 1, last + 1))


def write(
    services: Services, clinic: Clinic, call_sid: str, events: list[Event], now: datetime
) -> None:
    if not events:
        return
    seqs = _next_seqs(services, call_sid, len(events))
    keep = retention_until(services.config, clinic, "transcript", now)
    rows = [
        {
            "call_sid": call_sid,
            "clinic_id": clinic.id,
            "seq": seq,
            "role": role,
            "text": text,
            "meta": meta,
            "created_at": now,
            "data_category": "transcript",
            "retention_until": keep,
        }
        for seq, (role, text, meta) in zip(seqs, events, strict=True)
    ]
    with services.db.session() as session:
        # INSERT … ON CONFLICT DO NOTHING: a retried turn adds nothing. executemany form, so
        # the compiled statement is cached rather than built per row count.
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(CallTurn).on_conflict_do_nothing(index_elements=["call_sid", "seq"])
        session.execute(stmt, rows)
