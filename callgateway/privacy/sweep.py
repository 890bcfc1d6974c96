"""The retention sweep: everything past its retention date goes, wherever it is.

Found from the database, never by walking the buckets: rows of every table that carries a
retention date (found from the models, so tables added later are swept too); recordings
and voicemails from their `recordings` rows (the bucket object and any copy still at
Twilio); every other object we write from its `stored_objects` row (callgateway.db.objects),
written before the object. Each is one indexed query for what has expired, then batches.
The bucket lifecycle rules by `data-category` tag (infra/cloudformation/cell.yaml) are the
backstop for anything this sweep missed; the sweep itself never lists a bucket.

An expired opt-out leaves a hashed suppression entry so the number stays opted out. Audit
entries go only when their own retention has passed; the sweep adds one entry of its own.
A dry run counts and lists what would go and changes nothing. A sweep given a time budget
stops between batches when it is spent; what is left is the next run's.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, delete, func, select
from sqlalchemy.orm import Session

from callgateway.adapters.storage import RegionViolation, StorageError
from callgateway.adapters.twilio_rest import TwilioError
from callgateway.config import CATEGORIES
from callgateway.db.insert import insert_ignore
from callgateway.db.models import (
    Base,
    ConsentEvent,
    Recording,
    Retained,
    StoredObject,
    Suppression,
)
from callgateway.phone import subject_hash

if TYPE_CHECKING:
    from callgateway.wiring import Services

log = logging.getLogger(__name__)

BATCH = 500

# What a sweep reports as it goes: (records done, records in all), and in a dry run each
# object that would go ({"category", "region", "key"}) and each table's expired rows
# ({"table", "category", "rows"}).
ProgressFn = Callable[[int, int], None]
ListFn = Callable[[dict[str, Any]], None]


@dataclass
class SweepResult:
    now: datetime
    dry_run: bool = False
    rows: Counter[str] = field(default_factory=Counter)  # by data category
    objects: Counter[str] = field(default_factory=Counter)  # ledger objects, by category
    twilio_deleted: int = 0
    suppressed: int = 0
    finished: bool = True  # False when the time budget ran out with work left
    errors: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Records deleted (or, in a dry run, to delete) per data category: rows, plus the
        bucket objects of the ledger (recordings count once, by their row)."""
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


# Swept by their own passes (their objects, Twilio's copies, the suppression entries).
_OWN_PASS = {Recording.__tablename__, StoredObject.__tablename__, ConsentEvent.__tablename__}


class _Run:
    """One sweep's shared state: the cutoff, the result, progress and the time budget."""

    def __init__(
        self,
        services: Services,
        now: datetime,
        *,
        dry_run: bool,
        budget: timedelta | None,
        progress: ProgressFn | None,
        listing: ListFn | None,
    ) -> None:
        self.services = services
        self.cutoff = now.astimezone(UTC).date()  # a record dated D is kept through day D
        self.result = SweepResult(now=now, dry_run=dry_run)
        self.dry_run = dry_run
        self.deadline = None if budget is None else time.monotonic() + budget.total_seconds()
        self._progress = progress
        self._listing = listing
        self.done = 0
        self.total = 0

    def advance(self, n: int) -> None:
        self.done += n
        if self._progress is not None:
            self._progress(self.done, self.total)

    def list(self, item: dict[str, Any]) -> None:
        if self._listing is not None:
            self._listing(item)

    def out_of_time(self) -> bool:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.result.finished = False
            return True
        return False


def sweep(
    services: Services,
    now: datetime,
    actor: str,
    *,
    dry_run: bool = False,
    budget: timedelta | None = None,
    progress: ProgressFn | None = None,
    listing: ListFn | None = None,
) -> SweepResult:
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    run = _Run(services, now, dry_run=dry_run, budget=budget, progress=progress, listing=listing)
    run.total = expired_total(services, run.cutoff)
    run.advance(0)
    _recordings(run)
    if not run.out_of_time():
        _objects(run)
    if not run.out_of_time():
        _consent(run)
        with services.db.session() as session:
            for table in retained_tables():
                if table.name not in _OWN_PASS:
                    _rows(run, session, table)
    result = run.result
    if not dry_run:
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
                    "finished": result.finished,
                    "errors": len(result.errors),
                },
            )
    log.info(
        "retention sweep",
        extra={
            "counts": result.counts(),
            "dry_run": dry_run,
            "finished": result.finished,
            "errors": len(result.errors),
        },
    )
    return result


def expired_total(services: Services, cutoff: date) -> int:
    """Records past `cutoff`, all tables together: one COUNT per table, on its index."""
    with services.db.session() as session:
        return sum(
            session.execute(
                select(func.count()).select_from(t).where(t.c.retention_until < cutoff)
            ).scalar_one()
            for t in retained_tables()
        )


def _rows(run: _Run, session: Session, table: Table) -> None:
    expired = table.c.retention_until < run.cutoff
    counted = 0
    for category, n in session.execute(
        select(table.c.data_category, func.count()).where(expired).group_by(table.c.data_category)
    ):
        run.result.rows[category] += n
        counted += n
        run.list({"table": table.name, "category": category, "rows": n})
    if not run.dry_run:
        session.execute(delete(table).where(expired))
    run.advance(counted)


def _batches(run: _Run, model: Any) -> Iterable[list[Any]]:
    """Expired rows of `model` in id order, a batch at a time, until none are left or the
    time budget is spent. Each batch is read in its own session, after the last one's
    deletions committed."""
    last_id = 0
    while not run.out_of_time():
        with run.services.db.session() as session:
            rows = list(
                session.scalars(
                    select(model)
                    .where(model.retention_until < run.cutoff, model.id > last_id)
                    .order_by(model.id)
                    .limit(BATCH)
                )
            )
        if not rows:
            return
        last_id = rows[-1].id
        yield rows


def _purge(run: _Run, by_region: dict[str, list[tuple[str, str | None]]], what: str) -> set[str]:
    """Delete these (key, version id) in their regions' buckets; the keys that are gone."""
    gone: set[str] = set()
    storage = run.services.storage
    for region, objects in by_region.items():
        if storage is None:
            run.result.errors.append(f"{what} in region {region}: no storage configured")
            continue
        try:
            deleted, failed = storage.purge_many(region, objects)
        except (RegionViolation, *StorageError) as exc:
            run.result.errors.append(f"{what} in region {region}: {type(exc).__name__}")
            continue
        gone.update(deleted)
        run.result.errors.extend(f"{what} {key}: not deleted" for key in failed)
    return gone


def _recordings(run: _Run) -> None:
    """Twilio's copy and the bucket object first; the row goes only when both are gone, so
    a failure now is retried by the next sweep instead of forgotten."""
    services, result = run.services, run.result
    for rows in _batches(run, Recording):
        at_twilio_ok: list[Recording] = []
        for row in rows:
            if run.dry_run:
                run.list({"category": row.data_category, "region": row.region, "key": row.key})
                continue
            if _gone_at_twilio(run, row):
                at_twilio_ok.append(row)
        if run.dry_run:
            for row in rows:
                result.rows[row.data_category] += 1
            run.advance(len(rows))
            continue
        by_region: dict[str, list[tuple[str, str | None]]] = {}
        for row in at_twilio_ok:
            if row.key:
                by_region.setdefault(row.region, []).append((row.key, row.version_id))
        purged = _purge(run, by_region, "recording")
        gone = [r for r in at_twilio_ok if not r.key or r.key in purged]
        for row in gone:
            result.rows[row.data_category] += 1
        with services.db.session() as session:
            session.execute(delete(Recording).where(Recording.id.in_([r.id for r in gone])))
        run.advance(len(rows))


def _gone_at_twilio(run: _Run, row: Recording) -> bool:
    """Twilio's copy of an expired recording is deleted (or already was)."""
    twilio = run.services.twilio
    if row.deleted_at_twilio:
        return True
    try:
        if twilio is None:
            raise TwilioError("no Twilio adapter wired")
        if twilio.delete_recording(row.recording_sid):
            run.result.twilio_deleted += 1
    except TwilioError as exc:
        run.result.errors.append(f"recording {row.recording_sid}: {type(exc).__name__}")
        return False
    return True


def _objects(run: _Run) -> None:
    """The ledger's expired objects, by region; a row goes once its object is gone. Rows
    from before the ledger have no region: the clinic's, from the config."""
    services, result = run.services, run.result
    for rows in _batches(run, StoredObject):
        by_region: dict[str, list[tuple[str, str | None]]] = {}
        for row in rows:
            region = row.region
            if region is None:
                clinic = services.directory.by_id(row.clinic_id)
                region = clinic.region if clinic is not None else None
            if region is None:
                result.errors.append(f"object {row.key}: clinic {row.clinic_id!r} unknown")
                continue
            by_region.setdefault(region, []).append((row.key, row.version_id))
            if run.dry_run:
                run.list({"category": row.data_category, "region": region, "key": row.key})
        if run.dry_run:
            gone = {key for objects in by_region.values() for key, _ in objects}
        else:
            gone = _purge(run, by_region, "object")
        done = [r for r in rows if r.key in gone]
        for row in done:
            result.objects[row.data_category] += 1
        if not run.dry_run:
            with services.db.session() as session:
                session.execute(
                    delete(StoredObject).where(StoredObject.id.in_([r.id for r in done]))
                )
        run.advance(len(rows))


def _consent(run: _Run) -> None:
    """An opt-out must outlive its ledger entries: when the last event of a number that is
    opted out expires, a salted-hash suppression entry keeps it opted out."""
    services, cutoff = run.services, run.cutoff
    salt = services.settings.subject_salt
    with services.db.session() as session:
        pairs = set(
            session.execute(
                select(ConsentEvent.clinic_id, ConsentEvent.phone)
                .where(ConsentEvent.retention_until < cutoff)
                .distinct()
            ).all()
        )
        for clinic_id, phone in pairs if not run.dry_run else ():
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
                run.result.suppressed += int(added)
        _rows(run, session, ConsentEvent.__table__)  # type: ignore[arg-type]
    if run.dry_run:
        return
    for clinic_id, phone in pairs:  # ledger ids may be reused (SQLite): drop cached states
        services.gate.forget(clinic_id, phone)
