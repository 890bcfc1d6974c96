"""Inbound SMS webhook: the reply, if any, is one TwiML <Message>."""

from __future__ import annotations

from flask import Response, request
from twilio.twiml.messaging_response import MessagingResponse

from callgateway import events
from callgateway.sms import inbound
from webhooks.blueprint import bp, services, twiml
from webhooks.forms import BadEvent, our_number, sid, text_field, their_number

# Where Twilio puts the message id: SM... for SMS, MM... for MMS (a STOP with a picture
# attached is still a STOP); older accounts also send SmsSid.
_SID_FIELDS = (("MessageSid", "SM"), ("MessageSid", "MM"), ("SmsSid", "SM"))


def _message_sid() -> str | None:
    for name, prefix in _SID_FIELDS:
        try:
            return sid(request.form, name, prefix)
        except BadEvent:
            continue
    return None


@bp.post("/sms")
def inbound_sms() -> Response:
    message_sid = _message_sid()
    if message_sid is None:
        return twiml(str(MessagingResponse()))
    event = events.InboundSms(
        message_sid=message_sid,
        phone=their_number(request.form.get("From")),
        clinic_number=our_number(request.form.get("To")),
        body=text_field(request.form, "Body", 1600),
    )
    try:
        reply = inbound.inbound_sms(services(), event)
    except inbound.Unavailable:
        # Nothing was recorded, so nothing is confirmed. A 503 (not a 500: this is expected
        # and handled) shows in Twilio's debugger, and a webhook retry policy may redeliver
        # the same MessageSid, which the ledger then records exactly once.
        return Response(str(MessagingResponse()), status=503, mimetype="text/xml")
    resp = MessagingResponse()
    if reply:
        resp.message(reply)
    return twiml(str(resp))
