"""The turn engine: (call, what was heard) -> the reply and its effects. No channel in here.

The parts that must never depend on a language model run here, before any agent:
the consent gate (asked again every turn), DTMF 0 and "person", voice opt-out, emergency
words, silence and low confidence (reprompted twice, then a person). Any failure of the
agent itself becomes a spoken apology and a person, never silence. What a turn leaves
behind (live state, transcript lines, outcome) is written in one Redis transaction.

A channel turns its input into a `Turn` and renders the `TurnResult` its own way: the
Gather webhooks (calls/gather.py) call `take_turn` for the whole reply; a streaming channel
(ConversationRelay) calls `stream_turn`, speaks the chunks as they come, cancels on a
barge-in and then reports what the caller heard with `interrupted`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import redis
from sqlalchemy.exc import SQLAlchemyError

from callgateway import metrics
from callgateway.agent import intents
from callgateway.agent.choice import agent_for
from callgateway.agent.protocol import Conversation, Heard, Reply, as_stream, keep_only_heard
from callgateway.agent.rules import HELP
from callgateway.agent.tools import Tools
from callgateway.calls import journal
from callgateway.calls import log as call_log
from callgateway.calls import state as live_state
from callgateway.config import Clinic
from callgateway.config.retention import retention_until
from callgateway.db.models import Call
from callgateway.phone import ANONYMOUS
from consent import cache as consent_cache
from consent.gate import Decision, decide

if TYPE_CHECKING:
    from callgateway.wiring import Services

log = logging.getLogger(__name__)

MAX_REPROMPTS = 2  # reprompt twice; the third miss in a row goes to a person
LOW_CONFIDENCE = 0.2
APOLOGY = "I'm sorry, I'm having trouble with our booking system right now."
LOST = "Sorry, we seem to have lost track of this call. Please call us again. Goodbye."
SILENCE = "Sorry, I didn't hear anything."
NOT_CAUGHT = "Sorry, I didn't catch that."
TROUBLE = "I'm sorry, I'm having trouble understanding."


@dataclass(frozen=True)
class Turn:
    """What a channel knows when the caller has spoken (or pressed a key, or was silent)."""

    call_sid: str
    heard: Heard
    # The caller's and the clinic's numbers as the channel sent them with this turn (E.164
    # or anonymous; "" unknown): the consent key can then be read with the live state,
    # before the state says whose call it is.
    cli: str = ""
    called: str = ""


@dataclass(frozen=True)
class TurnResult:
    """The engine's answer. `call` and `clinic` are None when the call is unknown, over, or
    unreadable: the channel then says `reply.say` and hangs up."""

    reply: Reply
    call: Call | None = None
    clinic: Clinic | None = None


@dataclass(frozen=True)
class _Read:
    """The turn's first Redis round trip: the live state and, when the form named the
    caller and the clinic, their cached consent value (`consent_for` says for whom)."""

    state: dict[str, object] | None
    redis_ok: bool
    consent_for: tuple[str, str] | None = None
    consent_raw: bytes | None = None


def _read(services: Services, turn: Turn) -> _Read:
    clinic = services.directory.by_number(turn.called) if turn.called else None
    asked = (clinic.id, turn.cli) if clinic and turn.cli and turn.cli != ANONYMOUS else None
    try:
        if asked is None:
            return _Read(live_state.load(services.redis, turn.call_sid), True)
        pipe = services.redis.pipeline(transaction=False)
        pipe.get(live_state.key(turn.call_sid))
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


Cancelled = Callable[[], bool] | threading.Event


def take_turn(services: Services, turn: Turn) -> TurnResult:
    """Answer one caller turn. Never raises for anything a caller can do."""
    # The agent's whole reply (`respond`): the Gather path says nothing before it has all
    # of it, so reading the model token by token would cost CPU for nothing.
    for item in _turn(services, turn, None, whole=True):
        if isinstance(item, TurnResult):
            return item
    raise AssertionError("a turn ends with a TurnResult")  # pragma: no cover


def stream_turn(
    services: Services, turn: Turn, cancelled: Cancelled | None = None
) -> Iterator[str | TurnResult]:
    """Answer one caller turn as it is produced: text chunks to speak, in order, then
    exactly one `TurnResult` (what next, and the turn's reply as `take_turn` gives it).

    The gate, the safety checks and anything that ends the turn early answer in one chunk
    (none when there is nothing to say), after the turn is written. An agent's words pass
    through as they arrive; the turn is written when its reply is complete. When `cancelled`
    becomes true (the caller barged in), nothing more comes out, the agent closes the
    model's stream when its next chunk arrives (or asks nothing, when no request is out
    yet), and the turn is written with what was sent so far; the channel then calls
    `interrupted()` with what the caller actually heard. Never raises for anything a
    caller can do.
    """
    return _turn(services, turn, cancelled, whole=False)


def _turn(
    services: Services, turn: Turn, cancelled: Cancelled | None, whole: bool
) -> Iterator[str | TurnResult]:
    """The one turn both entry points run: gate, safety checks, the agent (streamed, or
    its whole reply), misses, and the turn's Redis transaction."""
    is_cancelled = cancelled.is_set if isinstance(cancelled, threading.Event) else cancelled
    opened = _open(services, turn)
    if isinstance(opened, TurnResult):
        yield from _said(opened)
        return
    call, clinic, state = opened
    heard = turn.heard
    convo = _conversation(services, call, clinic, state)
    if is_cancelled is not None:
        convo.cancelled = is_cancelled
    convo.log("caller", _caller_text(heard), _caller_meta(heard))

    reply = _safety(convo, heard)
    if reply is not None:
        yield from _said(_finish(services, call, clinic, convo, state, reply))
        return
    reply = yield from _agent_stream(services, clinic, convo, heard, whole)
    result = _finish(services, call, clinic, convo, state, reply)
    if result.reply is not reply and result.reply.say and result.reply.say != reply.say:
        yield result.reply.say  # replaced after the agent spoke (misses, a failed write)
    yield result


def interrupted(services: Services, call_sid: str, heard_text: str) -> None:
    """The caller barged in on the last reply and heard only `heard_text` of it
    (ConversationRelay's `utteranceUntilInterrupt`). Call it once the turn's `TurnResult`
    has come out of `stream_turn`: the live state (the agent's history, the prompt silence
    repeats) and the transcript's last agent line then keep only what was heard, in one
    Redis transaction. Never raises."""
    spoken = journal.spoken(call_sid, heard_text)
    try:
        raw = services.redis.get(live_state.key(call_sid))
        state = live_state.decode(raw)
        pipe = services.redis.pipeline(transaction=True)
        if state:
            keep_only_heard(state, heard_text)
            live_state.save(pipe, call_sid, state)
        journal.add(pipe, "spoken", spoken)
        pipe.execute()
    except redis.RedisError:
        try:
            journal.apply_now(services, [("spoken", spoken)])
        except SQLAlchemyError:
            log.error("barge-in not recorded: neither Redis nor the database")
        return
    journal.appended(services)


def _said(result: TurnResult) -> Iterator[str | TurnResult]:
    if result.reply.say:
        yield result.reply.say
    yield result


def _open(services: Services, turn: Turn) -> TurnResult | tuple[Call, Clinic, dict[str, object]]:
    """The turn's call, clinic and live state, once the gate allowed it; or the result
    that ends the turn here (call unknown or over, Redis down, the gate says no)."""
    read = _read(services, turn)
    state, redis_ok = read.state, read.redis_ok
    call = _cached_call(turn.call_sid, state)
    if call is None:
        # No live state (expired, Redis down, or a call we never greeted): the call log.
        try:
            call = call_log.get_call(services, turn.call_sid)
        except SQLAlchemyError:
            log.error("database unavailable during a turn")
            metrics.fallback("database-unavailable")
            return TurnResult(Reply(APOLOGY + " Please call again shortly. Goodbye.", "hangup"))
        if call is None or call.status in call_log.TERMINAL:
            return TurnResult(Reply(LOST, "hangup"))
    clinic = services.directory.by_id(call.clinic_id) if call.clinic_id else None
    if clinic is None:
        return TurnResult(Reply(LOST, "hangup"))
    if not redis_ok:
        log.error("call state unavailable; caller goes to a person", extra={"clinic": clinic.id})
        return TurnResult(Reply("", "person", reason="state-unavailable"), call, clinic)

    # Every AI turn asks the gate again: a STOP texted mid-call ends AI handling now.
    decision = _gate(services, clinic, call, read)
    if not decision.allowed:
        metrics.CONSENT_DENIALS.labels(decision.reason).inc()
        live_state.forget(services.redis, call.call_sid)
        return TurnResult(Reply("", "person", reason=decision.reason), call, clinic)

    if not state or state.get("clinic_id") != clinic.id:
        state = live_state.new_state(call.cli, call.called, clinic)  # expired or never started
    return call, clinic, state


def _finish(
    services: Services,
    call: Call,
    clinic: Clinic,
    convo: Conversation,
    state: dict[str, object],
    reply: Reply,
) -> TurnResult:
    reply = _count_misses(convo, reply)
    convo.log("agent", reply.say, _agent_meta(reply))
    return TurnResult(_record(services, clinic, call.call_sid, convo, state, reply), call, clinic)


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


def _caller_text(heard: Heard) -> str:
    if heard.digits:
        return f"[pressed {heard.digits}]"
    return heard.speech or "[silence]"


def _agent_meta(reply: Reply) -> dict[str, object] | None:
    """What the turn did besides speaking, for the console's call page: where the call goes
    next and why (a person: emergency, opt-out, the caller's request...), its outcome."""
    meta: dict[str, object] = {}
    if reply.next != "listen":
        meta["next"] = reply.next
    if reply.reason:
        meta["reason"] = reply.reason
    if reply.outcome:
        meta["outcome"] = reply.outcome
    if reply.interrupted:
        meta["interrupted"] = True
    return meta or None


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


def _agent_stream(
    services: Services, clinic: Clinic, convo: Conversation, heard: Heard, whole: bool
) -> Generator[str, None, Reply]:
    """The clinic's agent, streamed (or its whole reply as one chunk): its chunks pass
    through (until a barge-in), its Reply is returned. A failing or silent agent becomes a
    spoken apology and a person."""
    metrics.AGENT_TURNS.labels(clinic.agent_kind).inc()
    sent = False
    try:
        agent = agent_for(services, clinic)
        chunks = as_stream(agent.respond(convo, heard)) if whole else agent.stream(convo, heard)
        try:
            for item in chunks:
                if isinstance(item, Reply):
                    reply = item
                    break
                if item and not convo.cancelled():
                    sent = True
                    yield item
            else:
                raise RuntimeError("the agent's stream ended without a Reply")
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # a generator left early closes its model stream too
    except Exception as exc:  # an agent bug must not leave the caller in silence
        log.error(
            "agent failed; caller goes to a person",
            extra={"clinic": clinic.id, "error": type(exc).__name__},
        )
        yield (" " if sent else "") + APOLOGY
        return Reply(APOLOGY, next="person", reason="agent-error")
    if reply.next == "listen" and not reply.say.strip() and not reply.interrupted:
        yield APOLOGY
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
