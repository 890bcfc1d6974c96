"""What a caller hears when a webhook cannot do its work (the database is down, or a bug).

Twilio answers an HTTP 500 with "an application error has occurred" and hangs up: the
worst thing a clinic line can do. So the twilio blueprint's last-resort handler asks this
module instead, and it decides from the config and the clock alone (no database, no Redis,
no network): consent cannot be read, so no AI (fail closed). A caller who has not yet tried
the team is put through to it while the clinic is open; anyone else hears a clear apology.
Nothing is written here: a status callback that Twilio redelivers, or the next webhook once
the database is back, creates the call's row (`flow.call_status` starts a missing call).
"""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

from callgateway.config import Clinic
from callgateway.directory import is_open
from callgateway.escalation import ANSWERED
from callgateway.twiml import say
from callgateway.wiring import Services

TROUBLE = "Sorry, we are having technical problems."
CONNECTING = "Connecting you to a member of our team."
CALL_AGAIN = (
    "Sorry, we are having technical problems and cannot take your call right now. "
    "Please call again later. Goodbye."
)
GOODBYE = "Thank you for calling. Goodbye."
AFTER_DIAL = "If nobody could take your call, please call again later. Goodbye."

# Webhooks that come before the caller has been offered a person: the fallback may dial.
# Later ones (the Dial's action, the voicemail menu) only apologise: the team was tried.
MAY_DIAL = frozenset({"/twilio/voice", "/twilio/voice/recording/start", "/twilio/voice/turn"})
# After a person or the voicemail: the caller has been served, only a goodbye is left.
SERVED = frozenset({"/twilio/voice/voicemail/done"})


def voice_twiml(
    services: Services, path: str, called: str, inbound: bool, dial_status: str = ""
) -> str:
    """TwiML for a voice webhook that failed. `called` is the clinic-side number (E.164
    or ''); `inbound` False for calls we placed (reminders, check-ins), which just end."""
    clinic = services.directory.by_number(called) if inbound else None
    resp = VoiceResponse()
    served = path in SERVED or (
        path == "/twilio/voice/dial/result" and dial_status.lower() in ANSWERED
    )
    if served:
        say(resp, GOODBYE, clinic)
    elif path in MAY_DIAL and clinic is not None and _can_dial(services, clinic):
        say(resp, f"{TROUBLE} {CONNECTING}", clinic)
        # No action URL: the call has no row to close (and the database may still be
        # down), so Twilio goes on to the next verb when the Dial ends, answered or not.
        dial = resp.dial(caller_id=called, timeout=clinic.escalation.ring_seconds)
        for number in clinic.escalation.numbers:
            dial.number(number)
        say(resp, AFTER_DIAL, clinic)
    else:
        say(resp, CALL_AGAIN, clinic)
    resp.hangup()
    return str(resp)


def _can_dial(services: Services, clinic: Clinic) -> bool:
    return bool(clinic.escalation.numbers) and is_open(clinic, services.clock())
