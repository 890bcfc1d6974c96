"""Texts patients sent to the clinic that were not consent keywords: kept for staff, who
mark them handled or answer them (never a number that has opted out: `sms.staff_reply`)."""

from __future__ import annotations

import re
import secrets

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from werkzeug.wrappers import Response

from callgateway.console.access import (
    chosen_clinics,
    me,
    require_clinic,
    require_clinic_audited,
    services,
)
from callgateway.console.blueprint import bp
from callgateway.console.queries import messages as queries
from callgateway.sms import staff_reply

PAGE = 100
_REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


@bp.get("/messages")
@login_required
def messages() -> str:
    clinics = chosen_clinics(request.args.get("clinic"))
    show = request.args.get("show", "todo")
    with services().db.session() as db:
        rows = queries.incoming(db, [c.id for c in clinics], show == "todo", PAGE)
        replies = queries.replies(db, [m.id for m in rows])
    return render_template(
        "console/messages.html",
        rows=rows,
        replies=replies,
        show=show,
        clinic_filter=request.args.get("clinic", ""),
        # One id per form: a double submit of a reply is one text.
        request_ids={m.id: secrets.token_hex(16) for m in rows},
        max_body=staff_reply.MAX_BODY,
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


@bp.post("/messages/<int:message_id>/reply")
@login_required
def message_reply(message_id: int) -> Response:
    svc = services()
    with svc.db.session() as db:
        message = queries.incoming_message(db, message_id)
    if message is None:
        abort(404)
    clinic = require_clinic_audited(message.clinic_id, "message", message_id)
    request_id = request.form.get("request_id") or ""
    if not _REQUEST_ID.match(request_id):
        request_id = secrets.token_hex(16)
    try:
        sent = staff_reply.reply(
            svc, clinic, message.phone, request.form.get("body") or "", message_id, request_id
        )
    except staff_reply.ReplyRefused as refused:
        with svc.db.session() as db:
            svc.audit.record(
                db,
                actor=me().actor,
                action="console.sms.reply-refused",
                clinic_id=clinic.id,
                phone=message.phone if message.phone != "anonymous" else None,
                detail={"message": message_id, "reason": str(refused)[:200]},
            )
        flash(str(refused), "error")
        return redirect(url_for("console.messages", show="all"), code=303)
    with svc.db.session() as db:
        queries.mark_handled(db, message_id)
        svc.audit.record(
            db,
            actor=me().actor,
            action="console.sms.reply",
            clinic_id=clinic.id,
            phone=message.phone,
            detail={"message": message_id, "message_sid": sent.message_sid},
        )
    flash("Reply sent.", "info")
    return redirect(url_for("console.messages", show="all"), code=303)
