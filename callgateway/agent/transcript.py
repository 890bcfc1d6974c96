"""Transcript rows: what the caller said, what the agent answered, which tools it used.

Sequence numbers come from an atomic Redis counter per call, so two turns racing (a Twilio
retry, a benchmark) never collide; rows are inserted idempotently by (call_sid, seq).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import redis
from sqlalchemy import func, select

from callgateway.config import Clinic
from callgateway.db.models import CallTurn
from callgateway.dbutil import insert_ignore
from callgateway.retention import retention_until
from callgateway.wiring import Services

SEQ_TTL_SECONDS = 4 * 3600

Event = tuple[str, str, dict[str, Any] | None]


def _stored_max(services: Services, call_sid: str) -> int:
    with services.db.session() as session:
        stored = session.scalar(select(func.max(CallTurn.seq)).where(CallTurn.call_sid == call_sid))
    return int(stored or 0)


def _next_seqs(services: Services, call_sid: str, count: int) -> list[int]:
    key = f"call:{call_sid}:seq"
    try:
        last = int(services.redis.incrby(key, count))
        if last == count:
            # A fresh counter (first turn, or the key expired): continue after what is stored.
            stored = _stored_max(services, call_sid)
            if stored:
                last = int(services.redis.incrby(key, stored))
        services.redis.expire(key, SEQ_TTL_SECONDS)
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
    with services.db.session() as session:
        for seq, (role, text, meta) in zip(seqs, events, strict=True):
            insert_ignore(
                session,
                CallTurn,
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
                },
                ["call_sid", "seq"],
            )
