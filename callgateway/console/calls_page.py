"""The call log: every call at the user's clinics, numbers masked until revealed."""

from __future__ import annotations

from flask import render_template, request
from flask_login import login_required

from callgateway.console.access import chosen_clinics, services
from callgateway.console.blueprint import bp
from callgateway.console.ids import before_arg
from callgateway.console.queries import calls as queries

PAGE = 50
HANDLERS = ("ai", "human", "voicemail", "none")


@bp.get("/calls")
@login_required
def calls() -> str:
    clinics = chosen_clinics(request.args.get("clinic"))
    handled = request.args.get("handled", "")
    handled = handled if handled in HANDLERS else ""
    before = before_arg()
    with services().db.session() as db:
        rows, older = queries.calls(db, [c.id for c in clinics], handled or None, before, PAGE)
    return render_template(
        "console/calls.html",
        rows=rows,
        older=older,
        clinic_filter=request.args.get("clinic", ""),
        handled=handled,
    )
