"""Data-subject rights: export everything held for a number, or erase it at one clinic.

"Everything" is found, not listed by hand: every table with a retention date and a `phone`
column (the call log's is `cli`), the rows that hang off those by call or by foreign key,
the bucket objects those rows point at, every object under the number's subject prefix in
the clinic's region bucket, and recordings whose copy is still at Twilio. Tables other
engineers add later are covered as long as they carry `phone` (or a call_sid, or a foreign
key to such a table).

Erase order is what makes a partial failure safe to re-run: Twilio copies first, then
bucket objects, then the rows in one transaction with the suppression entry and the one
audit entry. Nothing found means nothing done: a second run is a no-op.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Table, delete, select, update
from sqlalchemy.orm import Session

from callgateway.adapters.storage import subject_prefix
from callgateway.adapters.twilio_rest import NotFound
from callgateway.booking.outbox import appointment_key
from callgateway.calls import log as call_log
from callgateway.config import Clinic
from callgateway.db.insert import insert_ignore
from callgateway.db.models import (
    Appointment,
    Call,
    CallTurn,
    ConsentEvent,
    Recording,
    StoredObject,
    Suppression,
    WorkItem,
)
from callgateway.db.models_outbound import CheckinSchedule
from callgateway.phone import subject_hash
from callgateway.privacy.sweep import retained_tables
from consent import ledger

if TYPE_CHECKING:
    from callgateway.wiring import Services

SECTIONS = ("calls", "appointments", "consent", "recordings", "voicemails", "messages")
# Which export section a generic table's rows belong to, by their data category.
SECTION_OF = {
    "call-metadata": "calls",
    "transcript": "calls",
    "appointment": "appointments",
    "consent": "consent",
    "recording": "recordings",
    "voicemail": "voicemails",
    "message": "messages",
}
_HANDLED = {"calls", "call_turns", "recordings", "consent_events", "work_items", "audit_log"}


class RightsError(RuntimeError):
    """The request cannot be completed now; nothing (more) was erased. One line."""


def export_schema() -> dict[str, Any]:
    text = resources.files("callgateway").joinpath("privacy/schemas/export.schema.json").read_text()
    return json.loads(text)  # type: ignore[no-any-return]


# --- what is held --------------------------------------------------------------------------


@dataclass
class Holdings:
    """Everything held for one number (at one clinic, or all)."""

    calls: list[Call] = field(default_factory=list)
    recordings: list[Recording] = field(default_factory=list)
    consent: list[ConsentEvent] = field(default_factory=list)
    suppressions: list[Suppression] = field(default_factory=list)
    turns: dict[str, list[CallTurn]] = field(default_factory=dict)
    work_items: dict[str, list[WorkItem]] = field(default_factory=dict)
    # Other tables' rows owned by the number: (table, row mapping, children by table).
    rows: list[tuple[Table, dict[str, Any], dict[str, list[dict[str, Any]]]]] = field(
        default_factory=list
    )
    # Bucket objects under the number's prefix that no row points at: (clinic, region, key).
    loose_objects: list[tuple[str, str, str, str]] = field(default_factory=list)
    # Other patients' check-in schedules that alert this number: the schedule belongs to
    # them, the number in its receiver list to this person.
    alert_listings: list[CheckinSchedule] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (
            self.calls
            or self.recordings
            or self.consent
            or self.rows
            or self.loose_objects
            or self.alert_listings
            or any(self.work_items.values())
        )


def _clinics(services: Services, clinic_id: str | None) -> list[Clinic]:
    if clinic_id is None:
        return services.directory.all()
    clinic = services.directory.by_id(clinic_id)
    if clinic is None:
        raise RightsError(f"--clinic: unknown clinic {clinic_id!r}")
    return [clinic]


def _owned_tables() -> list[Table]:
    return [
        t
        for t in retained_tables()
        if t.name not in _HANDLED and "phone" in t.c and "clinic_id" in t.c
    ]


def _child_tables(parent: Table) -> list[tuple[Table, Column[Any]]]:
    """Tables with a foreign key to `parent` (reminders of an appointment, and so on)."""
    found = []
    for table in retained_tables():
        for fk in table.foreign_keys:
            if fk.column.table is parent and fk.parent.table is table:
                found.append((table, fk.parent))
    return found


def holdings(services: Services, phone: str, clinic_id: str | None) -> Holdings:
    clinics = _clinics(services, clinic_id)
    ids = [c.id for c in clinics]
    salt = services.settings.subject_salt
    held = Holdings()
    with services.db.session() as s:
        held.calls = list(
            s.scalars(
                select(Call).where(Call.cli == phone, Call.clinic_id.in_(ids)).order_by(Call.id)
            )
        )
        if clinic_id is None:  # calls to numbers no clinic claims belong to nobody else
            held.calls += list(
                s.scalars(select(Call).where(Call.cli == phone, Call.clinic_id.is_(None)))
            )
        sids = [c.call_sid for c in held.calls]
        for turn in s.scalars(
            select(CallTurn).where(CallTurn.call_sid.in_(sids)).order_by(CallTurn.seq)
        ):
            held.turns.setdefault(turn.call_sid, []).append(turn)
        for item in s.scalars(
            select(WorkItem)
            .where(WorkItem.clinic_id.in_(ids))
            .where((WorkItem.phone == phone) | WorkItem.call_sid.in_(sids))
            .order_by(WorkItem.id)
        ):
            held.work_items.setdefault(item.call_sid, []).append(item)
        held.recordings = list(
            s.scalars(
                select(Recording)
                .where(Recording.clinic_id.in_(ids))
                .where((Recording.phone == phone) | Recording.call_sid.in_(sids))
                .order_by(Recording.id)
            )
        )
        held.consent = list(
            s.scalars(
                select(ConsentEvent)
                .where(ConsentEvent.phone == phone, ConsentEvent.clinic_id.in_(ids))
                .order_by(ConsentEvent.id)
            )
        )
        held.suppressions = list(
            s.scalars(
                select(Suppression).where(
                    Suppression.phone_hash == subject_hash(phone, salt),
                    Suppression.clinic_id.in_(ids),
                )
            )
        )
        for table in _owned_tables():
            for row in s.execute(
                select(table).where(table.c.phone == phone, table.c.clinic_id.in_(ids))
            ).mappings():
                held.rows.append((table, dict(row), _children(s, table, row)))
        # Receiver lists are JSON, which the two databases query differently; a clinic has
        # tens of schedules, not millions, so they are read and filtered here.
        held.alert_listings = [
            schedule
            for schedule in s.scalars(
                select(CheckinSchedule)
                .where(CheckinSchedule.clinic_id.in_(ids), CheckinSchedule.phone != phone)
                .order_by(CheckinSchedule.id)
            )
            if phone in (schedule.alert_numbers or [])
        ]
    known = {r.key for r in held.recordings if r.key} | {
        key for table, row, _ in held.rows for key in row_object_keys(table, row)
    }
    assert services.storage is not None
    for clinic in clinics:
        prefix = subject_prefix(clinic.id, phone, salt)
        for key in services.storage.keys(clinic.region, prefix):
            if key not in known:
                category = services.storage.tags(clinic.region, key).get("data-category", "")
                held.loose_objects.append((clinic.id, clinic.region, key, category))
    return held


def row_object_keys(table: Table, row: dict[str, Any]) -> list[str]:
    """Bucket keys a row points at: its `*_key` columns, and an appointment's JSON copy
    (written by the outbox under a key made from its ref)."""
    keys = [v for k, v in row.items() if k.endswith("_key") and isinstance(v, str) and v]
    if table.name == Appointment.__tablename__ and row.get("ref"):
        keys.append(appointment_key(row["clinic_id"], row["ref"]))
    return [k for k in keys if k.startswith("clinics/")]


def _children(s: Session, table: Table, row: Any) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    if "id" not in table.c:
        return out
    for child, column in _child_tables(table):
        found = [dict(r) for r in s.execute(select(child).where(column == row["id"])).mappings()]
        if found:
            out[child.name] = found
    return out


# --- export ----------------------------------------------------------------------------------


def _settled(services: Services) -> None:
    """Calls' rows and transcripts may still be in the call journal: apply it first, or
    refuse (an export would miss them; an erase could be undone when they land later)."""
    try:
        call_log.bring_up_to_date(services)
    except call_log.CallLogUnavailable as exc:
        raise RightsError(
            f"the call journal could not be applied ({exc}); nothing was done, run again"
        ) from None


def export(services: Services, phone: str, clinic_id: str | None, actor: str) -> dict[str, Any]:
    _settled(services)
    held = holdings(services, phone, clinic_id)
    now = services.clock()
    doc: dict[str, Any] = {"phone": phone, "generated_at": now.isoformat()}
    doc.update({name: [] for name in SECTIONS})
    for call in held.calls:
        doc["calls"].append(
            {
                "clinic": call.clinic_id,
                "call_sid": call.call_sid,
                "direction": call.direction,
                "from": call.cli,
                "to": call.called,
                "started_at": _iso(call.started_at),
                "answered_at": _iso(call.answered_at),
                "ended_at": _iso(call.ended_at),
                "duration_seconds": call.duration_seconds,
                "status": call.status,
                "outcome": call.outcome,
                "handled_by": call.handled_by,
                "recorded": call.recorded,
                "data_category": call.data_category,
                "retention_until": _iso(call.retention_until),
                "transcript": [
                    {"seq": t.seq, "role": t.role, "text": t.text, "at": _iso(t.created_at)}
                    for t in held.turns.get(call.call_sid, [])
                ],
                "work_items": [
                    {
                        "kind": w.kind,
                        "reason": w.reason,
                        "status": w.status,
                        "created_at": _iso(w.created_at),
                    }
                    for w in held.work_items.pop(call.call_sid, [])
                ],
            }
        )
    for items in held.work_items.values():  # items whose call row has gone
        for w in items:
            doc["calls"].append({"clinic": w.clinic_id, "kind": "work_item", **_plain(w)})
    for rec in held.recordings:
        doc["voicemails" if rec.kind == "voicemail" else "recordings"].append(
            {
                "clinic": rec.clinic_id,
                "recording_sid": rec.recording_sid,
                "call_sid": rec.call_sid,
                "region": rec.region,
                "bucket": rec.bucket,
                "key": rec.key,
                "status": rec.status,
                "duration_seconds": rec.duration_seconds,
                "size_bytes": rec.size_bytes,
                "sha256": rec.sha256,
                "at_twilio": not rec.deleted_at_twilio,
                "created_at": _iso(rec.created_at),
                "retention_until": _iso(rec.retention_until),
            }
        )
    for event in held.consent:
        doc["consent"].append(
            {
                "clinic": event.clinic_id,
                "state": event.state,
                "channel": event.channel,
                "source_id": event.source_id,
                "at": _iso(event.created_at),
                "retention_until": _iso(event.retention_until),
            }
        )
    for sup in held.suppressions:
        doc["consent"].append(
            {
                "clinic": sup.clinic_id,
                "state": ledger.OPTED_OUT,
                "channel": "suppression",
                "at": _iso(sup.created_at),
            }
        )
    for table, row, children in held.rows:
        section = SECTION_OF.get(row.get("data_category", ""), "calls")
        item = {"clinic": row["clinic_id"], "kind": table.name, **_jsonable(row)}
        item.update({name: [_jsonable(c) for c in rows] for name, rows in children.items()})
        clinic = services.directory.by_id(row["clinic_id"])
        if clinic is not None:  # where the row's copy in the region bucket is
            bucket = services.config.regions[clinic.region].bucket
            item["objects"] = [
                {"region": clinic.region, "bucket": bucket, "key": key}
                for key in row_object_keys(table, row)
            ]
        doc[section].append(item)
    for schedule in held.alert_listings:
        # Only that the number is listed, and where: the schedule's patient is someone else.
        doc["appointments"].append(
            {
                "clinic": schedule.clinic_id,
                "kind": "checkin_alert_receiver",
                "schedule_id": schedule.id,
                "retention_until": _iso(schedule.retention_until),
            }
        )
    for clinic, region, key, category in held.loose_objects:
        section = SECTION_OF.get(category, "recordings")
        bucket = services.config.regions[region].bucket
        doc[section].append(
            {"clinic": clinic, "kind": "object", "region": region, "bucket": bucket, "key": key}
        )
    with services.db.session() as s:
        services.audit.record(
            s,
            actor=actor,
            action="rights.export",
            clinic_id=clinic_id,
            phone=phone,
            detail={name: len(doc[name]) for name in SECTIONS},
        )
    return doc


# --- erase -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Erased:
    done: bool  # False: nothing was held, nothing changed
    counts: dict[str, int]
    twilio_deleted: int
    objects_deleted: int
    suppressed: bool


def erase(services: Services, phone: str, clinic_id: str, actor: str) -> Erased:
    (clinic,) = _clinics(services, clinic_id)
    _settled(services)
    held = holdings(services, phone, clinic_id)
    if held.empty:
        return Erased(False, {}, 0, 0, False)
    assert services.twilio is not None and services.storage is not None

    # 1. Twilio's copies. A failure stops here, before anything of ours is gone.
    twilio_deleted = 0
    for rec in held.recordings:
        if not rec.deleted_at_twilio:
            try:
                twilio_deleted += int(services.twilio.delete_recording(rec.recording_sid))
            except NotFound:
                pass
            except Exception as exc:
                raise RightsError(
                    f"Twilio did not delete recording {rec.recording_sid} "
                    f"({type(exc).__name__}); nothing of ours was erased, run again"
                ) from None

    # 2. Bucket objects (every version). Same: a failure leaves all rows for a re-run.
    keys = {(r.region, r.key) for r in held.recordings if r.key}
    keys |= {
        (clinic.region, key)
        for table, row, _ in held.rows
        for key in row_object_keys(table, row)
        if key.startswith(f"clinics/{clinic.id}/")
    }
    keys |= {(region, key) for _, region, key, _ in held.loose_objects}
    objects_deleted = 0
    try:
        for region, key in sorted(keys):
            objects_deleted += services.storage.purge(region, key) > 0
    except Exception as exc:
        raise RightsError(
            f"the {clinic.region!r} bucket did not delete an object ({type(exc).__name__}); "
            "database rows kept, run again"
        ) from None

    # 3. Rows, the suppression entry and the audit entry: one transaction.
    counts: dict[str, int] = {}
    sids = [c.call_sid for c in held.calls]
    phone_hash = subject_hash(phone, services.settings.subject_salt)
    with services.db.session() as s:
        was = ledger.current_state(s, clinic.id, phone, phone_hash)
        counts["call_turns"] = _delete(s, delete(CallTurn).where(CallTurn.call_sid.in_(sids)))
        counts["work_items"] = _delete(
            s,
            delete(WorkItem)
            .where(WorkItem.clinic_id == clinic.id)
            .where((WorkItem.phone == phone) | WorkItem.call_sid.in_(sids)),
        )
        counts["recordings"] = _delete(
            s, delete(Recording).where(Recording.id.in_([r.id for r in held.recordings]))
        )
        # The ledger rows of the objects just purged (the sweep has nothing left to find).
        s.execute(delete(StoredObject).where(StoredObject.key.in_([key for _, key in keys])))
        counts["consent_events"] = _delete(
            s,
            delete(ConsentEvent).where(
                ConsentEvent.clinic_id == clinic.id, ConsentEvent.phone == phone
            ),
        )
        for table in _owned_tables():
            counts[table.name] = _delete(
                s, delete(table).where(table.c.phone == phone, table.c.clinic_id == clinic.id)
            )
        counts["calls"] = _delete(s, delete(Call).where(Call.call_sid.in_(sids)))
        # Off other patients' receiver lists; their schedules stay, with who is left.
        for schedule in held.alert_listings:
            s.execute(
                update(CheckinSchedule)
                .where(CheckinSchedule.id == schedule.id)
                .values(
                    alert_numbers=[n for n in schedule.alert_numbers if n != phone],
                    updated_at=services.clock(),
                )
            )
        counts["checkin_alert_numbers"] = len(held.alert_listings)
        suppressed = False
        if was == ledger.OPTED_OUT:
            insert_ignore(
                s,
                Suppression,
                {
                    "clinic_id": clinic.id,
                    "phone_hash": phone_hash,
                    "created_at": services.clock(),
                },
                ["clinic_id", "phone_hash"],
            )
            suppressed = True
        counts = {k: v for k, v in counts.items() if v}
        services.audit.record(
            s,
            actor=actor,
            action="rights.erase",
            clinic_id=clinic.id,
            phone=phone,
            detail={
                "rows": counts,
                "objects": objects_deleted,
                "twilio_deleted": twilio_deleted,
                "suppressed": suppressed,
            },
        )
    # The gate's cache must not keep an erased ledger's state; the next read refills it.
    services.gate.forget(clinic.id, phone)
    return Erased(True, counts, twilio_deleted, objects_deleted, suppressed)


def _delete(session: Session, stmt: Any) -> int:
    return int(session.execute(stmt).rowcount or 0)


# --- JSON ------------------------------------------------------------------------------------


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if k in ("id", "phone", "clinic_id"):
            continue
        out[k] = v.isoformat() if isinstance(v, datetime | date) else v
    return out


def _plain(obj: Any) -> dict[str, Any]:
    return _jsonable({c.key: getattr(obj, c.key) for c in obj.__table__.columns})
