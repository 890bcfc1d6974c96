"""Small helpers over the twilio package's TwiML builders, so every reply speaks alike."""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

from callgateway.config import Clinic

VOICE = "Polly.Amy"


def say(resp: VoiceResponse, text: str, clinic: Clinic | None = None) -> None:
    resp.say(text, language=clinic.language if clinic else "en-GB")


def apology_and_hangup(text: str) -> str:
    resp = VoiceResponse()
    resp.say(text, language="en-GB")
    resp.hangup()
    return str(resp)


def hang_up() -> str:
    """The answer to any webhook of a call that has ended: nothing more happens."""
    resp = VoiceResponse()
    resp.hangup()
    return str(resp)
