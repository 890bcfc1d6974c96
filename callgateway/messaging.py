"""Inbound SMS: keep what patients text for staff (consent keywords are handled first)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from callgateway.db.models import Message
from callgateway.dbutil import insert_ignore
from callgateway.phone import ANONYMOUS
from callgateway.retention import retention_until
from callgateway.wiring import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InboundSms:
    message_sid: str
    phone: str  # E.164 or 'anonymous'
    clinic_number: str
    body: str


def inbound_sms(services: Services, event: InboundSms) -> str | None:
    """Store the message; return the reply text, or None for no automated reply."""
    clinic = services.directory.by_number(event.clinic_number)
    if clinic is None or event.phone == ANONYMOUS:
        log.warning("sms to an unknown clinic number or from no number")
        return None
    now = services.clock()
    with services.db.session() as session:
        insert_ignore(
            session,
            Message,
            {
                "message_sid": event.message_sid,
                "clinic_id": clinic.id,
                "direction": "in",
                "phone": event.phone,
                "clinic_number": event.clinic_number,
                "body": event.body,
                "kind": "text",
                "status": "received",
                "handled": False,
                "created_at": now,
                "data_category": "message",
                "retention_until": retention_until(services.config, clinic, "message", now),
            },
            ["message_sid"],
        )
    return None
