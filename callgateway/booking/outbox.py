"""Durable side effects of a booking: the bucket copy and the confirmation SMS.

The outbox row is inserted in the same transaction as the appointment change, so either
both exist or neither does. After the commit an RQ job delivers it; if Redis is down, the
worker is busy or the bucket is out, the row stays pending and the sweeper (`callgateway
outbox drain`, or the job's own scheduled retry) delivers it later. Nothing is lost and
nothing is sent before the commit (warehouse's rule).

Delivery claims a row with a conditional UPDATE (a lease), so a job and a sweeper racing
for the same row do the work once. The bucket write renders the appointment as it stands
at delivery time, so a late retry never overwrites a newer state with an older one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import redis
from sqlalchemy import insert, or_, select, update
from sqlalchemy.orm import Session

from callgateway import metrics
from callgateway.adapters.storage import RegionViolation
from callgateway.adapters.twilio_rest import AmbiguousError, PermanentError, TwilioError
from callgateway.booking.appointments import document
from callgateway.booking.dates import say_when
from callgateway.config import Clinic
from callgateway.config.retention import retention_until
from callgateway.db.insert import insert_ignore
from callgateway.db.models import Appointment, Message, OutboxItem
from callgateway.db.objects import object_written, record_object
from callgateway.sms.delivery import UNKNOWN, adopt_if_sent

if TYPE_CHECKING:
    from callgateway.wiring import Services

log = logging.getLogger(__name__)

APPOINTMENT_JSON = "appointment-json"
APPOINTMENT_SMS = "appointment-sms"
LEASE = timedelta(minutes=2)
MAX_BACKOFF = timedelta(hours=1)
# A confirmation a day late is noise; the bucket copy, by contrast, is retried for ever.
MAX_SMS_ATTEMPTS = 8


def appointment_key(clinic_id: str, ref: str) -> str:
    return f"clinics/{clinic_id}/appointments/{ref}.json"


_INSERT_ITEM = insert(OutboxItem.__table__).returning(OutboxItem.__table__.c.id)


def _add(
    session: Session,
    kind: str,
    clinic_id: str,
    payload: dict[str, Any],
    now: datetime,
    keep_until: date,
) -> int:
    # Core, not the ORM: a booking turn adds two of these, and the unit of work around
    # each add-and-flush cost more than the insert.
    row = {
        "kind": kind,
        "clinic_id": clinic_id,
        "payload": payload,
        "created_at": now,
        "attempts": 0,
        "next_attempt_at": None,
        "data_category": "appointment",
        "retention_until": keep_until,
    }
    return int(session.connection().execute(_INSERT_ITEM, row).scalar_one())


def appointment_changed(
    session: Session,
    clinic: Clinic,
    appointment: Appointment,
    event: str,
    now: datetime,
    sms_from: str | None = None,
) -> list[int]:
    """Queue the bucket copy (and, when the gate allowed it, the SMS) in the caller's
    transaction. `event` is booked | moved | cancelled. Returns the outbox ids."""
    payload = {"appointment_id": appointment.id, "ref": appointment.ref, "event": event}
    ids = [_add(session, APPOINTMENT_JSON, clinic.id, payload, now, appointment.retention_until)]
    # The copy's ledger row, with its outbox entry: the retention sweep finds it from here.
    record_object(
        session,
        clinic_id=clinic.id,
        region=clinic.region,
        key=appointment_key(clinic.id, appointment.ref),
        category="appointment",
        retention_until=appointment.retention_until,
        now=now,
    )
    if sms_from:
        ids.append(
            _add(
                session,
                APPOINTMENT_SMS,
                clinic.id,
                {**payload, "from": sms_from, "starts_at": appointment.starts_at.isoformat()},
                now,
                appointment.retention_until,
            )
        )
    return ids


# The worker's entry point, by the dotted path RQ stores (it lives with the other jobs,
# which wire their own Services: booking itself never wires).
DELIVER_JOB = "callgateway.jobs.outbox.deliver_job"


def enqueue(services: Services, ids: list[int]) -> None:
    """After commit: hand each item to the worker. A failure here only delays delivery."""
    if services.queue is None:
        return
    queue = services.queue
    jobs = [queue.prepare_data(DELIVER_JOB, (i,), job_id=f"outbox-{i}") for i in ids]
    try:
        queue.enqueue_many(jobs)  # one Redis round trip for all of them
    except redis.RedisError:
        log.warning("outbox enqueue failed; the sweeper will deliver", extra={"items": ids})


# --- Delivery --------------------------------------------------------------------------


class Retry(Exception):
    """Transient: try again later."""


class GiveUp(Exception):
    """Permanent: retrying cannot help; recorded on the row."""


@dataclass(frozen=True)
class Result:
    item_id: int
    status: str  # done | retry | failed | skipped
    detail: str = ""


def backoff(attempts: int) -> timedelta:
    return min(MAX_BACKOFF, timedelta(seconds=15 * 2 ** max(0, attempts - 1)))


def _claim(services: Services, item_id: int, now: datetime) -> OutboxItem | None:
    with services.db.session() as session:
        claimed = session.execute(
            update(OutboxItem)
            .where(
                OutboxItem.id == item_id,
                OutboxItem.done_at.is_(None),
                or_(OutboxItem.next_attempt_at.is_(None), OutboxItem.next_attempt_at <= now),
            )
            .values(next_attempt_at=now + LEASE, attempts=OutboxItem.attempts + 1)
        ).rowcount
        if not claimed:
            return None
        return session.get(OutboxItem, item_id)


def _finish(services: Services, item: OutboxItem, now: datetime, error: str | None) -> None:
    with services.db.session() as session:
        session.execute(
            update(OutboxItem).where(OutboxItem.id == item.id).values(done_at=now, last_error=error)
        )


def _postpone(services: Services, item: OutboxItem, now: datetime, error: str) -> None:
    with services.db.session() as session:
        session.execute(
            update(OutboxItem)
            .where(OutboxItem.id == item.id)
            .values(next_attempt_at=now + backoff(item.attempts), last_error=error)
        )


def deliver(services: Services, item_id: int) -> Result:
    """Deliver one item now if it is due and nobody else holds it."""
    now = services.clock()
    item = _claim(services, item_id, now)
    if item is None:
        return Result(item_id, "skipped", "not due, done or held by another worker")
    clinic = services.directory.by_id(item.clinic_id)
    try:
        if clinic is None:
            raise GiveUp(f"clinic {item.clinic_id!r} no longer configured")
        if item.kind == APPOINTMENT_JSON:
            detail = _put_appointment(services, clinic, item)
        elif item.kind == APPOINTMENT_SMS:
            detail = _send_sms(services, clinic, item, now)
        else:
            raise GiveUp(f"unknown outbox kind {item.kind!r}")
    except Retry as exc:
        if item.kind == APPOINTMENT_SMS and item.attempts >= MAX_SMS_ATTEMPTS:
            _finish(services, item, now, f"gave up: {exc}")
            log.warning("outbox item given up", extra={"item": item.id, "kind": item.kind})
            return Result(item.id, "failed", str(exc))
        _postpone(services, item, now, str(exc))
        log.warning(
            "outbox delivery failed; will retry",
            extra={"item": item.id, "kind": item.kind, "error": str(exc)},
        )
        return Result(item.id, "retry", str(exc))
    except GiveUp as exc:
        _finish(services, item, now, f"permanent: {exc}")
        log.error("outbox item failed permanently", extra={"item": item.id, "error": str(exc)})
        return Result(item.id, "failed", str(exc))
    except Exception as exc:  # a bug or a database blip: keep the item, try again later
        _postpone(services, item, now, f"unexpected: {type(exc).__name__}")
        log.exception("outbox delivery crashed; will retry", extra={"item": item.id})
        return Result(item.id, "retry", type(exc).__name__)
    _finish(services, item, services.clock(), None)
    return Result(item.id, "done", detail)


def _appointment(services: Services, appointment_id: int) -> Appointment | None:
    with services.db.session() as session:
        return session.get(Appointment, appointment_id)


def _put_appointment(services: Services, clinic: Clinic, item: OutboxItem) -> str:
    appointment = _appointment(services, int(item.payload["appointment_id"]))
    if appointment is None:
        # Erased (rights erase or retention) before we got here: nothing left to copy.
        return "appointment gone"
    if services.storage is None:
        raise Retry("no storage configured")
    body = json.dumps(document(appointment, clinic), indent=2, sort_keys=True).encode()
    try:
        stored = services.storage.put(
            clinic,
            appointment_key(clinic.id, appointment.ref),
            body,
            category="appointment",
            retention_until=appointment.retention_until,
            content_type="application/json",
        )
    except RegionViolation as exc:
        raise GiveUp(str(exc)) from None
    except Exception as exc:  # botocore's many error types: any bucket trouble is retried
        raise Retry(f"bucket write failed: {type(exc).__name__}") from None
    with services.db.session() as session:
        object_written(session, stored.key, stored.version_id)
    return f"{stored.region}:{stored.bucket}/{stored.key}"


def sms_body(clinic: Clinic, appointment: Appointment, event: str) -> str:
    kind = clinic.appointment_type(appointment.type_id)
    what = kind.name if kind else "appointment"
    when = say_when(appointment.starts_at, clinic.tz, clinic.language)
    if event == "cancelled":
        text = f"your {what} on {when} is cancelled"
    elif event == "moved":
        text = f"your {what} has moved to {when}"
    else:
        text = f"your {what} is booked for {when}"
    return f"{clinic.name}: {text}. Ref {appointment.ref}. Reply STOP to opt out."


def _send_sms(services: Services, clinic: Clinic, item: OutboxItem, now: datetime) -> str:
    appointment = _appointment(services, int(item.payload["appointment_id"]))
    if appointment is None:
        return "appointment gone"
    # Asked again at send time: a STOP that arrived since the booking wins.
    decision = services.gate.may(clinic.id, appointment.phone, "automated_sms", ledger_only=True)
    if not decision.allowed:
        return f"not sent: {decision.reason}"
    if services.twilio is None:
        raise Retry("no twilio adapter")
    key = f"outbox:{item.id}"
    body = sms_body(clinic, appointment, str(item.payload.get("event", "booked")))
    with services.db.session() as session:
        insert_ignore(
            session,
            Message,
            {
                "idempotency_key": key,
                "clinic_id": clinic.id,
                "direction": "out",
                "phone": appointment.phone,
                "clinic_number": item.payload["from"],
                "body": body,
                "kind": "appointment-confirmation",
                "status": "queued",
                "handled": True,
                "created_at": now,
                "data_category": "message",
                "retention_until": retention_until(services.config, clinic, "message", now),
            },
            ["idempotency_key"],
        )
        message = session.scalars(select(Message).where(Message.idempotency_key == key)).one()
        if message.message_sid:
            return "already sent"
    try:
        if (
            adopt_if_sent(services, message, appointment.phone, item.payload["from"], body)
            is not None
        ):
            return "sent (found at Twilio after a timeout)"
        sent = services.twilio.send_sms(appointment.phone, item.payload["from"], body)
    except PermanentError as exc:
        metrics.SMS.labels("failed").inc()
        _mark_message(services, key, status="failed")
        raise GiveUp(f"twilio refused: {exc}") from None
    except AmbiguousError as exc:
        _mark_message(services, key, status=UNKNOWN)
        raise Retry(f"twilio: {exc}") from None
    except TwilioError as exc:
        raise Retry(f"twilio: {exc}") from None
    metrics.SMS.labels("sent").inc()
    _mark_message(services, key, status=str(sent.get("status") or "queued"), sid=sent.get("sid"))
    return "sent"


def _mark_message(services: Services, key: str, status: str, sid: str | None = None) -> None:
    values: dict[str, Any] = {"status": status[:24]}
    if sid:
        values["message_sid"] = sid
    with services.db.session() as session:
        session.execute(update(Message).where(Message.idempotency_key == key).values(**values))


def pending(services: Services, now: datetime | None = None, limit: int = 100) -> list[int]:
    now = now or services.clock()
    with services.db.session() as session:
        return list(
            session.scalars(
                select(OutboxItem.id)
                .where(
                    OutboxItem.done_at.is_(None),
                    or_(OutboxItem.next_attempt_at.is_(None), OutboxItem.next_attempt_at <= now),
                )
                .order_by(OutboxItem.id)
                .limit(limit)
            )
        )


def sweep(services: Services, limit: int = 100) -> dict[str, int]:
    """Deliver every item that is due. Returns counts by result."""
    counts: dict[str, int] = {"done": 0, "retry": 0, "failed": 0, "skipped": 0}
    for item_id in pending(services, limit=limit):
        counts[deliver(services, item_id).status] += 1
    return counts
