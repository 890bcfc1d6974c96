"""One call's page: who called (masked), the clinic, times on the clinic's clock, outcome,
who handled it, the transcript with the agent's actions, the recording and voicemail
players, the appointments it touched, and its work items.

Players work like the voicemail page: a POST (audited) renders the page again with a
presigned link that expires in minutes. Another clinic's call is 403, and audited.
"""

from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError, ClientError
from flask import abort, flash, redirect, render_template, url_for
from flask_login import login_required
from werkzeug.wrappers import Response

from callgateway.adapters.storage import RegionViolation
from callgateway.console import call_story
from callgateway.console.access import me, require_clinic_audited, services
from callgateway.console.blueprint import bp
from callgateway.console.queries import call as queries
from callgateway.console.security import media_origin
from callgateway.console.voicemails import LINK_SECONDS, STORED

log = logging.getLogger(__name__)


def _page(call_id: int, playing: int | None = None, link: str | None = None) -> str:
    with services().db.session() as db:
        call = queries.call(db, call_id)
        if call is None:
            abort(404)
        clinic = require_clinic_audited(call.clinic_id, "call", call_id)
        lines = call_story.story(queries.transcript(db, call.call_sid), clinic.tz)
        recordings = queries.recordings(db, call.call_sid)
        items = queries.work_items(db, call.call_sid)
        appointments = queries.appointments(db, clinic.id, call.call_sid, call_story.refs(lines))
    return render_template(
        "console/call.html",
        call=call,
        clinic=clinic,
        lines=lines,
        recordings=recordings,
        items=items,
        appointments=appointments,
        stored=STORED,
        playing=playing,
        link=link,
        link_minutes=LINK_SECONDS // 60,
    )


@bp.get("/calls/<int:call_id>")
@login_required
def call_page(call_id: int) -> str:
    return _page(call_id)


@bp.get("/calls/sid/<call_sid>")
@login_required
def call_by_sid(call_sid: str) -> Response:
    """From the queue, voicemails and anywhere else that knows the CallSid."""
    with services().db.session() as db:
        call = queries.call_by_sid(db, call_sid[:64])
    if call is None:
        abort(404)
    call_id = call.id
    require_clinic_audited(call.clinic_id, "call", call_id)
    return redirect(url_for("console.call_page", call_id=call_id), code=303)


@bp.post("/calls/<int:call_id>/recordings/<int:recording_id>/play")
@login_required
def call_play(call_id: int, recording_id: int) -> Response | str:
    svc = services()
    with svc.db.session() as db:
        call = queries.call(db, call_id)
        if call is None:
            abort(404)
        clinic = require_clinic_audited(call.clinic_id, "recording", recording_id)
        recording = next(
            (r for r in queries.recordings(db, call.call_sid) if r.id == recording_id), None
        )
        if recording is None:
            abort(404)
        what = "voicemail" if recording.kind == "voicemail" else "recording"
        if recording.status != STORED or not recording.key:
            flash(f"This {what} is still on its way to the clinic's storage.", "error")
            return redirect(url_for("console.call_page", call_id=call_id), code=303)
        try:
            svc.storage.head(clinic, recording.key)  # type: ignore[union-attr]
            link = svc.storage.presigned_get(clinic, recording.key, LINK_SECONDS)  # type: ignore[union-attr]
        except (ClientError, BotoCoreError, RegionViolation) as exc:
            log.warning(
                "recording not playable", extra={"clinic": clinic.id, "error": type(exc).__name__}
            )
            flash(f"This {what} cannot be played right now: storage did not answer.", "error")
            return redirect(url_for("console.call_page", call_id=call_id), code=303)
        svc.audit.record(
            db,
            actor=me().actor,
            action=f"console.{what}.play",
            clinic_id=clinic.id,
            phone=recording.phone if recording.phone != "anonymous" else None,
            detail={
                "recording_sid": recording.recording_sid,
                "region": recording.region,
                "call": call_id,
            },
        )
    media_origin(link)
    return _page(call_id, playing=recording_id, link=link)
