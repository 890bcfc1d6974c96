"""The path of a call: greeting -> recording announcement -> consent gate -> agent or person.

The agent is reached through the clinic's channel: `<Gather>` (calls/gather.py) or, for a
clinic with `relay:`, Twilio's ConversationRelay (calls/relay.py), opened only once the
gate has allowed the AI and the conversation's live state is written.

Each function takes the wired Services and a typed event, writes what must outlive the call,
and returns TwiML. No Flask in here: the webhooks translate.

When the gate lets the AI answer, the call's live state (Redis), its call-log row and the
agent's opening line (both journaled for the call log) are written in one Redis
transaction, so nothing is half-written. The incoming-call webhook usually does the gate
and this in one round trip (`open_if_allowed`); every other case goes the long way
(`gate.may()`, then `begin()`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import redis
from twilio.twiml.voice_response import VoiceResponse

from callgateway import metrics
from callgateway.agent.rules import OPENING
from callgateway.calls import escalation, gather, journal, once, relay
from callgateway.calls import log as call_log
from callgateway.calls import state as live_state
from callgateway.calls.twiml import apology_and_hangup, hang_up, say
from callgateway.config import Clinic
from callgateway.config.retention import retention_until
from callgateway.db.models import Call
from callgateway.events import IncomingCall, StatusEvent
from callgateway.phone import ANONYMOUS, mask
from consent import cache as consent_cache
from consent.gate import Decision, decide
from consent.ledger import STATES
from recordings import policy as recording_policy

if TYPE_CHECKING:
    from callgateway.wiring import Services

log = logging.getLogger(__name__)

RECORDING_START_PATH = "/twilio/voice/recording/start"
UNKNOWN_NUMBER = (
    "Sorry, this number is not connected to a clinic on our service. Please check the "
    "number and try again. Goodbye."
)


def incoming_call(services: Services, event: IncomingCall) -> str:
    now = services.clock()
    clinic = services.directory.by_number(event.called)
    start = call_log.CallStart(event.call_sid, event.cli, event.called, clinic, now)
    if clinic is None:
        with services.db.session() as session:
            call_log.start_call(
                session, services.config, start, outcome="unknown-number", handled_by="none"
            )
        log.warning("call to a number no clinic claims", extra={"to": mask(event.called)})
        return apology_and_hangup(UNKNOWN_NUMBER)

    resp = VoiceResponse()
    say(resp, clinic.greeting, clinic)
    if clinic.recording.enabled:
        with services.db.session() as session:
            call = call_log.start_call(session, services.config, start)
        if call.status in call_log.TERMINAL:
            return hang_up()  # a replay of a call that has ended starts nothing
        # Announcement first; recording starts only in the webhook Twilio calls after it.
        say(resp, clinic.recording.announcement, clinic)
        resp.redirect(services.url(RECORDING_START_PATH), method="POST")
        return str(resp)
    # Gate first. When the AI may answer, the call's row goes to the journal with the live
    # state: no database on this path. Usually one Redis call does both (a cached state).
    row = call_log.start_values(services.config, start)
    opened = open_if_allowed(services, clinic, row)
    if opened.ended:
        return hang_up()
    decision = opened.decision
    if decision is not None and decision.allowed:
        return _opening(services, clinic)
    if decision is None:  # the long way: a cache miss, a withheld number, Redis trouble
        if _has_ended(services, event.call_sid):
            return hang_up()
        decision = services.gate.may(clinic.id, event.cli, "ai_handling", missed=opened.missed)
        row.update(_gate_fields(decision))
        if decision.allowed and begin(services, clinic, row=row):
            return _opening(services, clinic)
    with services.db.session() as session:
        call = call_log.start_call(session, services.config, start, **_gate_fields(decision))
    if call.status in call_log.TERMINAL:
        return hang_up()
    _answer(services, call, clinic, resp, decision, opened=False)
    return str(resp)


def _has_ended(services: Services, call_sid: str) -> bool:
    try:
        return once.has_ended(services.redis, call_sid)
    except redis.RedisError:
        return False  # the call log's status answers on the paths that go on to read it


def call_status(services: Services, event: StatusEvent) -> None:
    """Complete the call-log row. Idempotent, and safe before the voice webhook arrived.
    A terminal status ends the call first: from then on no webhook of it does anything."""
    now = services.clock()
    if event.status in call_log.TERMINAL:
        try:
            once.mark_ended(services.redis, event.call_sid)
        except redis.RedisError:
            log.warning("call not marked ended: Redis unavailable; its status row will be")
    with call_log.session(services) as session:
        if call_log.find_call(session, event.call_sid) is None:
            clinic = services.directory.by_number(event.called)
            call_log.start_call(
                session,
                services.config,
                call_log.CallStart(event.call_sid, event.cli, event.called, clinic, now),
            )
        call_log.apply_status(session, event.call_sid, event.status, now, event.duration_seconds)


def after_announcement(services: Services, call_sid: str) -> str:
    """The announcement has played: only now may recording start. Then route the call.
    Step 0 of the call, taken once: a retried or concurrent copy gets the same TwiML and
    starts no second recording, and nothing happens once the call has ended."""
    return once.answer(
        services,
        call_sid,
        once.key(call_sid, once.ANNOUNCED),
        lambda: _after_announcement(services, call_sid),
        services.url(RECORDING_START_PATH),
    )


def _after_announcement(services: Services, call_sid: str) -> str:
    call = call_log.get_call(services, call_sid)
    clinic = services.directory.by_id(call.clinic_id) if call and call.clinic_id else None
    if call is None or clinic is None:
        return apology_and_hangup(UNKNOWN_NUMBER)
    if call.status in call_log.TERMINAL:
        return hang_up()
    recorded = recording_policy.start_recording(services.recordings, call, clinic)
    decision = services.gate.may(clinic.id, call.cli, "ai_handling")
    with call_log.session(services) as session:
        call_log.note(session, call_sid, recorded=recorded, **_gate_fields(decision))
    opened = decision.allowed and begin(services, clinic, call=call)
    resp = VoiceResponse()
    _answer(services, call, clinic, resp, decision, opened)
    return str(resp)


def _opening(services: Services, clinic: Clinic) -> str:
    """The first answer of an AI call that records nothing: the clinic's channel."""
    if clinic.uses_relay:
        return relay.opening(services, clinic)
    return gather.opening(services, clinic)


def _gate_fields(decision: Decision) -> dict[str, object]:
    return {
        "gate_decision": "allow" if decision.allowed else "deny",
        "gate_reason": decision.reason,
    }


def _answer(
    services: Services,
    call: Call,
    clinic: Clinic,
    resp: VoiceResponse,
    decision: Decision,
    opened: bool,
) -> None:
    """After the commit: the agent's first question, or a person. An opted-out caller (or an
    unreadable ledger, or no live state) never reaches the AI."""
    if opened and clinic.uses_relay:
        relay.connect(services, clinic, resp)  # the agent's question is the relay's greeting
        return
    if opened:
        gather.open_with_question(services, clinic, resp)
        return
    if not decision.allowed:
        metrics.CONSENT_DENIALS.labels(decision.reason).inc()
    reason = decision.reason if not decision.allowed else "state-unavailable"
    escalation.to_person(services, call, clinic, resp, reason=reason)


# -- opening an AI conversation: live state, call-log row and first line at once -----------


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
        live_state.save(
            pipe, call_sid, live_state.new_state(str(row["cli"]), str(row["called"]), clinic)
        )
        journal.add_call(pipe, {**row, "handled_by": "ai"}, opening)
    else:
        assert call is not None, "begin() needs the call's row or the call"
        call_sid = call.call_sid
        live_state.save(pipe, call_sid, live_state.new_state(call.cli, call.called, clinic))
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
# ARGV[4]). KEYS: consent cache key, live state key, journal stream, the call's ended mark.
# ARGV[6] live state, ARGV[7] its TTL, ARGV[8] what to return for an ended call. Returns
# the cached value (nil on a miss); the caller derives the same decision from it. A call
# that has ended is not opened again, and a live one not restarted (a replayed webhook).
# The cache's value format is consent's: its snippet reads the state.
_OPEN_IF_ALLOWED = (
    consent_cache.LUA_STATE_OF_CACHED
    + """
if redis.call('EXISTS', KEYS[4]) == 1 then return ARGV[8] end
local cached = redis.call('GET', KEYS[1])
if not cached then return false end
local state = consent_state_of_cached(cached)
local gate = nil
if state == ARGV[1] then gate = ARGV[2] elseif state == ARGV[3] then gate = ARGV[4] end
if gate and redis.call('SET', KEYS[2], ARGV[6], 'NX', 'EX', tonumber(ARGV[7])) then
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
    ended: bool = False  # the call has ended: nothing was written


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
    live = live_state.encode(live_state.new_state(cli, str(row["called"]), clinic))
    try:
        cached = script(
            keys=[
                consent_cache.key(services.settings.subject_salt, clinic.id, cli),
                live_state.key(call_sid),
                journal.STREAM,
                once.ended_key(call_sid),
            ],
            args=[
                *_allowing_notes(),
                journal.call_entry(row, _opening_lines(services, clinic)),
                live,
                live_state.TTL_SECONDS,
                once.ENDED,
            ],
            client=services.redis,
        )
    except redis.RedisError:
        return Opened(None)
    if cached == once.ENDED:
        return Opened(None, ended=True)
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
