"""The Gather channel: Twilio's <Gather input="speech dtmf"> turns over the turn engine.

Twilio recognises the caller's speech, posts it to the turn webhook, and reads our
answer out with <Say>. This module turns that webhook's event into a `Turn`, lets the
engine answer, and renders the result as TwiML: the next question inside a Gather, or a
person (escalation), or a goodbye.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from xml.sax.saxutils import escape as xml_escape

from twilio.twiml.voice_response import VoiceResponse

from callgateway.agent.protocol import Heard
from callgateway.agent.rules import OPENING
from callgateway.calls import engine, escalation
from callgateway.calls.twiml import apology_and_hangup, say
from callgateway.config import Clinic
from callgateway.events import TurnEvent

if TYPE_CHECKING:
    from callgateway.wiring import Services

TURN_PATH = "/twilio/voice/turn"


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
    heard = Heard(event.speech.strip(), event.confidence, event.digits.strip())
    result = engine.take_turn(
        services, engine.Turn(event.call_sid, heard, cli=event.cli, called=event.called)
    )
    reply, call, clinic = result.reply, result.call, result.clinic
    if call is None or clinic is None:
        return apology_and_hangup(reply.say)
    if reply.next == "listen":
        return listen(services, clinic, reply.say)
    resp = VoiceResponse()
    if reply.say:
        say(resp, reply.say, clinic)
    if reply.next == "person":
        escalation.to_person(services, call, clinic, resp, reason=reply.reason or "agent")
    else:
        resp.hangup()
    return str(resp)
