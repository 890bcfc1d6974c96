"""Texts patients sent to the clinic that were not consent keywords: kept for staff."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from werkzeug.wrappers import Response

from callgateway.console.access import chosen_clinics, require_clinic, services
from callgateway.console.blueprint import bp
from callgateway.console.queries import messages as queries

PAGE = 100


@bp.get("/messages")
@login_required
def messages() -> str:
    clinics = chosen_clinics(request.args.get("clinic"))
    show = request.args.get("show", "todo")
    with services().db.session() as db:
        rows = queries.incoming(db, [c.id for c in clinics], show == "todo", PAGE)
    return render_template(
        "console/messages.html", rows=rows, show=show, clinic_filter=request.args.get("clinic", "")
    )


@bp.post("/messages/<int:message_id>/handled")
@login_required
def message_handled(message_id: int) -> Response:
    svc = services()
    with svc.db.session() as db:
        message = queries.incoming_message(db, message_id)
        if message is None:
            abort(404)
        require_clinic(message.clinic_id)
        queries.mark_handled(db, message_id)
    flash("Marked as handled.", "info")
    return redirect(url_for("console.messages"), code=303)
