"""Cancelling from a reminder call, through the booking service (never a private path)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from callgateway.booking import appointments, outbox
from callgateway.config import Clinic
from callgateway.db.models import Appointment

if TYPE_CHECKING:
    from callgateway.wiring import Services

log = logging.getLogger(__name__)


def cancel(services: Services, appt: Appointment, clinic: Clinic) -> bool:
    """Cancel as the booking agent would: holds released, the bucket copy updated through
    the outbox. False when the booking service refused. The caller (a reminder call) then
    drops the appointment's reminders."""
    now = services.clock()
    try:
        with services.db.session() as session:
            cancelled = appointments.cancel(
                session, clinic, appointment_id=appt.id, phone=appt.phone, now=now
            )
            ids = outbox.appointment_changed(session, clinic, cancelled, "cancelled", now)
    except appointments.BookingError:
        log.info("reminder call: cancel refused", extra={"appointment_id": appt.id})
        return False
    outbox.enqueue(services, ids)
    return True
