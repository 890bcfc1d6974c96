"""Console pages for outbound contact: upcoming reminders, check-in schedules with their
alert receivers, and the daily summary. Staff see only their clinics (403 otherwise).

Registers on the console blueprint; numbers are shown masked and travel only in POST
bodies, and every change to a schedule is audited with the number hashed.
"""

from __future__ import annotations

from datetime import date, timedelta

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from werkzeug.wrappers import Response

from callgateway.config.hours import DAYS
from callgateway.console.access import (
    chosen_clinics,
    me,
    require_clinic,
    services,
)
from callgateway.console.blueprint import bp
from callgateway.console.queries import outbound as queries
from callgateway.db.models_outbound import CheckinSchedule
from callgateway.outbound import checkins, summary

LIMIT = 200  # upcoming reminders shown
RECENT = 50  # reminders sent, skipped or cancelled shown


@bp.get("/outbound/reminders")
@login_required
def outbound_reminders() -> str:
    clinics = chosen_clinics(request.args.get("clinic") or None)
    ids = [c.id for c in clinics]
    with services().db.session() as db:
        upcoming = queries.upcoming_reminders(db, ids, LIMIT)
        recent = queries.recent_reminders(db, ids, RECENT)
    return render_template(
        "outbound/reminders.html",
        upcoming=upcoming,
        recent=recent,
        clinic_id=request.args.get("clinic") or "",
    )


def _schedules_page(clinic_id: str = "", form: dict[str, str] | None = None) -> str:
    clinics = chosen_clinics(clinic_id or None)
    rows = checkins.schedules(services(), [c.id for c in clinics])
    return render_template(
        "outbound/checkins.html",
        schedules=rows,
        clinic_id=clinic_id,
        form=form or {},
        days=list(DAYS),
    )


@bp.get("/outbound/checkins")
@login_required
def outbound_checkins() -> str:
    return _schedules_page(request.args.get("clinic") or "")


def _audit(action: str, clinic_id: str, phone: str | None, schedule_id: int) -> None:
    svc = services()
    with svc.db.session() as db:
        svc.audit.record(
            db,
            actor=me().actor,
            action=action,
            clinic_id=clinic_id,
            phone=phone,
            detail={"schedule_id": schedule_id},
        )


def _receivers(raw: str) -> list[str]:
    return [n.strip() for n in raw.replace(",", "\n").splitlines() if n.strip()]


@bp.post("/outbound/checkins")
@login_required
def outbound_checkins_add() -> tuple[str, int] | Response:
    clinic = require_clinic(request.form.get("clinic"))
    form = {k: (request.form.get(k) or "").strip() for k in request.form if k != "csrf_token"}
    days = ",".join(request.form.getlist("days")) or form.get("days", "")
    try:
        spec = checkins.ScheduleSpec(
            clinic_id=clinic.id,
            phone=form.get("phone", ""),
            days=days,
            local_time=form.get("time", ""),
            alert_numbers=_receivers(form.get("alert", "")),
            message_text=form.get("message") or None,
            display_name=form.get("name") or None,
            retries=int(form.get("retries") or 2),
            retry_minutes=int(form.get("retry_minutes") or 5),
        )
        schedule_id = checkins.add_schedule(services(), spec)
    except (checkins.ScheduleError, ValueError) as exc:
        flash(f"Not saved: {exc}", "error")
        return _schedules_page(clinic.id, form), 400
    with services().db.session() as db:
        phone = queries.schedule(db, schedule_id).phone  # type: ignore[union-attr]
    _audit("console.checkins.add", clinic.id, phone, schedule_id)
    flash("Check-in schedule added.", "info")
    return redirect(url_for("console.outbound_checkins", clinic=clinic.id), code=303)


def _owned(schedule_id: int) -> CheckinSchedule:
    with services().db.session() as db:
        row = queries.schedule(db, schedule_id)
    require_clinic(row.clinic_id if row else None)
    assert row is not None
    return row


@bp.post("/outbound/checkins/<int:schedule_id>/active")
@login_required
def outbound_checkins_active(schedule_id: int) -> Response:
    row = _owned(schedule_id)
    active = request.form.get("active") == "1"
    checkins.set_active(services(), row.id, row.clinic_id, active)
    _audit(
        "console.checkins.resume" if active else "console.checkins.pause",
        row.clinic_id,
        row.phone,
        row.id,
    )
    flash("Schedule resumed." if active else "Schedule paused.", "info")
    return redirect(url_for("console.outbound_checkins", clinic=row.clinic_id), code=303)


@bp.post("/outbound/checkins/<int:schedule_id>/alerts")
@login_required
def outbound_checkins_alerts(schedule_id: int) -> tuple[str, int] | Response:
    row = _owned(schedule_id)
    try:
        checkins.set_alert_numbers(
            services(), row.id, row.clinic_id, _receivers(request.form.get("alert") or "")
        )
    except checkins.ScheduleError as exc:
        flash(f"Not saved: {exc}", "error")
        return _schedules_page(row.clinic_id), 400
    _audit("console.checkins.alerts", row.clinic_id, row.phone, row.id)
    flash("Alert receivers saved.", "info")
    return redirect(url_for("console.outbound_checkins", clinic=row.clinic_id), code=303)


@bp.post("/outbound/checkins/<int:schedule_id>/delete")
@login_required
def outbound_checkins_delete(schedule_id: int) -> Response | str:
    row = _owned(schedule_id)
    if request.form.get("confirm") != "yes":
        # Deleting stops a patient's check-in calls: one click is not enough.
        return render_template("outbound/checkin_delete.html", schedule=row)
    checkins.delete_schedule(services(), row.id, row.clinic_id)
    _audit("console.checkins.delete", row.clinic_id, row.phone, row.id)
    flash("Schedule deleted.", "info")
    return redirect(url_for("console.outbound_checkins", clinic=row.clinic_id), code=303)


@bp.get("/outbound/summary")
@login_required
def outbound_summary() -> str:
    clinics = chosen_clinics(request.args.get("clinic") or None)
    if not clinics:
        abort(403)
    clinic = clinics[0]
    svc = services()
    today = svc.clock().astimezone(clinic.tz).date()
    try:
        day = date.fromisoformat(request.args.get("day") or today.isoformat())
    except ValueError:
        day = today
    return render_template(
        "outbound/summary.html",
        clinic=clinic,
        data=summary.day_summary(svc, clinic, day),
        prev_day=day - timedelta(days=1),
        next_day=day + timedelta(days=1) if day < today else None,
    )
