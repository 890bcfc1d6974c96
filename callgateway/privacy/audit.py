"""The audit log: who (user or command) did what to whose data, when. Subjects are hashed."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from callgateway.db.models import AuditEntry
from callgateway.phone import subject_hash
from callgateway.privacy.retention import retention_until
from callgateway.wiring import Services


def record(
    services: Services,
    session: Session,
    *,
    actor: str,
    action: str,
    clinic_id: str | None = None,
    phone: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add one audit entry in the caller's unit of work (so it commits with the action)."""
    now = services.clock()
    clinic = services.directory.by_id(clinic_id) if clinic_id else None
    entry = AuditEntry(
        at=now,
        actor=actor,
        action=action,
        clinic_id=clinic_id,
        subject_hash=subject_hash(phone, services.settings.subject_salt) if phone else None,
        detail=detail or {},
        data_category="audit",
        retention_until=retention_until(services.config, clinic, "audit", now),
    )
    session.add(entry)
    return entry
