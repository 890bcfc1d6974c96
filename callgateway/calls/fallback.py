"""What a caller hears when a webhook cannot do its work (the database is down, or a bug).

Twilio answers an HTTP 500 with "an application error has occurred" and hangs up: the
worst thing a clinic line can do. So the twilio blueprint's last-resort handler asks this
module instead, and it decides from the config and the clock, without the database:
consent cannot be read, so no AI (fail closed), and the caller is treated as opted out. A
person while the clinic is open, else (or when nobody answers) a voicemail. Nothing is
written to the database here: a status callback that Twilio redelivers, or the next
webhook once the database is back, creates the call's row (`flow.call_status` starts a
missing call).

A voicemail is taken only when a later look at Twilio for it could be booked (Redis,
`lifecycle.schedule_find`): its own status callback may arrive while the database is still
down, and a message nobody can find is worse than an honest "call again later".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twilio.twiml.voice_response import VoiceResponse

from callgateway.calls.escalation import (
    ANSWERED,
    NOBODY_FREE,
    VOICEMAIL,
    VOICEMAIL_ANONYMOUS,
    record_voicemail,
)
from callgateway.calls.twiml import say
from callgateway.config import Clinic
from callgateway.config.directory import is_open
from recordings import lifecycle

if TYPE_CHECKING:
    from callgateway.wiring import Services

TROUBLE = "Sorry, we are having technical problems."
CONNECTING = "Connecting you to a member of our team."
CALL_AGAIN = (
    "Sorry, we are having technical problems and cannot take your call right now. "
    "Please call again later. Goodbye."
)
GOODBYE = "Thank you for calling. Goodbye."
MESSAGE_TAKEN = "Thank you. Your message will reach the team. Goodbye."

# The fallback's own follow-ups (webhooks.unavailable): they never touch the database.
AFTER_DIAL_PATH = "/twilio/voice/fallback/dial"
AFTER_MESSAGE_PATH = "/twilio/voice/fallback/voicemail-done"

# Webhooks that come before the caller has been offered a person: the fallback may dial.
MAY_DIAL = frozenset({"/twilio/voice", "/twilio/voice/recording/start", "/twilio/voice/turn"})
# A Dial's end, ours or the fallback's: a goodbye after a person, else a message.
DIAL_RESULTS = frozenset({"/twilio/voice/dial/result", AFTER_DIAL_PATH})
# After the team was tried (nobody answered, or the voicemail menu): a message, not a ring.
MAY_TAKE_MESSAGE = MAY_DIAL | DIAL_RESULTS | {"/twilio/voice/voicemail/choice"}
# After a person or the voicemail: the caller has been served, only a goodbye is left.
SERVED = frozenset({"/twilio/voice/voicemail/done"})


def voice_twiml(
    services: Services,
    path: str,
    called: str,
    inbound: bool,
    dial_status: str = "",
    call_sid: str = "",
    withheld: bool = False,
) -> str:
    """TwiML for a voice webhook that failed, or for the fallback's own Dial ending.
    `called` is the clinic-side number (E.164 or ''); `inbound` False for calls we placed
    (reminders, check-ins), which just end; `call_sid` '' when Twilio's was unusable (then
    no voicemail: it could not be found)."""
    clinic = services.directory.by_number(called) if inbound else None
    resp = VoiceResponse()
    served = path in SERVED or (path in DIAL_RESULTS and dial_status.lower() in ANSWERED)
    if served:
        say(resp, GOODBYE, clinic)
    elif clinic is None:
        say(resp, CALL_AGAIN, clinic)
    elif path in MAY_DIAL and _can_dial(services, clinic):
        say(resp, f"{TROUBLE} {CONNECTING}", clinic)
        # The Dial's answer goes to a route of ours that needs no database either.
        dial = resp.dial(
            caller_id=called,
            timeout=clinic.escalation.ring_seconds,
            action=services.url(AFTER_DIAL_PATH),
            method="POST",
        )
        for number in clinic.escalation.numbers:
            dial.number(number)
        return str(resp)
    elif path in MAY_TAKE_MESSAGE and _take_message(
        services,
        clinic,
        resp,
        call_sid,
        withheld,
        NOBODY_FREE if path == AFTER_DIAL_PATH else TROUBLE,
    ):
        return str(resp)
    else:
        say(resp, CALL_AGAIN, clinic)
    resp.hangup()
    return str(resp)


def after_message(services: Services, called: str) -> str:
    resp = VoiceResponse()
    say(resp, MESSAGE_TAKEN, services.directory.by_number(called))
    resp.hangup()
    return str(resp)


def _take_message(
    services: Services,
    clinic: Clinic,
    resp: VoiceResponse,
    call_sid: str,
    withheld: bool,
    intro: str,
) -> bool:
    """A voicemail, when its later look-up could be booked; False (nothing added) if not."""
    if not call_sid or not lifecycle.schedule_find(services.recordings, call_sid):
        return False
    say(resp, f"{intro} {VOICEMAIL_ANONYMOUS if withheld else VOICEMAIL}", clinic)
    record_voicemail(services, clinic, resp, AFTER_MESSAGE_PATH)
    return True


def _can_dial(services: Services, clinic: Clinic) -> bool:
    return bool(clinic.escalation.numbers) and is_open(clinic, services.clock())
