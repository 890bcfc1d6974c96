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
from callgateway.calls import engine, escalation, once
from callgateway.calls.twiml import apology_and_hangup, say
from callgateway.config import Clinic
from callgateway.events import TurnEvent

if TYPE_CHECKING:
    from callgateway.wiring import Services

TURN_PATH = "/twilio/voice/turn"
FIRST_STEP = 1
MAX_STEP = 100_000  # far past any call's turns; a bigger step is not ours


def turn_url(services: Services, step: int | str | None) -> str:
    """The Gather action of turn `step`: the step in the URL names the turn (calls/once)."""
    return services.url(TURN_PATH if step is None else f"{TURN_PATH}?step={step}")


def gather(
    services: Services,
    clinic: Clinic,
    resp: VoiceResponse,
    text: str,
    step: int | str = FIRST_STEP,
) -> None:
    """Listen for speech or a key; silence also comes back to us (actionOnEmptyResult).
    The caller's answer is turn `step` of the call."""
    hints = [t.name for t in clinic.appointment_types] + ["book", "move", "cancel", "person"]
    g = resp.gather(
        input="speech dtmf",
        speech_timeout="auto",
        hints=", ".join(hints),
        language=clinic.language,
        num_digits=1,
        action=turn_url(services, step),
        method="POST",
        action_on_empty_result=True,
    )
    g.say(text, language=clinic.language)


_SAID = "@@SAID@@"  # stands in for the spoken text in the cached TwiML
_STEP = "@@STEP@@"  # and the next step, in the action URL


def listen(services: Services, clinic: Clinic, text: str, step: int = FIRST_STEP) -> str:
    """The whole answer of a turn that goes on listening: `text` inside the clinic's
    Gather, whose answer is turn `step`. The same bytes as building it with `gather()`,
    which costs a turn a tenth of its time in ElementTree; the rest of the document
    depends on config alone."""
    if not text:  # ElementTree closes an empty <Say/> itself
        resp = VoiceResponse()
        gather(services, clinic, resp, text, step)
        return str(resp)
    key = ("listen", clinic.id)
    template = services.memo.get(key)
    if template is None:
        resp = VoiceResponse()
        gather(services, clinic, resp, _SAID, _STEP)
        template = services.memo[key] = str(resp)
    return template.replace(_STEP, str(step), 1).replace(_SAID, xml_escape(text), 1)


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
    """Answer one Gather result with TwiML, once: a retry or a concurrent copy of a turn
    already taken gets the same TwiML and changes nothing, and a turn of a call that has
    ended only hangs up (calls/once). Never raises for anything a caller can do."""
    if event.step is not None:
        name, numbered = once.key(event.call_sid, event.step), True
    else:
        name = once.unnumbered_key(event.call_sid, event.speech, event.confidence, event.digits)
        numbered = False
    return once.answer(
        services,
        event.call_sid,
        name,
        lambda: _answer(services, event),
        turn_url(services, event.step),
        numbered,
    )


def _answer(services: Services, event: TurnEvent) -> str:
    heard = Heard(event.speech.strip(), event.confidence, event.digits.strip())
    result = engine.take_turn(
        services, engine.Turn(event.call_sid, heard, cli=event.cli, called=event.called)
    )
    reply, call, clinic = result.reply, result.call, result.clinic
    if call is None or clinic is None:
        return apology_and_hangup(reply.say)
    if reply.next == "listen":
        return listen(services, clinic, reply.say, (event.step or 0) + 1)
    resp = VoiceResponse()
    if reply.say:
        say(resp, reply.say, clinic)
    if reply.next == "person":
        escalation.to_person(services, call, clinic, resp, reason=reply.reason or "agent")
    else:
        resp.hangup()
    return str(resp)
