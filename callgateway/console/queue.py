"""The live queue: callers who wanted a person and callback requests; claim, release, done."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import select, update

from callgateway.console import bp
from callgateway.console.access import me, require_clinic, services, visible_ids
from callgateway.db.models import StaffUser, WorkItem

LIVE_KINDS = ("escalation", "callback")
POLL_SECONDS = 5


@bp.get("/")
@login_required
def index() -> Response:
    # The front desk starts at the queue; an admin (the practice manager) at the figures.
    target = "console.dashboard" if me().role == "admin" else "console.queue"
    return redirect(url_for(target))


def _items(statuses: tuple[str, ...], kinds: tuple[str, ...], since_hours: int | None = None):  # type: ignore[no-untyped-def]
    svc = services()
    stmt = (
        select(WorkItem, StaffUser.email)
        .outerjoin(StaffUser, StaffUser.id == WorkItem.claimed_by)
        .where(
            WorkItem.clinic_id.in_(visible_ids()),
            WorkItem.kind.in_(kinds),
            WorkItem.status.in_(statuses),
        )
    )
    if since_hours is not None:
        stmt = stmt.where(WorkItem.updated_at >= svc.clock() - timedelta(hours=since_hours))
        stmt = stmt.order_by(WorkItem.updated_at.desc()).limit(20)
    else:
        stmt = stmt.order_by(WorkItem.created_at.asc())
    with svc.db.session() as db:
        return [(item, email) for item, email in db.execute(stmt)]


@bp.get("/queue")
@login_required
def queue() -> str:
    return render_template(
        "console/queue.html",
        live=_items(("open", "claimed"), LIVE_KINDS),
        done=_items(("done",), LIVE_KINDS, since_hours=24),
        poll_seconds=POLL_SECONDS,
    )


@bp.get("/queue/rows")
@login_required
def queue_rows() -> Response:
    """The queue's rows alone, for the page's poller: new work shows without a reload."""
    live = _items(("open", "claimed"), LIVE_KINDS)
    body = render_template("console/_queue_rows.html", live=live, back=url_for("console.queue"))
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
        item = db.get(WorkItem, item_id)
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
        won = db.execute(
            update(WorkItem)
            .where(WorkItem.id == item_id, WorkItem.status == "open")
            .values(status="claimed", claimed_by=me().id, updated_at=svc.clock())
        ).rowcount
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
        released = db.execute(
            update(WorkItem)
            .where(
                WorkItem.id == item_id,
                WorkItem.status == "claimed",
                WorkItem.claimed_by == me().id,
            )
            .values(status="open", claimed_by=None, updated_at=svc.clock())
        ).rowcount
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
        finished = db.execute(
            update(WorkItem)
            .where(WorkItem.id == item_id, WorkItem.status.in_(("open", "claimed")))
            .values(
                status="done",
                claimed_by=item.claimed_by or me().id,
                updated_at=svc.clock(),
            )
        ).rowcount
    flash("Marked as done." if finished else "This one was already done.", "info")
    return redirect(_back(url_for("console.queue")), code=303)
