"""Alerts to a check-in's receivers: an SMS and a call each, saying who did not answer.

One alert per (schedule, occurrence, receiver, channel), claimed by an INSERT ... ON CONFLICT before
Twilio is asked; a transient failure marks the row `retry` and raises, so RQ's retry of
the job sends only what is still missing. Receivers pass the consent gate like anyone:
an opted-out receiver is skipped and the skip is shown to staff in the daily summary.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from twilio.twiml.voice_response import VoiceResponse

from callgateway.adapters.twilio_rest import PermanentError, TransientError
from callgateway.calls.twiml import apology_and_hangup
from callgateway.config import Clinic
from callgateway.config.retention import retention_until
from callgateway.db.insert import insert_new
from callgateway.db.models_outbound import CheckinAlert, CheckinAttempt, CheckinSchedule
from callgateway.outbound import wording
from callgateway.outbound.calling import CallKind, place_call
from callgateway.phone import mask
from callgateway.sms import delivery

if TYPE_CHECKING:
    from callgateway.wiring import Services

log = logging.getLogger(__name__)

# On a voicemail the message is left after the beep.
CALL = CallKind(
    "alert", "/twilio/outbound/alert/call", ref="alert", machine_detection="DetectMessageEnd"
)
GATED = {"sms": "automated_sms", "call": "checkin_call"}


def _what(reason: str) -> str:
    if reason == "help":
        return "asked for help during"
    if reason == "unconfirmed":
        return "answered but did not confirm they are OK on"
    return "did not answer"


def sms_text(
    clinic: Clinic, row: CheckinSchedule, occurrence: datetime, reason: str, calls: int
) -> str:
    at = occurrence.astimezone(clinic.tz).strftime("%H:%M")
    tries = f" ({calls} call{'s' if calls != 1 else ''})" if reason != "help" else ""
    return (
        f"{clinic.name} check-in alert: {wording.who_in_text(row.display_name, row.phone)} "
        f"{_what(reason)} today's {at} check-in call{tries}. Please check on them."
    )


def spoken_text(clinic: Clinic, row: CheckinSchedule, occurrence: datetime, reason: str) -> str:
    at = occurrence.astimezone(clinic.tz).strftime("%H:%M")
    return (
        f"This is an automated check-in alert from {clinic.name}. "
        f"{wording.who_spoken(row.display_name, row.phone)} {_what(reason)} today's {at} "
        "check-in call. Please check on them."
    )


def raise_alerts(services: Services, schedule_id: int, occurrence: datetime, reason: str) -> str:
    """The job: every receiver gets an SMS and a call, once."""
    with services.db.session() as session:
        row = session.get(CheckinSchedule, schedule_id)
        n_calls = len(
            session.scalars(
                select(CheckinAttempt.id).where(
                    CheckinAttempt.schedule_id == schedule_id,
                    CheckinAttempt.occurrence == occurrence,
                    CheckinAttempt.call_sid.is_not(None),
                )
            ).all()
        )
    clinic = services.directory.by_id(row.clinic_id) if row else None
    if row is None or clinic is None:
        return "gone"
    log.warning(
        "check-in alert",
        extra={"schedule_id": schedule_id, "reason": reason, "to": mask(row.phone)},
    )
    transient = False
    for receiver in row.alert_numbers:
        for channel in ("sms", "call"):
            alert_id = _claim(services, row, clinic, occurrence, receiver, channel, reason)
            if alert_id is None:
                continue
            try:
                _send(
                    services, alert_id, row, clinic, occurrence, receiver, channel, reason, n_calls
                )
            except TransientError:
                _set(services, alert_id, "retry", detail="twilio-transient")
                transient = True
    if transient:
        raise TransientError("some check-in alerts are still to send")
    return "alerted"


def _claim(
    services: Services,
    row: CheckinSchedule,
    clinic: Clinic,
    occurrence: datetime,
    receiver: str,
    channel: str,
    reason: str,
) -> int | None:
    now = services.clock()
    key = {
        "schedule_id": row.id,
        "occurrence": occurrence,
        "phone": receiver,
        "channel": channel,
    }
    with services.db.session() as session:
        new_id = insert_new(
            session,
            CheckinAlert,
            {
                **key,
                "clinic_id": clinic.id,
                "reason": reason,
                "status": "sending",
                "detail": None,
                "twilio_sid": None,
                "created_at": now,
                "updated_at": now,
                "data_category": "call-metadata",
                "retention_until": retention_until(services.config, clinic, "call-metadata", now),
            },
            list(key),
        )
        if new_id is not None:
            return new_id
        # Only a row a transient failure gave back may be taken again.
        where = [getattr(CheckinAlert, k) == v for k, v in key.items()]
        return session.execute(
            update(CheckinAlert)
            .where(*where, CheckinAlert.status == "retry")
            .values(status="sending", updated_at=now)
            .returning(CheckinAlert.id)
        ).scalar_one_or_none()


def _set(services: Services, alert_id: int, status: str, **fields: object) -> None:
    with services.db.session() as session:
        session.execute(
            update(CheckinAlert)
            .where(CheckinAlert.id == alert_id)
            .values(status=status, updated_at=services.clock(), **fields)
        )


def _send(
    services: Services,
    alert_id: int,
    row: CheckinSchedule,
    clinic: Clinic,
    occurrence: datetime,
    receiver: str,
    channel: str,
    reason: str,
    n_calls: int,
) -> None:
    decision = services.gate.may(clinic.id, receiver, GATED[channel], ledger_only=True)
    if not decision.allowed:
        _set(services, alert_id, "skipped", detail=decision.reason)
        log.warning(
            "check-in alert receiver not reachable by consent",
            extra={"schedule_id": row.id, "to": mask(receiver), "reason": decision.reason},
        )
        return
    try:
        if channel == "sms":
            sid = delivery.send_sms(
                services,
                clinic,
                receiver,
                sms_text(clinic, row, occurrence, reason, n_calls),
                kind="checkin-alert",
                idempotency_key=f"checkin-alert:{alert_id}",
            )
        else:
            sid = place_call(services, clinic, receiver, CALL, alert_id)
    except delivery.OptedOutAtTwilio:
        _set(services, alert_id, "skipped", detail="opted-out-at-twilio")
        return
    except TransientError:
        raise
    except PermanentError as exc:
        _set(services, alert_id, "failed", detail=f"twilio-{exc.code or exc.status}")
        log.error("check-in alert failed", extra={"schedule_id": row.id, "code": exc.code})
        return
    _set(services, alert_id, "sent", twilio_sid=sid or None)


def call_twiml(services: Services, alert_id: int) -> str:
    with services.db.session() as session:
        alert = session.get(CheckinAlert, alert_id)
        row = session.get(CheckinSchedule, alert.schedule_id) if alert else None
    clinic = services.directory.by_id(row.clinic_id) if row else None
    if alert is None or row is None or clinic is None:
        return apology_and_hangup("Goodbye.")
    text = spoken_text(clinic, row, alert.occurrence, alert.reason)
    resp = VoiceResponse()
    resp.say(text, language=clinic.language)
    resp.pause(length=1)
    resp.say("Again: " + text, language=clinic.language)
    resp.hangup()
    return str(resp)


def delivery_failed(services: Services, alert_id: int, status: str) -> None:
    with services.db.session() as session:
        session.execute(
            update(CheckinAlert)
            .where(CheckinAlert.id == alert_id, CheckinAlert.status == "sent")
            .values(status="failed", detail=status, updated_at=services.clock())
        )
