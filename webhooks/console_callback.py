"""Webhooks of a callback placed from the console (`outbound/staff_callback.py`): the TwiML
when the staff member answers, the patient leg's Dial action, the staff leg's status.

The callback's id rides in the query string, signed by Twilio with the rest of the URL.
"""

from __future__ import annotations

from flask import Response, request

from callgateway.calls.twiml import apology_and_hangup
from callgateway.outbound import staff_callback
from webhooks.blueprint import bp, empty, services, twiml
from webhooks.forms import BadEvent, ascii_int, int_field, sid, text_field


def _callback() -> int | None:
    return ascii_int(request.args.get("callback"))


@bp.post("/console/callback/connect")
def console_callback_connect() -> Response:
    callback_id = _callback()
    if callback_id is None:
        return twiml(apology_and_hangup(staff_callback.GONE))
    return twiml(staff_callback.connect_twiml(services(), callback_id))


@bp.post("/console/callback/dialled")
def console_callback_dialled() -> Response:
    callback_id = _callback()
    if callback_id is None:
        return twiml(apology_and_hangup(staff_callback.GONE))
    status = text_field(request.form, "DialCallStatus", 24)
    return twiml(staff_callback.dialled(services(), callback_id, status))


@bp.post("/console/callback/status")
def console_callback_status() -> Response:
    callback_id = _callback()
    try:
        call_sid = sid(request.form, "CallSid", "CA")
    except BadEvent:
        return empty()
    if callback_id is not None:
        status = text_field(request.form, "CallStatus", 24)
        duration = int_field(request.form, "CallDuration")
        staff_callback.staff_leg_status(services(), callback_id, call_sid, status, duration)
    return empty()
