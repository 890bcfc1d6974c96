"""The gate: may we do `action` for this number at this clinic, now?

Every AI turn and every outbound action asks `Gate.may()` (as `services.gate.may(...)`).
Webhooks read the Redis cache (written through after every event's commit, so a STOP counts
from the very next webhook) and fall back to the database on a miss or when Redis is down.
Jobs that send read the ledger itself (`ledger_only`). Either denies when nothing answers:
fail closed. It never raises for an infrastructure failure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import redis
from sqlalchemy import Engine

from callgateway.config import Clinic
from callgateway.phone import ANONYMOUS, subject_hash
from consent import cache, ledger

log = logging.getLogger(__name__)

Action = Literal["ai_handling", "automated_sms", "reminder_sms", "reminder_call", "checkin_call"]
ACTIONS: tuple[str, ...] = (
    "ai_handling",
    "automated_sms",
    "reminder_sms",
    "reminder_call",
    "checkin_call",
)

# Reasons, as they appear in the call log's gate_reason and in logs.
OPTED_OUT = "opted-out"
CONSENTED = "consented"
NO_OBJECTION = "no-objection"
ANONYMOUS_CALLER = "anonymous-caller"
UNAVAILABLE = "consent-unavailable"
UNKNOWN_CLINIC = "unknown-clinic"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    state: str | None = None

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True)
class Gate:
    """The gate over one wiring's Redis and database. `services.gate` builds one from the
    fields wired at the time of asking (tests swap the Redis client after bootstrap), so
    hold it for a request at most."""

    redis: redis.Redis
    engine: Engine  # the ledger's database; the gate only reads it
    subject_salt: str
    clinic_by_id: Callable[[str], Clinic | None]
    # The process's memo, where the cache registers its write script once.
    memo: dict[Any, Any]

    def may(
        self,
        clinic_id: str,
        phone: str,
        action: str,
        missed: bool = False,
        *,
        ledger_only: bool = False,
    ) -> Decision:
        """Allow or deny `action` for `phone` (E.164 or 'anonymous') at `clinic_id`.
        `missed`: the caller's own cache read (conversation.open_if_allowed) just missed.
        `ledger_only`: skip the cache, for the jobs that send: they can spare a query, and
        a STOP whose cache write-through a Redis blip lost must not let even one message
        through before the entry expires."""
        if action not in ACTIONS:
            raise ValueError(f"unknown gated action {action!r}")
        if self.clinic_by_id(clinic_id) is None:
            return Decision(False, UNKNOWN_CLINIC)
        if not phone or phone == ANONYMOUS:
            # No number to look up and none to reach: the AI may talk, nothing is ever sent.
            return Decision(action == "ai_handling", ANONYMOUS_CALLER)
        if ledger_only:
            snap = self._from_ledger(clinic_id, phone, "skipped")
            return decide(snap.state if snap else None)
        return decide(self.state_of(clinic_id, phone, missed))

    def state_of(self, clinic_id: str, phone: str, missed: bool = False) -> str | None:
        """Current state, or None when neither the cache nor the database can be read.
        `missed`: the caller has just read the cache and found nothing; go to the database."""
        if missed:
            cached, redis_up = None, True
        else:
            try:
                cached = cache.get(self.redis, self.subject_salt, clinic_id, phone)
                redis_up = True
            except cache.CacheUnavailable:
                cached, redis_up = None, False
        if cached is not None:
            return cached
        snap = self._from_ledger(clinic_id, phone, "miss" if redis_up else "down")
        if snap is None:
            return None
        if redis_up:
            cache.put(self.redis, self.subject_salt, clinic_id, phone, snap, memo=self.memo)
        return snap.state

    def read_snapshot(self, clinic_id: str, phone: str) -> ledger.Snapshot:
        """The ledger's state for the number, from the database. Raises when it cannot be
        read."""
        with self.engine.connect() as conn:  # a read: no unit of work to commit
            return ledger.snapshot(conn, clinic_id, phone, subject_hash(phone, self.subject_salt))

    def forget(self, clinic_id: str, phone: str) -> bool:
        """Drop the number's cached state, after erasure or a retention sweep removed its
        ledger rows; the next question refills it from the database. False when Redis
        failed (the entry then expires by itself)."""
        return cache.forget(self.redis, self.subject_salt, clinic_id, phone)

    def _from_ledger(self, clinic_id: str, phone: str, cache_was: str) -> ledger.Snapshot | None:
        """The ledger's snapshot, or None (logged) when the database can't be read."""
        try:
            return self.read_snapshot(clinic_id, phone)
        except Exception as exc:  # any failure to read is a deny, never a crash or an allow
            log.error(
                "consent state unreadable (cache %s, database failed): denying",
                cache_was,
                extra={"clinic": clinic_id, "error": type(exc).__name__},
            )
            return None


def decide(state: str | None) -> Decision:
    """The decision for a number whose ledger state is `state` (None: it can't be read).
    The same for every action: only anonymous callers differ, and they have no state."""
    if state is None:
        return Decision(False, UNAVAILABLE)
    if state == ledger.OPTED_OUT:
        return Decision(False, OPTED_OUT, state)
    return Decision(True, CONSENTED if state == ledger.OPTED_IN else NO_OBJECTION, state)
