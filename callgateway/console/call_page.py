"""One call's page: who called (masked), the clinic, times on the clinic's clock, outcome,
who handled it, the transcript with the agent's actions, the recording and voicemail
players, the appointments it touched, and its work items.

Players work like the voicemail page: a POST (audited) renders the page again with a
presigned link that expires in minutes. Another clinic's call is 403, and audited.
"""

from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError, ClientError
from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from werkzeug.wrappers import Response

from callgateway.adapters.storage import RegionViolation
from callgateway.console import accounts, call_story
from callgateway.console.access import me, require_clinic_audited, services
from callgateway.console.blueprint import bp
from callgateway.console.queries import call as queries
from callgateway.console.security import media_origin
from callgateway.console.voicemails import LINK_SECONDS, STORED
from callgateway.outbound import staff_callback

log = logging.getLogger(__name__)

# What staff may record on an item; a callback bridge records its own (`callback-...`).
ITEM_OUTCOMES = {
    "reached": "Spoke to the patient",
    "left-message": "Left a message",
    "no-answer": "No answer",
    "wrong-number": "Wrong number",
    "resolved-otherwise": "Sorted another way",
}
NOTE_MAX = 2000


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
        callbacks = queries.callbacks(db, call.id)
    return render_template(
        "console/call.html",
        call=call,
        clinic=clinic,
        lines=lines,
        recordings=recordings,
        items=items,
        appointments=appointments,
        callbacks=callbacks,
        my_phone=accounts.by_id(services(), me().id).phone,  # type: ignore[union-attr]
        item_outcomes=ITEM_OUTCOMES,
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


@bp.post("/calls/<int:call_id>/callback")
@login_required
def call_back(call_id: int) -> Response:
    """Ring the signed-in member of staff, then bridge them to the caller."""
    svc = services()
    with svc.db.session() as db:
        call = queries.call(db, call_id)
        if call is None:
            abort(404)
        clinic = require_clinic_audited(call.clinic_id, "callback", call_id)
        items = [i for i, _ in queries.work_items(db, call.call_sid) if i.status != "done"]
    back = redirect(url_for("console.call_page", call_id=call_id), code=303)
    account = accounts.by_id(svc, me().id)
    try:
        staff_callback.start(
            svc,
            clinic,
            call,
            me().id,
            account.phone if account else None,
            items[0].id if items else None,
        )
    except staff_callback.CallbackRefused as refused:
        flash(str(refused), "error")
        return back
    with svc.db.session() as db:
        svc.audit.record(
            db,
            actor=me().actor,
            action="console.callback",
            clinic_id=clinic.id,
            phone=call.cli,
            detail={"call": call_id},
        )
    flash(
        "Calling your phone now: answer it and you will be put through to the patient, "
        "who sees the clinic's number.",
        "info",
    )
    return back


@bp.post("/items/<int:item_id>/outcome")
@login_required
def item_outcome(item_id: int) -> Response:
    svc = services()
    outcome = request.form.get("outcome", "")
    note = (request.form.get("note") or "").strip()[:NOTE_MAX]
    with svc.db.session() as db:
        item = queries.work_item(db, item_id)
        if item is None:
            abort(404)
        require_clinic_audited(item.clinic_id, "item", item_id)
        call = queries.call_by_sid(db, item.call_sid)
        if outcome not in ITEM_OUTCOMES:
            flash("Choose what came of it.", "error")
        else:
            item.outcome, item.note, item.updated_at = outcome, note or None, svc.clock()
            svc.audit.record(
                db,
                actor=me().actor,
                action="console.item.outcome",
                clinic_id=item.clinic_id,
                phone=item.phone if item.phone != "anonymous" else None,
                detail={"item": item_id, "outcome": outcome},
            )
            flash("Outcome recorded.", "info")
    if call is None:
        return redirect(url_for("console.queue"), code=303)
    return redirect(url_for("console.call_page", call_id=call.id), code=303)
