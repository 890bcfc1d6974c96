"""Staff call a patient back from the console, as a desk phone would: Twilio rings the
staff member's own phone first (the number on their account); when they answer, the TwiML
dials the patient with the clinic's number as caller ID, and the bridge's result is logged
on the callback and on its queue item.

Each webhook carries the callback's id in its query string, which Twilio signs with the
rest of the URL. The patient's number is read from the call being returned when Twilio
asks for the TwiML, never kept on the callback row, and never put in a URL. The bridged
call leaves one call-log row (direction outbound, purpose `staff-callback`, the patient as
its `cli`, handled by a person).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import update
from twilio.twiml.voice_response import VoiceResponse

from callgateway.adapters.twilio_rest import PermanentError, TwilioError
from callgateway.calls import log as call_log
from callgateway.config import Clinic
from callgateway.config.retention import retention_until
from callgateway.db.models import Call, StaffCallback, WorkItem
from callgateway.phone import ANONYMOUS
from callgateway.sms.delivery import clinic_number

if TYPE_CHECKING:
    from callgateway.wiring import Services

log = logging.getLogger(__name__)

CONNECT_PATH = "/twilio/console/callback/connect"
DIALLED_PATH = "/twilio/console/callback/dialled"
STATUS_PATH = "/twilio/console/callback/status"
PURPOSE = "staff-callback"
STAFF_RING_SECONDS = 25
PATIENT_RING_SECONDS = 30
CONNECTING = "Connecting you to the patient. They will see the clinic's number."
GONE = "This callback is no longer available. Goodbye."
# Twilio's DialCallStatus -> what came of the callback, in the queue item's words.
DIAL_OUTCOMES = {
    "completed": "reached",
    "answered": "reached",
    "no-answer": "no-answer",
    "busy": "busy",
    "failed": "failed",
    "canceled": "failed",
}
STAFF_MISSED = {"no-answer": "staff-missed", "busy": "staff-missed", "failed": "failed"}


class CallbackRefused(Exception):
    """Not placed; the message is a sentence for the member of staff."""


def start(
    services: Services,
    clinic: Clinic,
    call: Call,
    user_id: int,
    staff_phone: str | None,
    work_item_id: int | None,
) -> int:
    """Ring the staff member's phone; returns the callback's id."""
    if not staff_phone:
        raise CallbackRefused(
            "Add your own phone number to your account first (ask an admin, or "
            "`callgateway users set-phone`): the console rings you, then the patient."
        )
    if not call.cli or call.cli == ANONYMOUS:
        raise CallbackRefused("The caller withheld their number: there is nobody to call back.")
    if services.twilio is None:
        raise CallbackRefused("Calling is not set up for this gateway (no Twilio account).")
    now = services.clock()
    with services.db.session() as session:
        callback = StaffCallback(
            clinic_id=clinic.id,
            call_id=call.id,
            work_item_id=work_item_id,
            user_id=user_id,
            status="calling-staff",
            created_at=now,
            updated_at=now,
            data_category="call-metadata",
            retention_until=retention_until(services.config, clinic, "call-metadata", now),
        )
        session.add(callback)
        session.flush()
        callback_id = callback.id
    query = f"?callback={callback_id}"
    try:
        result = services.twilio.create_call(
            To=staff_phone,
            From=clinic_number(clinic),
            Url=services.url(CONNECT_PATH + query),
            Method="POST",
            StatusCallback=services.url(STATUS_PATH + query),
            StatusCallbackMethod="POST",
            StatusCallbackEvent=["initiated", "ringing", "answered", "completed"],
            Timeout=str(STAFF_RING_SECONDS),
        )
    except TwilioError as exc:
        _finish(services, callback_id, "failed")
        permanent = isinstance(exc, PermanentError)
        raise CallbackRefused(
            "Twilio refused the call: check the number on your account."
            if permanent
            else "Twilio is not answering: try again in a minute."
        ) from None
    call_sid = str(result.get("sid") or "")
    with services.db.session() as session:
        session.execute(
            update(StaffCallback)
            .where(StaffCallback.id == callback_id)
            .values(call_sid=call_sid or None)
        )
        if call_sid:
            call_log.start_call(
                session,
                services.config,
                call_log.CallStart(
                    call_sid=call_sid,
                    cli=call.cli,
                    called=clinic_number(clinic),
                    clinic=clinic,
                    at=now,
                    direction="outbound",
                    purpose=PURPOSE,
                ),
                handled_by="human",
            )
    log.info("staff callback placed", extra={"clinic": clinic.id, "callback": callback_id})
    return callback_id


def connect_twiml(services: Services, callback_id: int) -> str:
    """The staff member answered: dial the patient from the clinic's number."""
    with services.db.session() as session:
        callback = session.get(StaffCallback, callback_id)
        call = session.get(Call, callback.call_id) if callback is not None else None
        if callback is not None and call is not None and callback.status == "calling-staff":
            callback.status = "bridging"
            callback.updated_at = services.clock()
    clinic = services.directory.by_id(callback.clinic_id) if callback is not None else None
    resp = VoiceResponse()
    if callback is None or call is None or clinic is None or call.cli in ("", ANONYMOUS):
        resp.say(GONE, language="en-GB")
        resp.hangup()
        return str(resp)
    resp.say(CONNECTING, language=clinic.language)
    dial = resp.dial(
        caller_id=clinic_number(clinic),
        action=services.url(DIALLED_PATH + f"?callback={callback_id}"),
        method="POST",
        timeout=PATIENT_RING_SECONDS,
    )
    dial.number(call.cli)
    return str(resp)


def dialled(services: Services, callback_id: int, dial_status: str) -> str:
    """The patient's leg ended (or never connected): log what came of it, hang up."""
    _finish(services, callback_id, DIAL_OUTCOMES.get(dial_status, "failed"))
    resp = VoiceResponse()
    resp.hangup()
    return str(resp)


def staff_leg_status(
    services: Services, callback_id: int, call_sid: str, status: str, duration: int | None
) -> None:
    """The staff member's leg: its call-log row moves on; unanswered, the callback ends."""
    with services.db.session() as session:
        call_log.apply_status(session, call_sid, status, services.clock(), duration)
    if status in STAFF_MISSED:
        _finish(services, callback_id, STAFF_MISSED[status])


def _finish(services: Services, callback_id: int, outcome: str) -> None:
    """The first outcome is final: Twilio's retries and late callbacks change nothing."""
    now = services.clock()
    with services.db.session() as session:
        done = session.execute(
            update(StaffCallback)
            .where(StaffCallback.id == callback_id, StaffCallback.outcome.is_(None))
            .values(status="done", outcome=outcome, updated_at=now)
        )
        if not done.rowcount:
            return
        callback = session.get(StaffCallback, callback_id)
        if callback is not None and callback.work_item_id is not None:
            session.execute(
                update(WorkItem)
                .where(WorkItem.id == callback.work_item_id)
                .values(outcome=f"callback-{outcome}", updated_at=now)
            )
        if callback is not None and callback.call_sid:
            call_log.note(session, callback.call_sid, outcome=f"callback-{outcome}")
