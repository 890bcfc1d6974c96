"""Voicemails: listed from the database, played from the clinic's region bucket.

Playing hands the browser a presigned link that expires in minutes (never the object
itself through us, never a public URL), and every play is written to the audit log.
"""

from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError, ClientError
from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from werkzeug.wrappers import Response

from callgateway.adapters.storage import RegionViolation
from callgateway.console.access import chosen_clinics, me, require_clinic, services
from callgateway.console.blueprint import bp
from callgateway.console.queries import voicemails as queries
from callgateway.console.security import media_origin

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
    with services().db.session() as db:
        rows = queries.voicemails(db, [c.id for c in clinics], show == "todo", PAGE)
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
        recording = queries.voicemail(db, recording_id)
        if recording is None:
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
        item = queries.work_item(db, recording.call_sid)
    media_origin(link)
    return render_template(
        "console/voicemail_play.html",
        recording=recording,
        item=item,
        link=link,
        link_minutes=LINK_SECONDS // 60,
    )
