"""The typed events the webhooks hand to the domain: Twilio's form fields, translated.

`webhooks/` parses and validates each form (signature first, then `webhooks/forms.py`'s
field readers) into one of these; the domain speaks only these. Plain values: E.164
numbers or 'anonymous', Twilio's ids, ints. This module imports nothing of the product.
"""

from __future__ import annotations

from dataclasses import dataclass

# -- Voice: the incoming call and its status callback --------------------------------------


@dataclass(frozen=True)
class IncomingCall:
    call_sid: str
    cli: str  # E.164 or 'anonymous'
    called: str  # E.164 or '' when Twilio sent nothing usable
    direction: str = "inbound"


@dataclass(frozen=True)
class StatusEvent:
    call_sid: str
    status: str
    duration_seconds: int | None
    cli: str
    called: str


# -- Voice: one Gather result (a caller turn) ----------------------------------------------


@dataclass(frozen=True)
class TurnEvent:
    call_sid: str
    speech: str = ""
    confidence: float | None = None
    digits: str = ""
    # From and To as Twilio sent them with this turn (E.164 or anonymous; "" unknown).
    cli: str = ""
    called: str = ""
    # Which turn of the call this is (the Gather action's `?step=`); None when unnumbered.
    step: int | None = None


# -- SMS -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboundSms:
    message_sid: str
    phone: str  # E.164 or 'anonymous'
    clinic_number: str
    body: str


# -- Recordings ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordingEvent:
    recording_sid: str
    call_sid: str
    kind: str  # recording | voicemail
    status: str  # Twilio's RecordingStatus: completed | absent | failed | in-progress
    duration_seconds: int | None
    media_url: str | None


# -- Outbound calls ------------------------------------------------------------------------


@dataclass(frozen=True)
class CallStatus:
    call_sid: str
    status: str
    duration_seconds: int | None
    answered_by: str | None
    kind: str  # reminder | attempt | alert
    ref_id: int


# -- SMS -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageStatus:
    message_sid: str
    status: str
    error_code: int | None
    to: str
    from_: str


# -- Voice: a person, voicemail, a callback ------------------------------------------------


@dataclass(frozen=True)
class DialResult:
    call_sid: str
    dial_status: str  # Twilio's DialCallStatus
    dial_seconds: int | None = None


@dataclass(frozen=True)
class VoicemailChoice:
    call_sid: str
    digits: str
    why: str


@dataclass(frozen=True)
class VoicemailDone:
    call_sid: str
    recording_sid: str | None
    seconds: int | None


# -- Voice: the end of a ConversationRelay session (the <Connect> action) ------------------


@dataclass(frozen=True)
class RelayDone:
    call_sid: str
    call_status: str  # Twilio's CallStatus: in-progress while the caller is still there
    session_status: str  # Twilio's SessionStatus (ended, completed, failed, ...)
    handoff_data: str  # what our `end` message carried, as Twilio posts it back; "" none
    error_code: str  # Twilio's ErrorCode when the session broke; "" none
