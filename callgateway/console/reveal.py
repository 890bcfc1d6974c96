"""Showing a full phone number: only on purpose, for a record the user may see, audited."""

from __future__ import annotations

from flask import abort, render_template
from flask_login import login_required

from callgateway.console.access import me, require_clinic, services
from callgateway.console.blueprint import bp
from callgateway.db.models import Call, ConsentEvent, Message, Recording, WorkItem

# What may be revealed: the model and the column holding the number.
SOURCES: dict[str, tuple[type, str]] = {
    "call": (Call, "cli"),
    "item": (WorkItem, "phone"),
    "message": (Message, "phone"),
    "voicemail": (Recording, "phone"),
    "consent": (ConsentEvent, "phone"),
}


@bp.post("/reveal/<kind>/<int:record_id>")
@login_required
def reveal(kind: str, record_id: int) -> str:
    if kind not in SOURCES:
        abort(404)
    model, column = SOURCES[kind]
    svc = services()
    with svc.db.session() as db:
        record = db.get(model, record_id)
        if record is None:
            abort(404)
        clinic = require_clinic(record.clinic_id)
        number = getattr(record, column)
        svc.audit.record(
            db,
            actor=me().actor,
            action="console.reveal",
            clinic_id=clinic.id,
            phone=number if number and number != "anonymous" else None,
            detail={"record": kind, "id": record_id},
        )
    return render_template(
        "console/reveal.html", kind=kind, record=record, number=number, clinic=clinic
    )
