"""Inbound SMS: consent keywords first, then what patients text is kept for staff.

- STOP / START families: a consent event keyed by the MessageSid, and one confirmation.
- HELP / INFO: the clinic's name and how to opt out; kept as a handled message row, whose
  unique MessageSid is what stops a retried HELP from being answered twice.
- Anything else: a message row for staff (with its retention date), no automated reply.

A reply is only ever derived from "this MessageSid was new", so a Twilio retry gets none.
An SMS from a withheld or unusable number, or to a number no clinic claims, stores nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from callgateway.config import Clinic
from callgateway.config.retention import retention_until
from callgateway.db.insert import insert_ignore
from callgateway.db.models import Message
from callgateway.events import InboundSms
from callgateway.phone import ANONYMOUS
from consent import keywords
from consent import service as consent

if TYPE_CHECKING:
    from callgateway.wiring import Services

log = logging.getLogger(__name__)


class Unavailable(RuntimeError):
    """The message could not be recorded (database down): nothing was confirmed."""


def inbound_sms(services: Services, event: InboundSms) -> str | None:
    """Handle one inbound SMS; return the reply text, or None for no reply from us."""
    clinic = services.directory.by_number(event.clinic_number)
    if clinic is None or event.phone == ANONYMOUS:
        log.warning(
            "sms ignored: to a number no clinic claims or from a withheld number",
            extra={"clinic": clinic.id if clinic else None},
        )
        return None
    keyword = keywords.parse(event.body)
    try:
        if keyword in (keywords.Keyword.OPT_OUT, keywords.Keyword.OPT_IN):
            new = services.consent.record_sms_keyword(
                clinic.id, event.phone, keyword, event.message_sid
            )
        else:
            new = _store(services, clinic, event, keyword)
    except SQLAlchemyError as exc:
        log.error(
            "sms not recorded: database unavailable",
            extra={"clinic": clinic.id, "error": type(exc).__name__},
        )
        raise Unavailable(type(exc).__name__) from None
    log.info(
        "sms",
        extra={"clinic": clinic.id, "keyword": keyword.value if keyword else None, "new": new},
    )
    if keyword is None or not new:
        return None
    return consent.keyword_reply(clinic, keyword)


def _store(
    services: Services, clinic: Clinic, event: InboundSms, keyword: keywords.Keyword | None
) -> bool:
    """Keep the message (staff's inbox, or a handled HELP). True when the MessageSid is new."""
    now = services.clock()
    values = {
        "message_sid": event.message_sid,
        "clinic_id": clinic.id,
        "direction": "in",
        "phone": event.phone,
        "clinic_number": event.clinic_number,
        # PostgreSQL text cannot hold NUL; nothing a patient typed needs one.
        "body": event.body.replace("\x00", ""),
        "kind": "help" if keyword is not None else "text",
        "status": "received",
        "handled": keyword is not None,
        "created_at": now,
        "data_category": "message",
        "retention_until": retention_until(services.config, clinic, "message", now),
    }
    with services.db.session() as session:
        return insert_ignore(session, Message, values, ["message_sid"])
