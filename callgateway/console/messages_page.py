"""Texts patients sent to the clinic that were not consent keywords: kept for staff."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import select, update
from werkzeug.wrappers import Response

from callgateway.console import bp
from callgateway.console.access import chosen_clinics, require_clinic, services
from callgateway.db.models import Message

PAGE = 100


@bp.get("/messages")
@login_required
def messages() -> str:
    clinics = chosen_clinics(request.args.get("clinic"))
    show = request.args.get("show", "todo")
    stmt = select(Message).where(
        Message.direction == "in", Message.clinic_id.in_([c.id for c in clinics])
    )
    if show == "todo":
        stmt = stmt.where(Message.handled.is_(False))
    with services().db.session() as db:
        rows = list(db.scalars(stmt.order_by(Message.created_at.desc()).limit(PAGE)))
    return render_template(
        "console/messages.html", rows=rows, show=show, clinic_filter=request.args.get("clinic", "")
    )


@bp.post("/messages/<int:message_id>/handled")
@login_required
def message_handled(message_id: int) -> Response:
    svc = services()
    with svc.db.session() as db:
        message = db.get(Message, message_id)
        if message is None or message.direction != "in":
            abort(404)
        require_clinic(message.clinic_id)
        db.execute(update(Message).where(Message.id == message_id).values(handled=True))
    flash("Marked as handled.", "info")
    return redirect(url_for("console.messages"), code=303)
