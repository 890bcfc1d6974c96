"""The twilio blueprint's last resort: a webhook that fails never answers Twilio with a 500.

A database outage (or a bug) raised out of a view would make Twilio tell the caller "an
application error has occurred" and hang up. Instead the caller hears `callgateway.calls.fallback`
(a person while the clinic is open, else a clear apology), and a callback or inbound SMS gets
a 503, which shows in Twilio's debugger and which Twilio's retry policy (`#rp=5xx` on the
URL) may redeliver: every callback is idempotent on its Twilio id.
"""

from __future__ import annotations

import logging

from flask import Response, request
from twilio.twiml.messaging_response import MessagingResponse
from werkzeug.exceptions import HTTPException

from callgateway import metrics
from callgateway.calls import fallback
from callgateway.phone import ANONYMOUS
from webhooks.blueprint import bp, services, twiml
from webhooks.forms import BadEvent, our_number, sid, text_field, their_number

log = logging.getLogger("callgateway.webhooks")


@bp.errorhandler(Exception)
def _unavailable(exc: Exception) -> Response | HTTPException:
    if isinstance(exc, HTTPException):
        return exc  # 403/404/405/413: Flask's own answers, never a 500
    # The type only: a driver's message may quote SQL parameters (numbers, speech).
    log.error(
        "webhook failed; fallback answer", extra={"path": request.path, "error": type(exc).__name__}
    )
    if request.path.endswith("/status"):
        return Response("", status=503, mimetype="text/plain")
    if request.path == "/twilio/sms":
        return Response(str(MessagingResponse()), status=503, mimetype="text/xml")
    metrics.fallback("webhook-failed")
    return _fallback()


# The fallback's follow-ups: the Dial it placed ended, or a message was left. Like the
# fallback they need no database, which may still be down.


@bp.post(fallback.AFTER_DIAL_PATH.removeprefix("/twilio"))
def fallback_dial_result() -> Response:
    return _fallback()


@bp.post(fallback.AFTER_MESSAGE_PATH.removeprefix("/twilio"))
def fallback_message_left() -> Response:
    return twiml(fallback.after_message(services(), called=our_number(request.form.get("To"))))


def _fallback() -> Response:
    form = request.form
    try:
        call_sid = sid(form, "CallSid", "CA")
    except BadEvent:
        call_sid = ""
    return twiml(
        fallback.voice_twiml(
            services(),
            request.path,
            called=our_number(form.get("To")),
            inbound=(form.get("Direction") or "inbound").startswith("inbound"),
            dial_status=text_field(form, "DialCallStatus", 24).strip(),
            call_sid=call_sid,
            withheld=their_number(form.get("From")) == ANONYMOUS,
        )
    )
