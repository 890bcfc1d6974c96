"""The path of a call: greeting -> recording announcement -> consent gate -> agent or person.

Each function takes the wired Services and a typed event, writes what must outlive the call,
and returns TwiML. No Flask in here: the webhooks translate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from twilio.twiml.voice_response import VoiceResponse

from callgateway.calls import escalation, gather, opening
from callgateway.calls import log as call_log
from callgateway.calls import state as live_state
from callgateway.calls.twiml import apology_and_hangup, say
from callgateway.config import Clinic
from callgateway.db.models import Call
from callgateway.phone import mask
from consent.gate import Decision
from recordings import policy as recording_policy

if TYPE_CHECKING:
    from callgateway.wiring import Services

log = logging.getLogger(__name__)

UNKNOWN_NUMBER = (
    "Sorry, this number is not connected to a clinic on our service. Please check the "
    "number and try again. Goodbye."
)


@dataclass(frozen=True)
class IncomingCall:
    call_sid: str
    cli: str  # E.164 or 'anonymous'
    called: str  # E.164 or '' when Twilio sent nothing usable
    direction: str = "inbound"


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
            call_log.start_call(session, services.config, start)
        # Announcement first; recording starts only in the webhook Twilio calls after it.
        say(resp, clinic.recording.announcement, clinic)
        resp.redirect(services.url("/twilio/voice/recording/start"), method="POST")
        return str(resp)
    # Gate first. When the AI may answer, the call's row goes to the journal with the live
    # state: no database on this path. Usually one Redis call does both (a cached state).
    row = call_log.start_values(services.config, start)
    opened = opening.open_if_allowed(services, clinic, row)
    decision = opened.decision
    if decision is not None and decision.allowed:
        return gather.opening(services, clinic)
    if decision is None:  # the long way: a cache miss, a withheld number, Redis trouble
        decision = services.gate.may(clinic.id, event.cli, "ai_handling", missed=opened.missed)
        row.update(_gate_fields(decision))
        if decision.allowed and opening.begin(services, clinic, row=row):
            return gather.opening(services, clinic)
    with services.db.session() as session:
        call = call_log.start_call(session, services.config, start, **_gate_fields(decision))
    _answer(services, call, clinic, resp, decision, opened=False)
    return str(resp)


@dataclass(frozen=True)
class StatusEvent:
    call_sid: str
    status: str
    duration_seconds: int | None
    cli: str
    called: str


def call_status(services: Services, event: StatusEvent) -> None:
    """Complete the call-log row. Idempotent, and safe before the voice webhook arrived."""
    now = services.clock()
    with call_log.session(services) as session:
        if call_log.find_call(session, event.call_sid) is None:
            clinic = services.directory.by_number(event.called)
            call_log.start_call(
                session,
                services.config,
                call_log.CallStart(event.call_sid, event.cli, event.called, clinic, now),
            )
        call_log.apply_status(session, event.call_sid, event.status, now, event.duration_seconds)
    if event.status in call_log.TERMINAL:
        live_state.forget(services.redis, event.call_sid)  # the live state ends with the call


def after_announcement(services: Services, call_sid: str) -> str:
    """The announcement has played: only now may recording start. Then route the call."""
    call = call_log.get_call(services, call_sid)
    clinic = services.directory.by_id(call.clinic_id) if call and call.clinic_id else None
    if call is None or clinic is None:
        return apology_and_hangup(UNKNOWN_NUMBER)
    recorded = recording_policy.start_recording(services.recordings, call, clinic)
    decision = services.gate.may(clinic.id, call.cli, "ai_handling")
    with call_log.session(services) as session:
        call_log.note(session, call_sid, recorded=recorded, **_gate_fields(decision))
    opened = decision.allowed and opening.begin(services, clinic, call=call)
    resp = VoiceResponse()
    _answer(services, call, clinic, resp, decision, opened)
    return str(resp)


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
    if opened:
        gather.open_with_question(services, clinic, resp)
        return
    reason = decision.reason if not decision.allowed else "state-unavailable"
    escalation.to_person(services, call, clinic, resp, reason=reason)
