"""The audit log: who (user or command) did what to whose data, when. Subjects are hashed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from callgateway.config import Clinic, Config
from callgateway.config.retention import retention_until
from callgateway.db.models import AuditEntry
from callgateway.phone import subject_hash


@dataclass(frozen=True)
class AuditTrail:
    """Writes audit entries; built once in the wiring from the config, the subject salt,
    a clinic lookup and the clock, and handed to whoever must leave a trace."""

    config: Config
    clinic_by_id: Callable[[str], Clinic | None]
    subject_salt: str
    clock: Callable[[], datetime]

    def record(
        self,
        session: Session,
        *,
        actor: str,
        action: str,
        clinic_id: str | None = None,
        phone: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Add one audit entry in the caller's unit of work (so it commits with the action)."""
        now = self.clock()
        clinic = self.clinic_by_id(clinic_id) if clinic_id else None
        entry = AuditEntry(
            at=now,
            actor=actor,
            action=action,
            clinic_id=clinic_id,
            subject_hash=subject_hash(phone, self.subject_salt) if phone else None,
            detail=detail or {},
            data_category="audit",
            retention_until=retention_until(self.config, clinic, "audit", now),
        )
        session.add(entry)
        return entry
