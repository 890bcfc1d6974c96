"""A person at any time: dial the clinic's escalation numbers, else voicemail."""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

from callgateway import calls
from callgateway.config import Clinic
from callgateway.db.models import Call
from callgateway.directory import is_open
from callgateway.twiml import say
from callgateway.wiring import Services

CONNECTING = "Connecting you to a member of our team."
CLOSED = "The clinic is closed right now."
VOICEMAIL = "Please leave a message after the tone, and we will call you back."


def to_person(
    services: Services, call: Call, clinic: Clinic, resp: VoiceResponse, reason: str
) -> None:
    open_now = is_open(clinic, services.clock())
    if clinic.escalation.numbers and open_now:
        say(resp, CONNECTING, clinic)
        dial = resp.dial(
            caller_id=call.called,
            timeout=clinic.escalation.ring_seconds,
            action=services.url("/twilio/voice/dial/result"),
            method="POST",
        )
        for number in clinic.escalation.numbers:
            dial.number(number)
        with services.db.session() as session:
            calls.note(session, call.call_sid, outcome="escalated")
        return
    if not open_now:
        say(resp, CLOSED, clinic)
    voicemail(services, call, clinic, resp)


def voicemail(services: Services, call: Call, clinic: Clinic, resp: VoiceResponse) -> None:
    say(resp, VOICEMAIL, clinic)
    resp.record(
        max_length=clinic.voicemail_max_seconds,
        play_beep=True,
        action=services.url("/twilio/voice/voicemail/done"),
        method="POST",
        recording_status_callback=services.url("/twilio/voice/recording/status?kind=voicemail"),
        recording_status_callback_method="POST",
    )
    with services.db.session() as session:
        calls.note(session, call.call_sid, outcome="voicemail", handled_by="voicemail")
