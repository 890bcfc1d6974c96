"""Opening an AI conversation: the live state, the call's row and the first line, at once.

When the gate lets the AI answer, the call's live state (Redis), its call-log row and the
agent's opening line (both journaled for the call log) are written in one Redis
transaction, so nothing is half-written. The incoming-call webhook usually does the gate
and this in one round trip (`open_if_allowed`); every other case goes the long way
(`gate.may()`, then `begin()`). Channel-independent: the Gather and any other channel
open conversations the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import redis

from callgateway.agent.rules import OPENING
from callgateway.calls import journal
from callgateway.calls import state as live_state
from callgateway.config import Clinic
from callgateway.config.retention import retention_until
from callgateway.db.models import Call
from callgateway.phone import ANONYMOUS
from consent import cache as consent_cache
from consent.gate import Decision, decide
from consent.ledger import STATES

if TYPE_CHECKING:
    from callgateway.wiring import Services

log = logging.getLogger(__name__)


def new_state(cli: str, called: str, clinic: Clinic) -> dict[str, object]:
    return {
        "clinic_id": clinic.id,
        "called": called,
        # What a turn needs of the call-log row, so that a turn reads no database row.
        "call": {"cli": cli, "called": called, "clinic_id": clinic.id},
        "stage": "start",
        "misses": 0,
        "last_prompt": OPENING,
    }


def _opening_lines(services: Services, clinic: Clinic) -> dict[str, Any]:
    """The agent's first line as transcript row 0 (fixed: a retried webhook adds nothing)."""
    now = services.clock()
    keep = retention_until(services.config, clinic, "transcript", now)
    return journal.turns([("agent", OPENING, None)], clinic.id, now, keep, seq=0)


def begin(
    services: Services,
    clinic: Clinic,
    *,
    row: dict[str, Any] | None = None,
    call: Call | None = None,
) -> bool:
    """The gate allowed the AI: open the conversation in one Redis transaction (the live
    state, and in the journal the call's row or a note on it, and the opening line).

    ``row``: the call's log row, not yet written (the incoming webhook); ``call``: a call
    whose row exists (after the recording announcement). False when Redis can't take it:
    nothing was written, and the caller goes to a person.
    """
    opening = _opening_lines(services, clinic)
    pipe = services.redis.pipeline(transaction=True)
    if row is not None:  # no ORM object on this path: the row's values are enough
        call_sid = str(row["call_sid"])
        live_state.save(pipe, call_sid, new_state(str(row["cli"]), str(row["called"]), clinic))
        journal.add_call(pipe, {**row, "handled_by": "ai"}, opening)
    else:
        assert call is not None, "begin() needs the call's row or the call"
        call_sid = call.call_sid
        live_state.save(pipe, call_sid, new_state(call.cli, call.called, clinic))
        journal.add_note(pipe, call_sid, handled_by="ai")
        journal.add_turns(pipe, call_sid, opening)
    try:
        pipe.execute()
    except redis.RedisError:
        log.error("call state unavailable; caller goes to a person", extra={"clinic": clinic.id})
        return False
    journal.appended(services)
    return True


# One round trip for the common case of a new AI call: read the caller's cached consent
# state and, only when it is one of the states that allow the AI (ARGV[1], ARGV[3]), save the
# live state and journal the call's row (ARGV[5]) with that state's gate fields (ARGV[2],
# ARGV[4]). KEYS: consent cache key, live state key, journal stream. ARGV[6] live state,
# ARGV[7] its TTL. Returns the cached value (nil on a miss); the caller derives the same
# decision from it. The cache's value format is consent's: its snippet reads the state.
_OPEN_IF_ALLOWED = (
    consent_cache.LUA_STATE_OF_CACHED
    + """
local cached = redis.call('GET', KEYS[1])
if not cached then return false end
local state = consent_state_of_cached(cached)
local gate = nil
if state == ARGV[1] then gate = ARGV[2] elseif state == ARGV[3] then gate = ARGV[4] end
if gate then
  redis.call('SET', KEYS[2], ARGV[6], 'EX', tonumber(ARGV[7]))
  redis.call('XADD', KEYS[3], '*', 'k', 'call', 'd', ARGV[5], 'n', gate)
end
return cached
"""
)


@dataclass(frozen=True)
class Opened:
    """What `open_if_allowed` found: the gate's decision, or None when it could not decide
    in one trip; `missed` when that was because the cache had no entry (Redis answered)."""

    decision: Decision | None
    missed: bool = False


def open_if_allowed(services: Services, clinic: Clinic, row: dict[str, Any]) -> Opened:
    """The gate and `begin()` in one Redis call, for a caller whose consent state is cached.

    The decision is the gate's own (`gate.decide` on the cached state), and the script writes
    only for states the gate allows, with the gate fields of that state. No decision when it
    can't answer in one trip (a cache miss, a withheld number, Redis failing): the caller
    then asks `may()` and `begin()` the long way, which handle every case.
    """
    cli = str(row["cli"])
    if cli == ANONYMOUS or not cli:
        return Opened(None)
    script = services.memo.get("open_if_allowed")
    if script is None:
        script = services.memo["open_if_allowed"] = services.redis.register_script(_OPEN_IF_ALLOWED)
    call_sid = str(row["call_sid"])
    live = live_state.encode(new_state(cli, str(row["called"]), clinic))
    try:
        cached = script(
            keys=[
                consent_cache.key(services.settings.subject_salt, clinic.id, cli),
                live_state.key(call_sid),
                journal.STREAM,
            ],
            args=[
                *_allowing_notes(),
                journal.call_entry(row, _opening_lines(services, clinic)),
                live,
                live_state.TTL_SECONDS,
            ],
            client=services.redis,
        )
    except redis.RedisError:
        return Opened(None)
    state = consent_cache.state_from_raw(cached)
    if state is None:
        return Opened(None, missed=cached is None)
    decision = decide(state)
    if decision.allowed:
        journal.appended(services)
    return Opened(decision)


@cache
def _allowing_notes() -> tuple[str, ...]:
    """(state, its encoded gate note) for the two states that let the AI answer."""
    allowing = [s for s in STATES if decide(s).allowed]
    assert len(allowing) == 2, "the script takes exactly two allowing states"
    out: list[str] = []
    for state in allowing:
        decided = decide(state)
        note = {"gate_decision": "allow", "gate_reason": decided.reason, "handled_by": "ai"}
        out += [state, journal.encode(note)]
    return tuple(out)
