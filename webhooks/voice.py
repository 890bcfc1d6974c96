"""Voice webhooks: incoming call and the call status callback."""

from __future__ import annotations

from flask import Response, request

from callgateway import events
from callgateway.calls import flow
from callgateway.calls.twiml import apology_and_hangup
from webhooks.blueprint import bp, empty, services, twiml
from webhooks.forms import BadEvent, int_field, our_number, sid, their_number

MALFORMED = "Sorry, something went wrong with this call. Please try again later."


@bp.post("/voice")
def incoming() -> Response:
    try:
        call_sid = sid(request.form, "CallSid", "CA")
    except BadEvent:
        return twiml(apology_and_hangup(MALFORMED))
    event = events.IncomingCall(
        call_sid=call_sid,
        cli=their_number(request.form.get("From")),
        called=our_number(request.form.get("To")),
        direction=request.form.get("Direction", "inbound")[:16],
    )
    return twiml(flow.incoming_call(services(), event))


@bp.post("/voice/status")
def call_status() -> Response:
    try:
        call_sid = sid(request.form, "CallSid", "CA")
    except BadEvent:
        return empty()
    flow.call_status(
        services(),
        events.StatusEvent(
            call_sid=call_sid,
            status=(request.form.get("CallStatus") or "")[:24],
            duration_seconds=int_field(request.form, "CallDuration"),
            cli=their_number(request.form.get("From")),
            called=our_number(request.form.get("To")),
        ),
    )
    return empty()


@bp.post("/voice/recording/start")
def recording_start() -> Response:
    try:
        call_sid = sid(request.form, "CallSid", "CA")
    except BadEvent:
        return twiml(apology_and_hangup(MALFORMED))
    return twiml(flow.after_announcement(services(), call_sid))
