"""Twilio's status callbacks for what we sent: the call log, then the sender's next step."""

from __future__ import annotations

from typing import TYPE_CHECKING

from callgateway.calls import log as call_log
from callgateway.events import CallStatus
from callgateway.outbound import alerts, checkins, reminders
from callgateway.sms import delivery

if TYPE_CHECKING:
    from callgateway.wiring import Services

UNDELIVERED = frozenset({"failed", "undelivered"})
NOT_REACHED = frozenset({"busy", "no-answer", "failed", "canceled"})


def call_status(services: Services, event: CallStatus) -> None:
    """Idempotent: the call log moves forward only, and an attempt ends only once."""
    with services.db.session() as session:
        changed = call_log.apply_status(
            session, event.call_sid, event.status, services.clock(), event.duration_seconds
        )
        if changed and event.status in call_log.TERMINAL and event.status == "completed":
            machine = (event.answered_by or "").startswith(("machine", "fax"))
            call_log.note(session, event.call_sid, handled_by="none" if machine else "ai")
    if event.status not in call_log.TERMINAL:
        return
    if event.kind == "attempt":
        checkins.call_ended(services, event.ref_id, event.answered_by)
    elif event.kind == "reminder" and event.status in NOT_REACHED:
        reminders.delivery_failed(services, event.ref_id, event.status)
    elif event.kind == "alert" and event.status in NOT_REACHED:
        alerts.delivery_failed(services, event.ref_id, event.status)


def message_status(services: Services, event: delivery.MessageStatus) -> None:
    key = delivery.message_status(services, event)
    if key is None or event.status not in UNDELIVERED:
        return
    kind, _, ref = key.partition(":")
    if not ref.isdigit():
        return
    if kind == "reminder":
        reminders.delivery_failed(services, int(ref), event.status)
    elif kind == "checkin-alert":
        alerts.delivery_failed(services, int(ref), event.status)
