"""The live queue: callers who wanted a person and callback requests; claim, release, done."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy.orm import Session

from callgateway.agent import intents
from callgateway.console.access import me, require_clinic, services, visible_ids
from callgateway.console.blueprint import bp
from callgateway.console.queries import work as queries
from callgateway.db.models import WorkItem

LIVE_KINDS = queries.QUEUE_KINDS
LIVE_STATUSES = ("open", "claimed")
POLL_SECONDS = 5
DONE_SHOWN = timedelta(hours=24)  # finished items stay listed this long


@bp.get("/")
@login_required
def index() -> Response:
    # The front desk starts at the queue; an admin (the practice manager) at the figures.
    target = "console.dashboard" if me().role == "admin" else "console.queue"
    return redirect(url_for(target))


@bp.get("/queue")
@login_required
def queue() -> str:
    svc = services()
    ids = visible_ids()
    with svc.db.session() as db:
        live = queries.items(db, ids, LIVE_STATUSES, LIVE_KINDS)
        done = queries.recent_items(db, ids, ("done",), LIVE_KINDS, since=svc.clock() - DONE_SHOWN)
        context = _wanted(db, live)
    return render_template(
        "console/queue.html",
        live=live,
        done=done,
        poll_seconds=POLL_SECONDS,
        wanted=context,
        now=svc.clock(),
    )


INTENTS = {
    "book": "Book an appointment",
    "move": "Move an appointment",
    "cancel": "Cancel an appointment",
    "availability": "Ask about free times",
    "hours": "Ask about opening hours",
}


def _wanted(db: Session, live: list[tuple[WorkItem, str | None]]) -> dict[str, tuple[str, str]]:
    """Per call: what the caller wanted (the first request the agent recognised) and the
    last thing they said, from the transcript."""
    lines = queries.caller_lines(db, [item.call_sid for item, _ in live])
    out: dict[str, tuple[str, str]] = {}
    for call_sid, said in lines.items():
        found = next((i for i in map(intents.intent, said) if i), None)
        out[call_sid] = (INTENTS.get(found or "", ""), said[-1])
    return out


@bp.get("/queue/rows")
@login_required
def queue_rows() -> Response:
    """The queue's rows alone, for the page's poller: new work shows without a reload."""
    ids = visible_ids()
    svc = services()
    with svc.db.session() as db:
        live = queries.items(db, ids, LIVE_STATUSES, LIVE_KINDS)
        context = _wanted(db, live)
    body = render_template(
        "console/_queue_rows.html",
        live=live,
        back=url_for("console.queue"),
        wanted=context,
        now=svc.clock(),
    )
    response = Response(body, mimetype="text/html")
    response.headers["X-Open-Count"] = str(sum(1 for item, _ in live if item.status == "open"))
    return response


def _back(default: str) -> str:
    target = request.form.get("back") or ""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console"):
        return default
    return target


def _load(item_id: int) -> WorkItem:
    with services().db.session() as db:
        item = queries.item(db, item_id)
    if item is None:
        abort(404)
    require_clinic(item.clinic_id)
    return item


@bp.post("/items/<int:item_id>/claim")
@login_required
def claim(item_id: int) -> Response:
    _load(item_id)
    svc = services()
    with svc.db.session() as db:
        # Guarded: of two people pressing Claim at once, exactly one gets it.
        won = queries.claim(db, item_id, me().id, svc.clock())
    if won:
        flash("Claimed: it is yours now.", "info")
    else:
        flash("Someone else has already claimed or finished this one.", "error")
    return redirect(_back(url_for("console.queue")), code=303)


@bp.post("/items/<int:item_id>/release")
@login_required
def release(item_id: int) -> Response:
    _load(item_id)
    svc = services()
    with svc.db.session() as db:
        released = queries.release(db, item_id, me().id, svc.clock())
    flash(
        "Released back to the queue." if released else "Only your own claim can be released.",
        "info" if released else "error",
    )
    return redirect(_back(url_for("console.queue")), code=303)


@bp.post("/items/<int:item_id>/done")
@login_required
def done(item_id: int) -> Response:
    item = _load(item_id)
    svc = services()
    with svc.db.session() as db:
        finished = queries.finish(db, item_id, item.claimed_by or me().id, svc.clock())
    flash("Marked as done." if finished else "This one was already done.", "info")
    return redirect(_back(url_for("console.queue")), code=303)
