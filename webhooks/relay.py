"""The ConversationRelay `<Connect>` action: the relay session ended, Twilio asks what now."""

from __future__ import annotations

from flask import Response, request

from callgateway import events
from callgateway.calls import relay
from callgateway.calls.twiml import apology_and_hangup
from webhooks.blueprint import bp, services, twiml
from webhooks.forms import BadEvent, sid, text_field

MALFORMED = "Sorry, something went wrong with this call. Please try again later."


@bp.post(relay.DONE_PATH.removeprefix("/twilio"))
def relay_done() -> Response:
    try:
        call_sid = sid(request.form, "CallSid", "CA")
    except BadEvent:
        return twiml(apology_and_hangup(MALFORMED))
    event = events.RelayDone(
        call_sid=call_sid,
        call_status=text_field(request.form, "CallStatus", 24).strip().lower(),
        session_status=text_field(request.form, "SessionStatus", 24).strip().lower(),
        handoff_data=text_field(request.form, "HandoffData", 2000),
        error_code=text_field(request.form, "ErrorCode", 16).strip(),
    )
    return twiml(relay.done(services(), event))
