"""Webhooks for what the gateway starts itself: reminder calls, check-in calls, alert calls,
and the status callbacks of outbound calls and messages.

The id of the reminder, attempt or alert rides in the query string, which Twilio signs
with the rest of the URL, so it cannot be swapped for another patient's.
"""

from __future__ import annotations

from flask import Response, request

from callgateway import events
from callgateway.calls.twiml import apology_and_hangup
from callgateway.outbound import alerts, callbacks, checkins, reminders
from webhooks.blueprint import bp, empty, services, twiml
from webhooks.forms import (
    BadEvent,
    ascii_int,
    int_field,
    our_number,
    sid,
    text_field,
    their_number,
)

MALFORMED = "Sorry, something went wrong with this call. Goodbye."


def _ref(name: str) -> int | None:
    return ascii_int(request.args.get(name))


def _answered_by() -> str | None:
    return text_field(request.form, "AnsweredBy", 24) or None


@bp.post("/outbound/reminder/call")
def reminder_call() -> Response:
    reminder_id = _ref("reminder")
    if reminder_id is None:
        return twiml(apology_and_hangup(MALFORMED))
    return twiml(reminders.call_twiml(services(), reminder_id, _answered_by()))


@bp.post("/outbound/reminder/answer")
def reminder_answer() -> Response:
    reminder_id = _ref("reminder")
    try:
        call_sid = sid(request.form, "CallSid", "CA")
    except BadEvent:
        return twiml(apology_and_hangup(MALFORMED))
    if reminder_id is None:
        return twiml(apology_and_hangup(MALFORMED))
    step = request.args.get("step") or None
    digits = text_field(request.form, "Digits", 4).strip()
    return twiml(reminders.answer_twiml(services(), reminder_id, call_sid, digits, step))


@bp.post("/outbound/checkin/call")
def checkin_call() -> Response:
    attempt_id = _ref("attempt")
    if attempt_id is None:
        return twiml(apology_and_hangup(MALFORMED))
    return twiml(checkins.call_twiml(services(), attempt_id, _answered_by()))


@bp.post("/outbound/checkin/answer")
def checkin_answer() -> Response:
    attempt_id = _ref("attempt")
    tries = _ref("try") or 1
    call_sid = text_field(request.form, "CallSid", 64)
    if attempt_id is None:
        return twiml(apology_and_hangup(MALFORMED))
    return twiml(
        checkins.answer_twiml(
            services(),
            attempt_id,
            call_sid,
            text_field(request.form, "Digits", 4).strip(),
            text_field(request.form, "SpeechResult", 500),
            tries,
        )
    )


@bp.post("/outbound/alert/call")
def alert_call() -> Response:
    alert_id = _ref("alert")
    if alert_id is None:
        return twiml(apology_and_hangup(MALFORMED))
    return twiml(alerts.call_twiml(services(), alert_id))


@bp.post("/outbound/call/status")
def outbound_call_status() -> Response:
    try:
        call_sid = sid(request.form, "CallSid", "CA")
    except BadEvent:
        return empty()
    for kind in ("reminder", "attempt", "alert"):
        ref = _ref(kind)
        if ref is not None:
            break
    else:
        return empty()
    callbacks.call_status(
        services(),
        events.CallStatus(
            call_sid=call_sid,
            status=(request.form.get("CallStatus") or "")[:24],
            duration_seconds=int_field(request.form, "CallDuration"),
            answered_by=_answered_by(),
            kind=kind,
            ref_id=ref,
        ),
    )
    return empty()


@bp.post("/outbound/sms/status")
def outbound_sms_status() -> Response:
    try:
        message_sid = sid(request.form, "MessageSid", "SM")
    except BadEvent:
        try:
            message_sid = sid(request.form, "MessageSid", "MM")
        except BadEvent:
            return empty()
    callbacks.message_status(
        services(),
        events.MessageStatus(
            message_sid=message_sid,
            status=(request.form.get("MessageStatus") or request.form.get("SmsStatus") or "")[:24],
            error_code=int_field(request.form, "ErrorCode"),
            to=their_number(request.form.get("To")),
            from_=our_number(request.form.get("From")),
        ),
    )
    return empty()
