"""Appointment reminders: planned when an appointment is booked or moved, cancelled with it,
sent by an RQ job that re-checks everything at send time.

Exactly once per (appointment, channel, offset, appointment start): the row is planned by
an INSERT ... ON CONFLICT DO NOTHING on that key and claimed with a guarded UPDATE
(scheduled -> sending) right before Twilio is asked, so duplicate jobs, several workers
and RQ retries send one message. A claim lost to a crash mid-send stays `sending`: a
reminder is never sent twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import Gather, VoiceResponse

from callgateway.adapters.twilio_rest import PermanentError, TransientError
from callgateway.calls import escalation
from callgateway.calls import log as call_log
from callgateway.calls.twiml import apology_and_hangup, say
from callgateway.config import Clinic
from callgateway.config.hours import parse_quiet_hours
from callgateway.config.retention import retention_until
from callgateway.db.insert import insert_new
from callgateway.db.models import Appointment
from callgateway.db.models_outbound import Reminder
from callgateway.outbound import booking_link, scheduling, wording
from callgateway.outbound.calling import CallKind, place_call
from callgateway.outbound.timing import place_reminder, shift_out_of_quiet
from callgateway.sms import delivery

if TYPE_CHECKING:
    from callgateway.wiring import Services

log = logging.getLogger(__name__)

CHANNELS = {"sms": "reminder_sms", "call": "reminder_call"}  # channel -> gated action
# A job that finds its reminder due later than this re-queues itself instead of sending.
EARLY_TOLERANCE = timedelta(seconds=60)
# Waits for the beep, so a voicemail gets a whole (detail-free) message.
CALL = CallKind(
    "reminder",
    "/twilio/outbound/reminder/call",
    ref="reminder",
    machine_detection="DetectMessageEnd",
)
ANSWER_PATH = "/twilio/outbound/reminder/answer"
GOODBYE = "Thank you. Goodbye."


def job_id(reminder_id: int) -> str:
    return f"reminder-{reminder_id}"


def _wanted(clinic: Clinic) -> list[tuple[str, int]]:
    plan = clinic.reminders
    pairs = [("sms", h) for h in plan.sms_hours_before] + [
        ("call", h) for h in plan.call_hours_before
    ]
    return sorted(set(pairs))


# Planning ------------------------------------------------------------------------------


def sends_any(clinic: Clinic) -> bool:
    """Whether the clinic's config plans any reminder at all."""
    return bool(_wanted(clinic))


def on_appointment_changed(services: Services, appointment_id: int) -> None:
    """Booking's hook, called after its commit: plan the appointment's reminders afresh.

    Never raises: the booking is already committed and the caller must hear that it
    worked. A failure is logged; `callgateway reminders resync` re-plans.
    """
    try:
        reschedule(services, appointment_id)
    except Exception:
        log.exception("reminders not rescheduled", extra={"appointment_id": appointment_id})


def reschedule(services: Services, appointment_id: int) -> list[int]:
    """Idempotent: plan from the appointment's current state; returns the pending ids.

    Pending reminders of an old start time, a cancelled appointment or a channel the
    clinic no longer uses are cancelled; missing ones are planned; jobs follow the commit.
    """
    now = services.clock()
    dropped: list[int] = []
    with services.db.session() as session:
        appt = session.get(Appointment, appointment_id)
        if appt is None:
            return []
        clinic = services.directory.by_id(appt.clinic_id)
        booked = appt.status == "booked" and clinic is not None
        wanted = _wanted(clinic) if booked and clinic else []
        existing = session.scalars(
            select(Reminder).where(Reminder.appointment_id == appointment_id)
        ).all()
        for row in existing:
            stale = row.starts_at != appt.starts_at or (row.channel, row.offset_hours) not in wanted
            if row.status == "scheduled" and stale:
                reason = "appointment-moved" if booked else "appointment-cancelled"
                if booked and row.starts_at == appt.starts_at:
                    reason = "config-changed"
                _move(session, row.id, "scheduled", "cancelled", now, reason=reason)
                dropped.append(row.id)
        if booked and clinic is not None:
            for channel, offset in wanted:
                _plan(services, session, clinic, appt, channel, offset, now)
        pending = session.execute(
            select(Reminder.id, Reminder.due_at).where(
                Reminder.appointment_id == appointment_id,
                Reminder.starts_at == appt.starts_at,
                Reminder.status == "scheduled",
            )
        ).all()
    # After the commit: a job must never run before the row it reads exists.
    for rid in dropped:
        scheduling.unschedule(services, job_id(rid))
    for rid, due in pending:
        scheduling.schedule(
            services, due or now, scheduling.SEND_REMINDER, rid, job_id=job_id(rid), retry=True
        )
    return [rid for rid, _ in pending]


def _plan(
    services: Services,
    session: Session,
    clinic: Clinic,
    appt: Appointment,
    channel: str,
    offset: int,
    now: datetime,
) -> None:
    quiet = parse_quiet_hours(clinic.reminders.quiet_hours)
    slot = place_reminder(appt.starts_at, offset, clinic.tz, quiet, now)
    status = "scheduled" if slot.send_at else "skipped"
    key = {
        "appointment_id": appt.id,
        "channel": channel,
        "offset_hours": offset,
        "starts_at": appt.starts_at,
    }
    inserted = insert_new(
        session,
        Reminder,
        {
            **key,
            "clinic_id": clinic.id,
            "due_at": slot.send_at,
            "status": status,
            "reason": slot.reason,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
            "data_category": "appointment",
            "retention_until": appt.retention_until
            or retention_until(services.config, clinic, "appointment", now),
        },
        list(key),
    )
    if not inserted:
        # Moved away and back again: the slot's cancelled row comes back to life.
        session.execute(
            update(Reminder)
            .where(*(getattr(Reminder, k) == v for k, v in key.items()))
            .where(Reminder.status == "cancelled")
            .values(status=status, due_at=slot.send_at, reason=slot.reason, updated_at=now)
        )


def _move(
    session: Session, reminder_id: int, old: str, new: str, now: datetime, **fields: object
) -> bool:
    """Guarded status change: True only for the one caller that made it."""
    result = session.execute(
        update(Reminder)
        .where(Reminder.id == reminder_id, Reminder.status == old)
        .values(status=new, updated_at=now, **fields)
    )
    return bool(result.rowcount)


def resync(services: Services) -> int:
    """Re-enqueue every pending reminder (after a Redis loss); jobs are keyed, so no dupes."""
    with services.db.session() as session:
        rows = session.execute(
            select(Reminder.id, Reminder.due_at).where(Reminder.status == "scheduled")
        ).all()
    for rid, due in rows:
        scheduling.schedule(
            services,
            due or services.clock(),
            scheduling.SEND_REMINDER,
            rid,
            job_id=job_id(rid),
            retry=True,
        )
    return len(rows)


# Sending -------------------------------------------------------------------------------


def send(services: Services, reminder_id: int) -> str:
    """The job: re-check, claim, ask the gate, send. Returns what happened (for the log)."""
    now = services.clock()
    with services.db.session() as session:
        row = session.get(Reminder, reminder_id)
        if row is None:
            return "gone"
        if row.status != "scheduled":
            return f"already-{row.status}"
        appt = session.get(Appointment, row.appointment_id)
        clinic = services.directory.by_id(row.clinic_id)
        verdict = _still_wanted(row, appt, clinic, now)
        if verdict is not None:
            status, reason = verdict
            _move(session, row.id, "scheduled", status, now, reason=reason)
            return reason
        assert appt is not None and clinic is not None
        if row.due_at is not None and row.due_at > now + EARLY_TOLERANCE:
            later: datetime | None = row.due_at
        else:
            quiet = parse_quiet_hours(clinic.reminders.quiet_hours)
            slot = shift_out_of_quiet(now, appt.starts_at, clinic.tz, quiet)
            if slot.send_at is None:
                _move(session, row.id, "scheduled", "skipped", now, reason="quiet-hours")
                return "quiet-hours"
            later = slot.send_at if slot.send_at > now else None
            if later is not None:
                session.execute(update(Reminder).where(Reminder.id == row.id).values(due_at=later))
        if later is None and not _move(
            session, row.id, "scheduled", "sending", now, attempts=row.attempts + 1
        ):
            return "claimed-elsewhere"
        phone, starts_at, channel = appt.phone, appt.starts_at, row.channel
    if later is not None:
        scheduling.schedule(
            services,
            later,
            scheduling.SEND_REMINDER,
            reminder_id,
            job_id=job_id(reminder_id),
            retry=True,
        )
        return "deferred"
    return _deliver(services, reminder_id, clinic, phone, starts_at, channel)


def _still_wanted(
    row: Reminder, appt: Appointment | None, clinic: Clinic | None, now: datetime
) -> tuple[str, str] | None:
    if appt is None or appt.status != "booked":
        return "cancelled", "appointment-cancelled"
    if appt.starts_at != row.starts_at:
        return "cancelled", "appointment-moved"
    if clinic is None:
        return "skipped", "unknown-clinic"
    if now >= appt.starts_at:
        return "skipped", "appointment-passed"
    return None


def _finish(services: Services, reminder_id: int, status: str, **fields: object) -> None:
    now = services.clock()
    with services.db.session() as session:
        _move(session, reminder_id, "sending", status, now, **fields)


def _deliver(
    services: Services,
    reminder_id: int,
    clinic: Clinic,
    phone: str,
    starts_at: datetime,
    channel: str,
) -> str:
    decision = services.gate.may(clinic.id, phone, CHANNELS[channel], ledger_only=True)
    if not decision.allowed:
        _finish(services, reminder_id, "skipped", reason=decision.reason)
        log.info("reminder not sent", extra={"reminder_id": reminder_id, "reason": decision.reason})
        return decision.reason
    try:
        if channel == "sms":
            sid = delivery.send_sms(
                services,
                clinic,
                phone,
                sms_body(clinic, starts_at),
                kind="reminder",
                idempotency_key=f"reminder:{reminder_id}",
            )
        else:
            sid = place_call(services, clinic, phone, CALL, reminder_id)
    except TransientError:
        # Release the claim so that RQ's retry of this job may send it.
        _finish(services, reminder_id, "scheduled")
        raise
    except delivery.OptedOutAtTwilio:
        _finish(services, reminder_id, "skipped", reason="opted-out-at-twilio")
        return "opted-out-at-twilio"
    except PermanentError as exc:
        _finish(services, reminder_id, "failed", reason=f"twilio-{exc.code or exc.status}")
        log.warning("reminder failed", extra={"reminder_id": reminder_id, "code": exc.code})
        return "failed"
    _finish(services, reminder_id, "sent", twilio_sid=sid or None, sent_at=services.clock())
    log.info("reminder sent", extra={"reminder_id": reminder_id, "channel": channel})
    return "sent"


def sms_body(clinic: Clinic, starts_at: datetime) -> str:
    # No appointment type or name: a text can be read by whoever holds the phone.
    return (
        f"Reminder from {clinic.name}: you have an appointment on "
        f"{wording.when(starts_at, clinic)}. To change or cancel it, call "
        f"{wording.national(delivery.clinic_number(clinic))}. Reply STOP to opt out."
    )


def delivery_failed(services: Services, reminder_id: int, status: str) -> None:
    """A status callback said the SMS or call never reached the patient."""
    with services.db.session() as session:
        _move(session, reminder_id, "sent", "failed", services.clock(), reason=status)


# The reminder call -----------------------------------------------------------------------


def _context(services: Services, reminder_id: int) -> tuple[Reminder, Appointment, Clinic] | None:
    with services.db.session() as session:
        row = session.get(Reminder, reminder_id)
        appt = session.get(Appointment, row.appointment_id) if row else None
    clinic = services.directory.by_id(row.clinic_id) if row else None
    if row is None or appt is None or clinic is None:
        return None
    return row, appt, clinic


def _menu(services: Services, resp: VoiceResponse, reminder_id: int, clinic: Clinic) -> None:
    gather = resp.gather(
        input="dtmf",
        num_digits=1,
        timeout=8,
        action=services.url(f"{ANSWER_PATH}?reminder={reminder_id}"),
        method="POST",
    )
    _say(
        gather,
        "To confirm, press 1. To cancel, press 2. To speak to a member of our team, press 0.",
        clinic,
    )


def _say(target: VoiceResponse | Gather, text: str, clinic: Clinic) -> None:
    target.say(text, language=clinic.language)


def call_twiml(services: Services, reminder_id: int, answered_by: str | None) -> str:
    """What the patient hears when the reminder call connects."""
    ctx = _context(services, reminder_id)
    if ctx is None:
        return apology_and_hangup("Sorry, this reminder is no longer available. Goodbye.")
    _row, appt, clinic = ctx
    resp = VoiceResponse()
    if (answered_by or "").startswith(("machine", "fax")):
        # A voicemail others may hear: who is calling and a number, no appointment details.
        say(
            resp,
            f"Hello, this is {clinic.name} with a reminder about your upcoming appointment. "
            f"If you need to change it, please call us on "
            f"{wording.national(delivery.clinic_number(clinic))}. Goodbye.",
            clinic,
        )
        resp.hangup()
        return str(resp)
    if appt.status != "booked":
        say(resp, f"Hello, this is {clinic.name}. This appointment has been cancelled.", clinic)
        resp.hangup()
        return str(resp)
    say(
        resp,
        f"Hello, this is {clinic.name} with a reminder of your appointment on "
        f"{wording.when(appt.starts_at, clinic)}.",
        clinic,
    )
    _menu(services, resp, reminder_id, clinic)
    _menu(services, resp, reminder_id, clinic)  # once more if nothing was pressed
    say(resp, GOODBYE, clinic)
    resp.hangup()
    return str(resp)


def answer_twiml(
    services: Services, reminder_id: int, call_sid: str, digits: str, step: str | None
) -> str:
    """The patient pressed a key: 1 confirm, 2 cancel (then 2 again to be sure), 0 a person."""
    ctx = _context(services, reminder_id)
    if ctx is None:
        return apology_and_hangup("Sorry, this reminder is no longer available. Goodbye.")
    _row, appt, clinic = ctx
    resp = VoiceResponse()
    if step == "cancel":
        if digits == "2":
            return _cancel(services, reminder_id, appt, clinic, resp)
        digits = "1" if digits == "1" else ""
    if digits == "1":
        _respond(services, reminder_id, "confirmed")
        say(
            resp, "Thank you, your appointment is confirmed. We look forward to seeing you.", clinic
        )
        resp.hangup()
    elif digits == "2" and appt.status == "booked":
        gather = resp.gather(
            input="dtmf",
            num_digits=1,
            timeout=8,
            action=services.url(f"{ANSWER_PATH}?reminder={reminder_id}&step=cancel"),
            method="POST",
        )
        _say(
            gather,
            f"To cancel your appointment on {wording.when(appt.starts_at, clinic)}, press 2 "
            "again. To keep it, press 1.",
            clinic,
        )
        say(resp, "Your appointment has not been changed. " + GOODBYE, clinic)
        resp.hangup()
    elif digits == "0":
        _respond(services, reminder_id, "person")
        call = call_log.get_call(services, call_sid)
        if call is None:
            return apology_and_hangup("Sorry, please call the clinic. Goodbye.")
        escalation.to_person(services, call, clinic, resp, reason="reminder-call")
    else:
        say(resp, "Sorry, I did not get that.", clinic)
        _menu(services, resp, reminder_id, clinic)
        say(resp, GOODBYE, clinic)
        resp.hangup()
    return str(resp)


def _cancel(
    services: Services, reminder_id: int, appt: Appointment, clinic: Clinic, resp: VoiceResponse
) -> str:
    if appt.status == "booked":
        if not booking_link.cancel(services, appt, clinic):
            say(
                resp,
                "Sorry, I could not cancel it just now. Please call us on "
                f"{wording.national(delivery.clinic_number(clinic))}. Goodbye.",
                clinic,
            )
            resp.hangup()
            return str(resp)
        on_appointment_changed(services, appt.id)  # its reminders are dropped
    _respond(services, reminder_id, "cancelled")
    say(
        resp, "Your appointment has been cancelled. Thank you for letting us know. Goodbye.", clinic
    )
    resp.hangup()
    return str(resp)


def _respond(services: Services, reminder_id: int, response: str) -> None:
    with services.db.session() as session:
        session.execute(
            update(Reminder)
            .where(Reminder.id == reminder_id)
            .values(response=response, updated_at=services.clock())
        )
