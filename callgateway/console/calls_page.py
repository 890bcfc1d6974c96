"""The call log: every call at the user's clinics, numbers masked until revealed."""

from __future__ import annotations

from flask import render_template, request
from flask_login import login_required
from sqlalchemy import select

from callgateway.console import bp
from callgateway.console.access import chosen_clinics
from callgateway.console.paging import newest_first
from callgateway.db.models import Call

PAGE = 50
HANDLERS = ("ai", "human", "voicemail", "none")


@bp.get("/calls")
@login_required
def calls() -> str:
    clinics = chosen_clinics(request.args.get("clinic"))
    handled = request.args.get("handled", "")
    before = request.args.get("before", type=int)
    stmt = select(Call).where(Call.clinic_id.in_([c.id for c in clinics]))
    if handled in HANDLERS:
        stmt = stmt.where(Call.handled_by == handled)
    rows, older = newest_first(stmt, Call.id, before, PAGE)
    return render_template(
        "console/calls.html",
        rows=rows,
        older=older,
        clinic_filter=request.args.get("clinic", ""),
        handled=handled if handled in HANDLERS else "",
    )
