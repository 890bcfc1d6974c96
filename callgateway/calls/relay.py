"""The ConversationRelay channel: Twilio's streaming speech over the same turn engine.

Twilio recognises the caller's speech and speaks our text, over a WebSocket that the relay
process (`callgateway.relay`) serves. This module is that channel's part of the call core,
with no socket in it: the TwiML that opens the relay (`<Connect action>
<ConversationRelay/>`), the one session a call may have (`claim`), keeping only what the
caller heard when they interrupt (`keep_only_heard`), and the `<Connect>` action that turns
the session's end into a person, a voicemail or a goodbye (`done`).

The relay is opened only after the gate allowed the AI and the conversation's live state
was written (`flow.begin`): a call without that live state never gets a session.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import redis
from twilio.twiml.voice_response import Connect, VoiceResponse

from callgateway.agent.rules import OPENING
from callgateway.calls import engine, escalation
from callgateway.calls import log as call_log
from callgateway.calls import state as live_state
from callgateway.calls.twiml import apology_and_hangup, say
from callgateway.config import Clinic
from callgateway.events import RelayDone

if TYPE_CHECKING:
    from callgateway.wiring import Services

log = logging.getLogger(__name__)

DONE_PATH = "/twilio/voice/relay/done"
LOST = "Sorry, something went wrong with this call. Please try again later."
# Call statuses after which Twilio runs no more TwiML: the caller has gone.
GONE = frozenset({"completed", "canceled", "busy", "failed", "no-answer"})
_REASON = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


# -- opening the relay ----------------------------------------------------------------------


def connect(services: Services, clinic: Clinic, resp: VoiceResponse) -> None:
    """`<Connect action><ConversationRelay .../></Connect>`: the agent's first question as
    Twilio's welcome greeting, then the caller's turns over the relay. Nothing personal in
    it (no `<Parameter>`): the relay learns the call from Twilio's own `setup` message."""
    relay = clinic.relay
    assert relay is not None, "connect() is for a relay clinic"
    options: dict[str, str] = {}
    if relay.tts_provider:
        options["tts_provider"] = relay.tts_provider
    if relay.voice:
        options["voice"] = relay.voice
    if relay.transcription_provider:
        options["transcription_provider"] = relay.transcription_provider
    connect_verb = Connect(action=services.url(DONE_PATH), method="POST")
    cr = connect_verb.conversation_relay(
        url=services.settings.relay_url,
        language=clinic.language,
        welcome_greeting=OPENING,
        welcome_greeting_interruptible=relay.interruptible,
        interruptible=relay.interruptible,
        dtmf_detection="true",
        hints=", ".join(t.name for t in clinic.appointment_types) or None,
        **options,
    )
    for code in relay.languages:
        cr.language(code=code)
    resp.append(connect_verb)


def opening(services: Services, clinic: Clinic) -> str:
    """The first answer of a relay call that records nothing: greeting, then the relay.
    Config alone decides it, so it is built once per clinic and process."""
    key = ("relay-opening", clinic.id)
    cached = services.memo.get(key)
    if cached is None:
        resp = VoiceResponse()
        say(resp, clinic.greeting, clinic)
        connect(services, clinic, resp)
        cached = services.memo[key] = str(resp)
    return cached


# -- one session per call -------------------------------------------------------------------

Claim = Literal["ok", "unknown", "taken", "unavailable"]
SESSION_TTL = live_state.TTL_SECONDS

# KEYS: the call's live state, its relay session mark. A session only for a conversation
# the gateway opened (the gate allowed it and its live state is there), and only one ever:
# a replayed handshake or a second socket for the same call finds the mark.
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', tonumber(ARGV[1])) then return 1 end
return -1
"""


def session_key(call_sid: str) -> str:
    return f"relay:{call_sid}"


def claim(services: Services, call_sid: str) -> Claim:
    """May a relay session start for this call? Writes only the mark, only when it may."""
    script = services.memo.get("relay-claim")
    if script is None:
        script = services.memo["relay-claim"] = services.redis.register_script(_CLAIM)
    try:
        found = script(
            keys=[live_state.key(call_sid), session_key(call_sid)],
            args=[SESSION_TTL],
            client=services.redis,
        )
    except redis.RedisError:
        return "unavailable"
    return {1: "ok", 0: "unknown"}.get(int(found), "taken")


# -- barge-in -------------------------------------------------------------------------------


def keep_only_heard(services: Services, call_sid: str, said: str, heard: str) -> None:
    """The caller interrupted the agent's line `said` after hearing `heard`: the transcript
    and the conversation (the reprompt, the model's history) keep only `heard`, so the next
    turn reasons about what the caller actually heard (the engine's `interrupted`)."""
    if not said or heard.strip() == said.strip():
        return
    engine.interrupted(services, call_sid, heard.strip())


# -- the end of a session -------------------------------------------------------------------


@dataclass(frozen=True)
class Handoff:
    """What our `end` message tells the `<Connect>` action: what next, and why."""

    next: Literal["person", "hangup"]
    reason: str

    def encode(self) -> str:
        return json.dumps({"next": self.next, "reason": self.reason})

    @classmethod
    def decode(cls, raw: str) -> Handoff | None:
        """The handoff our relay sent, or None for anything else (absent, malformed)."""
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("next") not in ("person", "hangup"):
            return None
        reason = data.get("reason")
        if not isinstance(reason, str) or not _REASON.match(reason):
            reason = "agent"
        return cls(data["next"], reason)


def done(services: Services, event: RelayDone) -> str:
    """The relay session ended: Twilio asks what the caller hears next.

    Our `end` said a person (or goodbye): that. Anything else (the socket dropped, Twilio
    reports an error, no handoff at all) is a person or voicemail too: never a second AI
    session, whose live state goes here whatever the session left.
    """
    live_state.forget(services.redis, event.call_sid)
    call = call_log.get_call(services, event.call_sid)
    clinic = services.directory.by_id(call.clinic_id) if call and call.clinic_id else None
    if call is None or clinic is None:
        log.warning("relay action for a call we do not know")
        return apology_and_hangup(LOST)
    resp = VoiceResponse()
    if event.call_status in GONE:
        resp.hangup()  # nobody to hear anything; the status callback closes the call
        return str(resp)
    handoff = Handoff.decode(event.handoff_data)
    if handoff is not None and handoff.next == "hangup" and not event.error_code:
        resp.hangup()  # the agent said goodbye over the relay
        return str(resp)
    if handoff is None:
        reason = "relay-error" if event.error_code else "relay-ended"
        log.warning(
            "relay session ended without a handoff",
            extra={"clinic": clinic.id, "error_code": event.error_code or None},
        )
    else:
        reason = handoff.reason
    escalation.to_person(services, call, clinic, resp, reason=reason)
    return str(resp)
