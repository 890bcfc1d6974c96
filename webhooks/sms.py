"""Inbound SMS webhook."""

from __future__ import annotations

from flask import Response, request
from twilio.twiml.messaging_response import MessagingResponse

from callgateway import messaging
from webhooks.blueprint import bp, services, twiml
from webhooks.events import BadEvent, our_number, sid, text_field, their_number


@bp.post("/sms")
def inbound_sms() -> Response:
    try:
        message_sid = sid(request.form, "MessageSid", "SM")
    except BadEvent:
        try:
            message_sid = sid(request.form, "SmsSid", "SM")
        except BadEvent:
            return twiml(str(MessagingResponse()))
    event = messaging.InboundSms(
        message_sid=message_sid,
        phone=their_number(request.form.get("From")),
        clinic_number=our_number(request.form.get("To")),
        body=text_field(request.form, "Body", 1600),
    )
    reply = messaging.inbound_sms(services(), event)
    resp = MessagingResponse()
    if reply:
        resp.message(reply)
    return twiml(str(resp))
