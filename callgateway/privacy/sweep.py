"""The retention sweep: everything past its retention date goes, wherever it is.

Rows of every table that carries a retention date (found from the models, so tables added
later are swept too), recordings' bucket objects and any copy still at Twilio, and bucket
objects no row points at (by their `retention-until` tag). An expired opt-out leaves a
hashed suppression entry so the number stays opted out. Audit entries go only when their
own retention has passed; the sweep adds one entry of its own.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, delete, func, select
from sqlalchemy.orm import Session

from callgateway.adapters.storage import RegionViolation, StorageError
from callgateway.adapters.twilio_rest import TwilioError
from callgateway.config import CATEGORIES
from callgateway.db.insert import insert_ignore
from callgateway.db.models import Base, ConsentEvent, Recording, Retained, Suppression
from callgateway.phone import subject_hash

if TYPE_CHECKING:
    from callgateway.wiring import Services

log = logging.getLogger(__name__)

BATCH = 500


@dataclass
class SweepResult:
    now: datetime
    rows: Counter[str] = field(default_factory=Counter)  # by data category
    objects: Counter[str] = field(default_factory=Counter)  # bucket objects no row pointed at
    twilio_deleted: int = 0
    suppressed: int = 0
    errors: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Records deleted per data category: rows, plus objects that had no row."""
        merged = self.rows + self.objects
        names = list(CATEGORIES) + sorted(set(merged) - set(CATEGORIES))
        return {name: merged.get(name, 0) for name in names}


def retained_tables() -> list[Table]:
    """Every table with a retention date, children before parents (foreign keys)."""
    tables = [
        m.class_.__table__
        for m in Base.registry.mappers
        if issubclass(m.class_, Retained) and isinstance(m.class_.__table__, Table)
    ]
    order = {t: i for i, t in enumerate(Base.metadata.sorted_tables)}
    return sorted(tables, key=lambda t: -order.get(t, 0))


def sweep(services: Services, now: datetime, actor: str) -> SweepResult:
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    cutoff = now.astimezone(UTC).date()  # a record dated D is kept through day D
    result = SweepResult(now=now)
    _recordings(services, cutoff, result)
    _consent(services, cutoff, result)
    with services.db.session() as session:
        for table in retained_tables():
            if table.name in (Recording.__tablename__, ConsentEvent.__tablename__):
                continue
            _rows(session, table, cutoff, result)
    _orphan_objects(services, cutoff, result)
    with services.db.session() as session:
        services.audit.record(
            session,
            actor=actor,
            action="retention.sweep",
            detail={
                "now": now.isoformat(),
                "rows": dict(result.rows),
                "objects": dict(result.objects),
                "twilio_deleted": result.twilio_deleted,
                "suppressed": result.suppressed,
                "errors": len(result.errors),
            },
        )
    log.info("retention sweep", extra={"counts": result.counts(), "errors": len(result.errors)})
    return result


def _rows(session: Session, table: Table, cutoff: date, result: SweepResult) -> None:
    expired = table.c.retention_until < cutoff
    for category, n in session.execute(
        select(table.c.data_category, func.count()).where(expired).group_by(table.c.data_category)
    ):
        result.rows[category] += n
    session.execute(delete(table).where(expired))


def _recordings(services: Services, cutoff: date, result: SweepResult) -> None:
    """Twilio's copy and the bucket object first; the row goes only when both are gone, so
    a failure now is retried by the next sweep instead of forgotten."""
    last_id = 0
    while True:
        with services.db.session() as session:
            rows = list(
                session.scalars(
                    select(Recording)
                    .where(Recording.retention_until < cutoff, Recording.id > last_id)
                    .order_by(Recording.id)
                    .limit(BATCH)
                )
            )
        if not rows:
            return
        last_id = rows[-1].id
        gone: list[int] = []
        for row in rows:
            try:
                if not row.deleted_at_twilio:
                    assert services.twilio is not None
                    if services.twilio.delete_recording(row.recording_sid):
                        result.twilio_deleted += 1
                if row.key:
                    assert services.storage is not None
                    services.storage.purge(row.region, row.key)
            except (TwilioError, RegionViolation, AssertionError, *StorageError) as exc:
                result.errors.append(f"recording {row.recording_sid}: {type(exc).__name__}")
                continue
            gone.append(row.id)
            result.rows[row.data_category] += 1
        with services.db.session() as session:
            session.execute(delete(Recording).where(Recording.id.in_(gone)))


def _consent(services: Services, cutoff: date, result: SweepResult) -> None:
    """An opt-out must outlive its ledger entries: when the last event of a number that is
    opted out expires, a salted-hash suppression entry keeps it opted out."""
    salt = services.settings.subject_salt
    with services.db.session() as session:
        pairs = set(
            session.execute(
                select(ConsentEvent.clinic_id, ConsentEvent.phone)
                .where(ConsentEvent.retention_until < cutoff)
                .distinct()
            ).all()
        )
        for clinic_id, phone in pairs:
            latest = session.execute(
                select(ConsentEvent.state, ConsentEvent.retention_until)
                .where(ConsentEvent.clinic_id == clinic_id, ConsentEvent.phone == phone)
                .order_by(ConsentEvent.id.desc())
                .limit(1)
            ).first()
            if latest is not None and latest.state == "opted_out" and latest[1] < cutoff:
                added = insert_ignore(
                    session,
                    Suppression,
                    {
                        "clinic_id": clinic_id,
                        "phone_hash": subject_hash(phone, salt),
                        "created_at": services.clock(),
                    },
                    ["clinic_id", "phone_hash"],
                )
                result.suppressed += int(added)
        _rows(session, ConsentEvent.__table__, cutoff, result)  # type: ignore[arg-type]
    for clinic_id, phone in pairs:  # ledger ids may be reused (SQLite): drop cached states
        services.gate.forget(clinic_id, phone)


def _orphan_objects(services: Services, cutoff: date, result: SweepResult) -> None:
    """Objects whose row is gone (or never was): their own tag says when they expire.
    The bucket's lifecycle rules are the backstop should this sweep ever stop running."""
    if services.storage is None:
        return
    for region in services.storage.region_codes(services.settings.cell):
        try:
            for key in list(services.storage.keys(region, "clinics/")):
                tags = services.storage.tags(region, key)
                until = _date(tags.get("retention-until"))
                if until is None or until >= cutoff:
                    continue  # undated objects are not ours to judge
                services.storage.purge(region, key)
                result.objects[tags.get("data-category", "unknown")] += 1
        except (RegionViolation, *StorageError) as exc:
            result.errors.append(f"bucket of region {region}: {type(exc).__name__}")


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None
