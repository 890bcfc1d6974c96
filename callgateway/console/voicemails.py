"""Voicemails: listed from the database, played from the clinic's region bucket.

Playing hands the browser a presigned link that expires in minutes (never the object
itself through us, never a public URL), and every play is written to the audit log.
"""

from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError, ClientError
from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import and_, select
from werkzeug.wrappers import Response

from callgateway.adapters.storage import RegionViolation
from callgateway.console import bp
from callgateway.console.access import chosen_clinics, me, require_clinic, services
from callgateway.console.security import media_origin
from callgateway.db.models import Recording, StaffUser, WorkItem

log = logging.getLogger(__name__)

LINK_SECONDS = 300
PAGE = 100
# The recording lifecycle's row status once the bucket copy is verified; before that the
# audio is still at Twilio and there is nothing of ours to play.
STORED = "stored"


@bp.get("/voicemails")
@login_required
def voicemails() -> str:
    clinics = chosen_clinics(request.args.get("clinic"))
    show = request.args.get("show", "todo")
    stmt = (
        select(Recording, WorkItem, StaffUser.email)
        .outerjoin(
            WorkItem,
            and_(WorkItem.call_sid == Recording.call_sid, WorkItem.kind == "voicemail"),
        )
        .outerjoin(StaffUser, StaffUser.id == WorkItem.claimed_by)
        .where(Recording.kind == "voicemail", Recording.clinic_id.in_([c.id for c in clinics]))
    )
    if show == "todo":
        stmt = stmt.where((WorkItem.id.is_(None)) | (WorkItem.status != "done"))
    stmt = stmt.order_by(Recording.created_at.desc()).limit(PAGE)
    with services().db.session() as db:
        rows = list(db.execute(stmt))
    return render_template(
        "console/voicemails.html",
        stored=STORED,
        rows=rows,
        show=show,
        clinic_filter=request.args.get("clinic", ""),
    )


@bp.post("/voicemails/<int:recording_id>/play")
@login_required
def play(recording_id: int) -> Response | str:
    svc = services()
    with svc.db.session() as db:
        recording = db.get(Recording, recording_id)
        if recording is None or recording.kind != "voicemail":
            abort(404)
        clinic = require_clinic(recording.clinic_id)
        if recording.status != STORED or not recording.key:
            flash("This voicemail is still on its way to the clinic's storage.", "error")
            return redirect(url_for("console.voicemails"), code=303)
        try:
            svc.storage.head(clinic, recording.key)  # type: ignore[union-attr]
            link = svc.storage.presigned_get(clinic, recording.key, LINK_SECONDS)  # type: ignore[union-attr]
        except (ClientError, BotoCoreError, RegionViolation) as exc:
            log.warning(
                "voicemail not playable", extra={"clinic": clinic.id, "error": type(exc).__name__}
            )
            flash("This voicemail cannot be played right now: storage did not answer.", "error")
            return redirect(url_for("console.voicemails"), code=303)
        svc.audit.record(
            db,
            actor=me().actor,
            action="console.voicemail.play",
            clinic_id=clinic.id,
            phone=recording.phone if recording.phone != "anonymous" else None,
            detail={"recording_sid": recording.recording_sid, "region": recording.region},
        )
        item = db.scalars(
            select(WorkItem).where(
                WorkItem.call_sid == recording.call_sid, WorkItem.kind == "voicemail"
            )
        ).one_or_none()
    media_origin(link)
    return render_template(
        "console/voicemail_play.html",
        recording=recording,
        item=item,
        link=link,
        link_minutes=LINK_SECONDS // 60,
    )
