"""One conversation turn: gate, safety checks, the clinic's agent, transcript, TwiML.

The parts that must never depend on a language model run here, before any agent:
the consent gate (asked again every turn), DTMF 0 and "person", voice opt-out, emergency
words, silence and low confidence (reprompted twice, then a person). Any failure of the
agent itself becomes a spoken apology and a person, never silence.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import redis
from sqlalchemy.exc import SQLAlchemyError
from twilio.twiml.voice_response import VoiceResponse

from callgateway.agent import intents
from callgateway.agent.protocol import Agent, Conversation, Heard, Reply
from callgateway.agent.rules import HELP, OPENING, RulesAgent
from callgateway.agent.tools import Tools
from callgateway.calls import escalation, journal
from callgateway.calls import log as call_log
from callgateway.calls import state as live_state
from callgateway.calls.twiml import apology_and_hangup, say
from callgateway.config import Clinic
from callgateway.db.models import Call
from callgateway.phone import ANONYMOUS
from callgateway.privacy.retention import retention_until
from callgateway.wiring import Services
from consent import cache as consent_cache
from consent.gate import Decision, decide
from consent.ledger import STATES

log = logging.getLogger(__name__)

TURN_PATH = "/twilio/voice/turn"
MAX_REPROMPTS = 2  # reprompt twice; the third miss in a row goes to a person
LOW_CONFIDENCE = 0.2
APOLOGY = "I'm sorry, I'm having trouble with our booking system right now."
LOST = "Sorry, we seem to have lost track of this call. Please call us again. Goodbye."
SILENCE = "Sorry, I didn't hear anything."
NOT_CAUGHT = "Sorry, I didn't catch that."
TROUBLE = "I'm sorry, I'm having trouble understanding."
_RULES = RulesAgent()


@dataclass(frozen=True)
class TurnEvent:
    call_sid: str
    speech: str = ""
    confidence: float | None = None
    digits: str = ""
    # From and To as Twilio sent them with this turn (E.164 or anonymous; "" unknown): the
    # consent key can then be read with the live state, before the state says whose it is.
    cli: str = ""
    called: str = ""


@dataclass(frozen=True)
class _Read:
    """The turn's first Redis round trip: the live state and, when the form named the
    caller and the clinic, their cached consent value (`consent_for` says for whom)."""

    state: dict[str, object] | None
    redis_ok: bool
    consent_for: tuple[str, str] | None = None
    consent_raw: bytes | None = None


def _read(services: Services, event: TurnEvent) -> _Read:
    clinic = services.directory.by_number(event.called) if event.called else None
    asked = (clinic.id, event.cli) if clinic and event.cli and event.cli != ANONYMOUS else None
    try:
        if asked is None:
            return _Read(live_state.load(services.redis, event.call_sid), True)
        pipe = services.redis.pipeline(transaction=False)
        pipe.get(live_state.key(event.call_sid))
        pipe.get(consent_cache.key(services.settings.subject_salt, *asked))
        raw_state, raw_consent = pipe.execute()
    except redis.RedisError:
        return _Read(None, False)
    return _Read(live_state.decode(raw_state), True, asked, raw_consent)


def _gate(services: Services, clinic: Clinic, call: Call, read: _Read) -> Decision:
    """The gate's decision for this turn, from the value read with the state when it was
    read for this call's clinic and caller; else `may()` the usual way."""
    if read.consent_for != (clinic.id, call.cli):
        return services.gate.may(clinic.id, call.cli, "ai_handling")
    state = consent_cache.state_from_raw(read.consent_raw)
    if state is None:  # a miss (or a value we don't read): the ledger answers
        return services.gate.may(
            clinic.id, call.cli, "ai_handling", missed=read.consent_raw is None
        )
    return decide(state)


def agent_for(services: Services, clinic: Clinic) -> Agent:
    if clinic.agent_kind == "openai":
        from callgateway.agent.openai_agent import OpenAIAgent

        return OpenAIAgent.for_clinic(services, clinic)
    return _RULES


def _new_state(cli: str, called: str, clinic: Clinic) -> dict[str, object]:
    return {
        "clinic_id": clinic.id,
        "called": called,
        # What a turn needs of the call-log row, so that a turn reads no database row.
        "call": {"cli": cli, "called": called, "clinic_id": clinic.id},
        "stage": "start",
        "misses": 0,
        "last_prompt": OPENING,
    }


def _cached_call(call_sid: str, state: dict[str, object] | None) -> Call | None:
    cached = state.get("call") if state else None
    if not isinstance(cached, dict):
        return None
    # A transient object, never added to a session: escalation reads these fields only.
    return Call(call_sid=call_sid, status="in-progress", **cached)


def _conversation(
    services: Services, call: Call, clinic: Clinic, state: dict[str, object]
) -> Conversation:
    now = services.clock()
    events: list[tuple[str, str, dict[str, object] | None]] = []

    def log_event(role: str, text: str, meta: dict[str, object] | None) -> None:
        events.append((role, text, meta))

    tools = Tools(
        services,
        clinic,
        call.call_sid,
        call.cli,
        str(state.get("called") or call.called),
        state,
        now,
        log_event,
    )
    return Conversation(services, clinic, call.call_sid, call.cli, state, now, tools, events)


def gather(services: Services, clinic: Clinic, resp: VoiceResponse, text: str) -> None:
    """Listen for speech or a key; silence also comes back to us (actionOnEmptyResult)."""
    hints = [t.name for t in clinic.appointment_types] + ["book", "move", "cancel", "person"]
    g = resp.gather(
        input="speech dtmf",
        speech_timeout="auto",
        hints=", ".join(hints),
        language=clinic.language,
        num_digits=1,
        action=services.url(TURN_PATH),
        method="POST",
        action_on_empty_result=True,
    )
    g.say(text, language=clinic.language)


_SAID = "@@SAID@@"  # stands in for the spoken text in the cached TwiML


def listen(services: Services, clinic: Clinic, text: str) -> str:
    """The whole answer of a turn that goes on listening: `text` inside the clinic's
    Gather. The same bytes as building it with `gather()`, which costs a turn a tenth of
    its time in ElementTree; the rest of the document depends on config alone."""
    if not text:  # ElementTree closes an empty <Say/> itself
        resp = VoiceResponse()
        gather(services, clinic, resp, text)
        return str(resp)
    key = ("listen", clinic.id)
    template = services.memo.get(key)
    if template is None:
        resp = VoiceResponse()
        gather(services, clinic, resp, _SAID)
        template = services.memo[key] = str(resp)
    return template.replace(_SAID, xml_escape(text), 1)


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
        live_state.save(pipe, call_sid, _new_state(str(row["cli"]), str(row["called"]), clinic))
        journal.add_call(pipe, {**row, "handled_by": "ai"}, opening)
    else:
        assert call is not None, "begin() needs the call's row or the call"
        call_sid = call.call_sid
        live_state.save(pipe, call_sid, _new_state(call.cli, call.called, clinic))
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
    live = live_state.encode(_new_state(cli, str(row["called"]), clinic))
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


def opening(services: Services, clinic: Clinic) -> str:
    """The first answer of an AI call: greeting, then the agent's question in a Gather.
    Config alone decides it, so it is built once per clinic and process."""
    key = ("opening", clinic.id)
    cached = services.memo.get(key)
    if cached is None:
        resp = VoiceResponse()
        say(resp, clinic.greeting, clinic)
        open_with_question(services, clinic, resp)
        cached = services.memo[key] = str(resp)
    return cached


def open_with_question(services: Services, clinic: Clinic, resp: VoiceResponse) -> None:
    """The agent's first question, inside a Gather."""
    gather(services, clinic, resp, OPENING)


def turn(services: Services, event: TurnEvent) -> str:
    """Answer one Gather result with TwiML. Never raises for anything a caller can do."""
    resp = VoiceResponse()
    read = _read(services, event)
    state, redis_ok = read.state, read.redis_ok
    call = _cached_call(event.call_sid, state)
    if call is None:
        # No live state (expired, Redis down, or a call we never greeted): the call log.
        journal.settle_or_log(services)
        try:
            with services.db.session() as session:
                call = call_log.get_call(session, event.call_sid)
        except SQLAlchemyError:
            log.error("database unavailable during a turn")
            return apology_and_hangup(APOLOGY + " Please call again shortly. Goodbye.")
        if call is None or call.status in call_log.TERMINAL:
            return apology_and_hangup(LOST)
    clinic = services.directory.by_id(call.clinic_id) if call.clinic_id else None
    if clinic is None:
        return apology_and_hangup(LOST)
    if not redis_ok:
        log.error("call state unavailable; caller goes to a person", extra={"clinic": clinic.id})
        escalation.to_person(services, call, clinic, resp, reason="state-unavailable")
        return str(resp)

    # Every AI turn asks the gate again: a STOP texted mid-call ends AI handling now.
    decision = _gate(services, clinic, call, read)
    if not decision.allowed:
        forget(services, call.call_sid)
        escalation.to_person(services, call, clinic, resp, reason=decision.reason)
        return str(resp)

    if not state or state.get("clinic_id") != clinic.id:
        state = _new_state(call.cli, call.called, clinic)  # expired or never started
    assert state is not None
    heard = Heard(event.speech.strip(), event.confidence, event.digits.strip())
    convo = _conversation(services, call, clinic, state)
    convo.log("caller", _caller_text(heard), _caller_meta(heard))

    reply = _safety(convo, heard)
    if reply is None:
        reply = _agent_reply(services, clinic, convo, heard)
    reply = _count_misses(convo, reply)
    convo.log("agent", reply.say, {"next": reply.next} if reply.next != "listen" else None)

    reply = _record(services, clinic, call.call_sid, convo, state, reply)
    if reply.next == "listen":
        return listen(services, clinic, reply.say)
    _render(services, call, clinic, resp, reply)
    return str(resp)


def _record(
    services: Services,
    clinic: Clinic,
    call_sid: str,
    convo: Conversation,
    state: dict[str, object],
    reply: Reply,
) -> Reply:
    """What this turn leaves behind, in one Redis transaction: the live state (kept while
    the AI listens, dropped otherwise), the transcript lines and the outcome, journaled.
    If Redis can't take it, the lines go straight to the database and a person answers."""
    keep = retention_until(services.config, clinic, "transcript", convo.now)
    pipe = services.redis.pipeline(transaction=True)
    if reply.next == "listen":
        live_state.save(pipe, call_sid, state)
    else:
        live_state.drop(pipe, call_sid)
    journal.add_turns(pipe, call_sid, journal.turns(convo.events, clinic.id, convo.now, keep))
    if reply.outcome:
        journal.add_note(pipe, call_sid, outcome=reply.outcome, handled_by="ai")
    try:
        pipe.execute()
    except redis.RedisError:
        _record_without_redis(services, clinic, call_sid, convo, reply, keep)
        if reply.next == "listen":
            return Reply(APOLOGY, next="person", reason="state-unavailable")
        return reply
    journal.appended(services)
    return reply


def _record_without_redis(
    services: Services,
    clinic: Clinic,
    call_sid: str,
    convo: Conversation,
    reply: Reply,
    keep: date,
) -> None:
    lines = journal.turns(convo.events, clinic.id, convo.now, keep)
    entries: list[tuple[str, dict[str, Any]]] = [("turns", {"call_sid": call_sid, **lines})]
    if reply.outcome:
        fields = {"outcome": reply.outcome, "handled_by": "ai"}
        entries.append(("note", {"call_sid": call_sid, "fields": fields}))
    try:
        journal.apply_now(services, entries)
    except SQLAlchemyError:
        log.error("transcript lost: neither Redis nor the database", extra={"clinic": clinic.id})


def forget(services: Services, call_sid: str) -> None:
    with contextlib.suppress(redis.RedisError):  # if not, it expires by itself
        live_state.drop(services.redis, call_sid)


def _caller_text(heard: Heard) -> str:
    if heard.digits:
        return f"[pressed {heard.digits}]"
    return heard.speech or "[silence]"


def _caller_meta(heard: Heard) -> dict[str, object] | None:
    return {"confidence": heard.confidence} if heard.confidence is not None else None


def _safety(convo: Conversation, heard: Heard) -> Reply | None:
    """Checks that run before (and whatever) the agent."""
    state = convo.state
    if heard.digits == "0":
        return Reply("", next="person", reason="dtmf-0")
    if heard.digits:
        return Reply(f"{NOT_CAUGHT} Press 0 at any time to speak to a person.", understood=False)
    if heard.silent:
        return Reply(f"{SILENCE} {state.get('last_prompt') or HELP}", understood=False)
    text = heard.speech
    if intents.is_emergency(text, convo.clinic.emergency.phrases):
        state["emergency_offer"] = True
        number = convo.services.config.emergency_number(convo.clinic)
        return Reply(
            f"If this is a medical emergency, please hang up now and dial {number}. "
            "If you would like to speak to a member of our team, say yes, or press 0.",
            outcome="emergency-advice",
        )
    if state.pop("emergency_offer", False) and intents.yes_no(text) == "yes":
        return Reply("", next="person", reason="emergency")
    if intents.wants_opt_out(text):
        if convo.anonymous:
            return Reply(
                "As your number is withheld I can't record that here, but a member of our "
                "team can help.",
                next="person",
                reason="opt-out-anonymous",
            )
        convo.tools.record_opt_out()
        return Reply(
            f"I've noted that you don't want automated calls or messages from "
            f"{convo.clinic.name}. I'll put you through to a member of our team.",
            next="person",
            reason="opted-out-by-voice",
            outcome="opted-out",
        )
    if intents.wants_person(text):
        return Reply("", next="person", reason="caller-request")
    if heard.confidence is not None and heard.confidence < LOW_CONFIDENCE:
        return Reply(f"{NOT_CAUGHT} {state.get('last_prompt') or HELP}", understood=False)
    return None


def _agent_reply(services: Services, clinic: Clinic, convo: Conversation, heard: Heard) -> Reply:
    try:
        reply = agent_for(services, clinic).respond(convo, heard)
    except Exception as exc:  # an agent bug must not leave the caller in silence
        log.error(
            "agent failed; caller goes to a person",
            extra={"clinic": clinic.id, "error": type(exc).__name__},
        )
        return Reply(APOLOGY, next="person", reason="agent-error")
    if reply.next == "listen" and not reply.say.strip():
        return Reply(APOLOGY, next="person", reason="agent-empty-reply")
    return reply


def _count_misses(convo: Conversation, reply: Reply) -> Reply:
    state = convo.state
    if reply.understood:
        state["misses"] = 0
        if reply.next == "listen":
            state["last_prompt"] = reply.say
        return reply
    misses = int(state.get("misses", 0) or 0) + 1
    state["misses"] = misses
    if misses > MAX_REPROMPTS:
        return Reply(TROUBLE, next="person", reason="not-understood")
    return reply


def _render(
    services: Services, call: Call, clinic: Clinic, resp: VoiceResponse, reply: Reply
) -> None:
    if reply.next == "listen":
        gather(services, clinic, resp, reply.say)
        return
    if reply.say:
        say(resp, reply.say, clinic)
    if reply.next == "person":
        escalation.to_person(services, call, clinic, resp, reason=reply.reason or "agent")
        return
    resp.hangup()
