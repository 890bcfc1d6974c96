"""Sending an outbound SMS: Twilio REST, the messages table, delivery status callbacks, and
Twilio's 21610 (recipient opted out there). Calls are placed by `outbound.calling`.

Callers ask the consent gate and claim their idempotency row before they get here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callgateway import metrics
from callgateway.adapters.twilio_rest import AmbiguousError, PermanentError
from callgateway.config import Clinic
from callgateway.config.retention import retention_until
from callgateway.db.insert import insert_ignore
from callgateway.db.models import Message
from callgateway.events import MessageStatus
from callgateway.phone import ANONYMOUS, mask

if TYPE_CHECKING:
    from callgateway.wiring import Services

log = logging.getLogger(__name__)

# Twilio: "Attempt to send to unsubscribed recipient" (the number texted STOP to Twilio).
UNSUBSCRIBED = 21610
# A message whose send timed out after it went out: Twilio may have it; look before resending.
UNKNOWN = "unknown"
SMS_STATUS_PATH = "/twilio/outbound/sms/status"
_MESSAGE_RANK = {
    "sending": 0,
    "accepted": 1,
    "queued": 1,
    "sent": 2,
    "delivered": 3,
    "read": 4,
    "undelivered": 5,
    "failed": 5,
}


class OptedOutAtTwilio(PermanentError):
    """Twilio refused the message with 21610; the opt-out is now in our ledger too."""


def clinic_number(clinic: Clinic) -> str:
    """The number outbound contact comes from: the clinic's first, the one patients know."""
    return clinic.numbers[0]


def record_twilio_opt_out(services: Services, clinic: Clinic, phone: str, source_id: str) -> None:
    services.consent.record_opt_out(clinic.id, phone, "sms", source_id)
    log.warning(
        "recipient opted out at twilio (21610): recorded",
        extra={"clinic": clinic.id, "to": mask(phone)},
    )


def send_sms(
    services: Services,
    clinic: Clinic,
    to: str,
    body: str,
    *,
    kind: str,
    idempotency_key: str,
) -> str:
    """Send one SMS with a signed status callback; returns the MessageSid.

    The message row is written (keyed by `idempotency_key`) before Twilio is asked, so a
    delivery callback always finds it. A 21610 refusal records the opt-out and raises
    OptedOutAtTwilio; other Twilio errors propagate classified (Transient/Permanent).
    """
    assert services.twilio is not None
    now = services.clock()
    with services.db.session() as session:
        fresh = insert_ignore(
            session,
            Message,
            {
                "message_sid": None,
                "idempotency_key": idempotency_key,
                "clinic_id": clinic.id,
                "direction": "out",
                "phone": to,
                "clinic_number": clinic_number(clinic),
                "body": body,
                "kind": kind,
                "status": "sending",
                "handled": True,
                "created_at": now,
                "data_category": "message",
                "retention_until": retention_until(services.config, clinic, "message", now),
            },
            ["idempotency_key"],
        )
        earlier = None if fresh else _message(session, idempotency_key)
    if earlier is not None and earlier.message_sid:
        return earlier.message_sid  # sent by an earlier try whose job did not finish
    if earlier is not None:
        adopted = adopt_if_sent(services, earlier, to, clinic_number(clinic), body)
        if adopted is not None:
            return adopted
    try:
        result = services.twilio.send_sms(
            to, clinic_number(clinic), body, status_callback=services.url(SMS_STATUS_PATH)
        )
    except AmbiguousError:
        _set_message(services, idempotency_key, status=UNKNOWN)
        raise
    except PermanentError as exc:
        metrics.SMS.labels("failed").inc()
        status = "opted-out" if exc.code == UNSUBSCRIBED else "failed"
        _set_message(services, idempotency_key, status=status)
        if exc.code == UNSUBSCRIBED:
            record_twilio_opt_out(services, clinic, to, f"twilio-21610:{idempotency_key}")
            raise OptedOutAtTwilio(str(exc), exc.status, exc.code) from None
        raise
    metrics.SMS.labels("sent").inc()
    sid = str(result.get("sid") or "")
    _set_message(
        services, idempotency_key, message_sid=sid or None, status=result.get("status") or "queued"
    )
    return sid


def adopt_if_sent(
    services: Services, earlier: Message, to: str, from_: str, body: str
) -> str | None:
    """`earlier`'s send timed out after the request went out (status UNKNOWN): if Twilio
    has the message, record its sid and status on the row and return the sid; else None,
    and the caller sends. Raises what the adapter raises."""
    if earlier.status != UNKNOWN or earlier.idempotency_key is None:
        return None
    assert services.twilio is not None
    found = services.twilio.find_sms(to, from_, body, earlier.created_at)
    if not found:
        return None
    sid = str(found.get("sid") or "")
    status = str(found.get("status") or "queued")[:24]
    _set_message(services, earlier.idempotency_key, message_sid=sid or None, status=status)
    return sid


def _message(session: Session, idempotency_key: str) -> Message | None:
    return session.scalars(
        select(Message).where(Message.idempotency_key == idempotency_key)
    ).one_or_none()


def _set_message(services: Services, idempotency_key: str, **fields: object) -> None:
    with services.db.session() as session:
        session.execute(
            update(Message).where(Message.idempotency_key == idempotency_key).values(**fields)
        )


def message_status(services: Services, event: MessageStatus) -> str | None:
    """Move the message's delivery status forward; 21610 records the opt-out.

    Returns the idempotency key of the message (e.g. `reminder:12`) so the caller can
    mark the thing that sent it, or None when the message is not ours.
    """
    with services.db.session() as session:
        message = session.scalars(
            select(Message).where(Message.message_sid == event.message_sid)
        ).one_or_none()
        if message is not None and _MESSAGE_RANK.get(event.status, 0) > _MESSAGE_RANK.get(
            message.status, 0
        ):
            message.status = event.status
        key = message.idempotency_key if message is not None else None
    if event.error_code == UNSUBSCRIBED:
        clinic = services.directory.by_number(event.from_)
        phone = message.phone if message is not None else event.to
        if clinic is not None and phone and phone != ANONYMOUS:
            record_twilio_opt_out(services, clinic, phone, f"twilio-21610:{event.message_sid}")
    return key
