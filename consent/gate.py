"""The gate: may we do `action` for this number at this clinic, now?

Reads a Redis cache written through on every event, falls back to the database, and
denies when neither answers: fail closed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import redis
from sqlalchemy.exc import SQLAlchemyError

from callgateway.phone import ANONYMOUS, subject_hash
from callgateway.wiring import Services
from consent import ledger

log = logging.getLogger(__name__)

Action = Literal["ai_handling", "automated_sms", "reminder_sms", "reminder_call", "checkin_call"]
ACTIONS: tuple[str, ...] = (
    "ai_handling",
    "automated_sms",
    "reminder_sms",
    "reminder_call",
    "checkin_call",
)
# Cache entries expire so that a write-through lost to a Redis blip heals by itself.
CACHE_TTL_SECONDS = 300


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    state: str | None = None

    def __bool__(self) -> bool:
        return self.allowed


def _cache_key(clinic_id: str, phone: str) -> str:
    return f"consent:{clinic_id}:{phone}"


def cache_put(services: Services, clinic_id: str, phone: str, state: str) -> bool:
    try:
        services.redis.set(_cache_key(clinic_id, phone), state, ex=CACHE_TTL_SECONDS)
        return True
    except redis.RedisError:
        log.warning("consent cache write failed", extra={"clinic": clinic_id})
        return False


def state_of(services: Services, clinic_id: str, phone: str) -> str | None:
    """Current state, or None when neither the cache nor the database can be read."""
    try:
        cached = services.redis.get(_cache_key(clinic_id, phone))
        if cached is not None:
            return cached.decode()
        redis_ok = True
    except redis.RedisError:
        redis_ok = False
    try:
        with services.db.session() as session:
            state = ledger.current_state(
                session, clinic_id, phone, subject_hash(phone, services.settings.subject_salt)
            )
    except SQLAlchemyError:
        log.error(
            "consent state unreadable: cache and database both failed",
            extra={"clinic": clinic_id, "redis": "up" if redis_ok else "down"},
        )
        return None
    if redis_ok:
        cache_put(services, clinic_id, phone, state)
    return state


def may(services: Services, clinic_id: str, phone: str, action: str) -> Decision:
    if action not in ACTIONS:
        raise ValueError(f"unknown gated action {action!r}")
    if phone == ANONYMOUS:
        # No number to look up and none to reach: the AI may talk, nothing is ever sent.
        if action == "ai_handling":
            return Decision(True, "anonymous-caller")
        return Decision(False, "anonymous-caller")
    state = state_of(services, clinic_id, phone)
    if state is None:
        return Decision(False, "consent-unavailable")
    if state == ledger.OPTED_OUT:
        return Decision(False, "opted-out", state)
    return Decision(True, "consented" if state == ledger.OPTED_IN else "no-objection", state)
