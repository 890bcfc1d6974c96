"""The gate: may we do `action` for this number at this clinic, now?

Every AI turn and every outbound action asks `may()`. Webhooks read the Redis cache
(written through after every event's commit, so a STOP counts from the very next webhook)
and fall back to the database on a miss or when Redis is down. Jobs that send read the
ledger itself (`ledger_only`). Either denies when nothing answers: fail closed. It never
raises for an infrastructure failure.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from callgateway.phone import ANONYMOUS, subject_hash
from callgateway.wiring import Services
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


def read_snapshot(services: Services, clinic_id: str, phone: str) -> ledger.Snapshot:
    """The ledger's state for the number, from the database. Raises when it cannot be read."""
    with services.db.engine.connect() as conn:  # a read: no unit of work to commit
        return ledger.snapshot(
            conn, clinic_id, phone, subject_hash(phone, services.settings.subject_salt)
        )


def state_of(services: Services, clinic_id: str, phone: str, missed: bool = False) -> str | None:
    """Current state, or None when neither the cache nor the database can be read.
    `missed`: the caller has just read the cache and found nothing; go to the database."""
    if missed:
        cached, redis_up = None, True
    else:
        try:
            cached = cache.get(services, clinic_id, phone)
            redis_up = True
        except cache.CacheUnavailable:
            cached, redis_up = None, False
    if cached is not None:
        return cached
    snap = _from_ledger(services, clinic_id, phone, "miss" if redis_up else "down")
    if snap is None:
        return None
    if redis_up:
        cache.put(services, clinic_id, phone, snap)
    return snap.state


def _from_ledger(
    services: Services, clinic_id: str, phone: str, cache_was: str
) -> ledger.Snapshot | None:
    """The ledger's snapshot, or None (logged) when the database can't be read."""
    try:
        return read_snapshot(services, clinic_id, phone)
    except Exception as exc:  # any failure to read is a deny, never a crash or an allow
        log.error(
            "consent state unreadable (cache %s, database failed): denying",
            cache_was,
            extra={"clinic": clinic_id, "error": type(exc).__name__},
        )
        return None


def may(
    services: Services,
    clinic_id: str,
    phone: str,
    action: str,
    missed: bool = False,
    *,
    ledger_only: bool = False,
) -> Decision:
    """Allow or deny `action` for `phone` (E.164 or 'anonymous') at `clinic_id`. `missed`:
    the caller's own cache read (conversation.open_if_allowed) just missed. `ledger_only`:
    skip the cache, for the jobs that send: they can spare a query, and a STOP whose cache
    write-through a Redis blip lost must not let even one message through before the
    entry expires."""
    if action not in ACTIONS:
        raise ValueError(f"unknown gated action {action!r}")
    if services.directory.by_id(clinic_id) is None:
        return Decision(False, UNKNOWN_CLINIC)
    if not phone or phone == ANONYMOUS:
        # No number to look up and none to reach: the AI may talk, nothing is ever sent.
        return Decision(action == "ai_handling", ANONYMOUS_CALLER)
    if ledger_only:
        snap = _from_ledger(services, clinic_id, phone, "skipped")
        return decide(snap.state if snap else None)
    return decide(state_of(services, clinic_id, phone, missed))


def decide(state: str | None) -> Decision:
    """The decision for a number whose ledger state is `state` (None: it can't be read).
    The same for every action: only anonymous callers differ, and they have no state."""
    if state is None:
        return Decision(False, UNAVAILABLE)
    if state == ledger.OPTED_OUT:
        return Decision(False, OPTED_OUT, state)
    return Decision(True, CONSENTED if state == ledger.OPTED_IN else NO_OBJECTION, state)
