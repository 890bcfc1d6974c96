"""Escalation webhooks: the `<Dial>` action, the voicemail menu and the `<Record>` action."""

from __future__ import annotations

from flask import Response, request

from callgateway import events
from callgateway.calls import escalation
from callgateway.calls.twiml import apology_and_hangup
from webhooks.blueprint import bp, services, twiml
from webhooks.forms import BadEvent, int_field, sid, text_field

MALFORMED = "Sorry, something went wrong with this call. Please try again later."


@bp.post("/voice/dial/result")
def dial_result() -> Response:
    try:
        call_sid = sid(request.form, "CallSid", "CA")
    except BadEvent:
        return twiml(apology_and_hangup(MALFORMED))
    event = events.DialResult(
        call_sid=call_sid,
        dial_status=text_field(request.form, "DialCallStatus", 24).strip().lower(),
        dial_seconds=int_field(request.form, "DialCallDuration"),
    )
    return twiml(escalation.dial_result(services(), event))


@bp.post("/voice/voicemail/choice")
def voicemail_choice() -> Response:
    try:
        call_sid = sid(request.form, "CallSid", "CA")
    except BadEvent:
        return twiml(apology_and_hangup(MALFORMED))
    event = events.VoicemailChoice(
        call_sid=call_sid,
        digits=text_field(request.form, "Digits", 12).strip(),
        why=(request.args.get("why") or "")[:24],
    )
    return twiml(escalation.voicemail_choice(services(), event))


@bp.post("/voice/voicemail/done")
def voicemail_done() -> Response:
    try:
        call_sid = sid(request.form, "CallSid", "CA")
    except BadEvent:
        return twiml(apology_and_hangup(escalation.VOICEMAIL_THANKS))
    try:
        recording_sid: str | None = sid(request.form, "RecordingSid", "RE")
    except BadEvent:
        recording_sid = None
    event = events.VoicemailDone(
        call_sid=call_sid,
        recording_sid=recording_sid,
        seconds=int_field(request.form, "RecordingDuration"),
    )
    return twiml(escalation.voicemail_done(services(), event))
