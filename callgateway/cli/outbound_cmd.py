"""`callgateway checkins ...`, `callgateway reminders list`, `callgateway outbound ...`."""

from __future__ import annotations

import json
import mimetypes
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import click
import redis
from sqlalchemy import select

from callgateway.adapters.mailer import MailError
from callgateway.cli.common import e164, fail, main, services
from callgateway.db.models import Appointment
from callgateway.db.models_outbound import Reminder
from callgateway.outbound import checkins, reminders, summary
from callgateway.phone import mask

if TYPE_CHECKING:
    from callgateway.wiring import Services


def _clinic(svc: Services, clinic_id: str):  # type: ignore[no-untyped-def]
    clinic = svc.directory.by_id(clinic_id)
    if clinic is None:
        fail(f"--clinic: unknown clinic {clinic_id!r}")
    return clinic


@main.group("checkins")
def checkins_group() -> None:
    """Scheduled check-in calls and their alert receivers."""


@checkins_group.command("add")
@click.option("--clinic", "clinic_id", required=True)
@click.option("--phone", required=True, help="the patient (E.164)")
@click.option("--days", required=True, help="mon,tue,... or daily or weekdays")
@click.option("--time", "local_time", required=True, help="HH:MM, clinic timezone")
@click.option("--message", default=None, help="what the call says first")
@click.option(
    "--recording",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="an audio file to play instead (stored in the clinic's region bucket)",
)
@click.option("--alert", "alerts", multiple=True, required=True, help="alert receiver (E.164)")
@click.option("--name", default=None, help="how alerts name the patient (else a masked number)")
@click.option("--retries", default=2, show_default=True, type=int)
@click.option("--retry-minutes", default=5, show_default=True, type=int)
def checkins_add(
    clinic_id: str,
    phone: str,
    days: str,
    local_time: str,
    message: str | None,
    recording: str | None,
    alerts: tuple[str, ...],
    name: str | None,
    retries: int,
    retry_minutes: int,
) -> None:
    """Add a check-in schedule and queue its first call."""
    # Numbers first: a typo must not cost a database connection or a recording upload.
    patient = e164(phone, option="--phone")
    receivers = [e164(a, option="--alert") for a in alerts]
    svc = services()
    clinic = _clinic(svc, clinic_id)
    key = None
    if recording:
        kind = mimetypes.guess_type(recording)[0] or "application/octet-stream"
        if not kind.startswith("audio/"):
            fail("--recording: not an audio file (mp3 or wav)")
        key = checkins.upload_recording(svc, clinic, Path(recording).read_bytes(), kind)
    spec = checkins.ScheduleSpec(
        clinic_id=clinic.id,
        phone=patient,
        days=days,
        local_time=local_time,
        alert_numbers=receivers,
        message_text=message,
        recording_key=key,
        display_name=name,
        retries=retries,
        retry_minutes=retry_minutes,
    )
    try:
        schedule_id = checkins.add_schedule(svc, spec)
    except checkins.ScheduleError as exc:
        fail(str(exc))
    except redis.RedisError:
        fail("REDIS_URL: saved, but the first call could not be queued; run `outbound resync`")
    click.echo(json.dumps({"id": schedule_id, "clinic": clinic.id, "phone": mask(spec.phone)}))


@checkins_group.command("list")
@click.option("--clinic", "clinic_id", required=True)
def checkins_list(clinic_id: str) -> None:
    """The clinic's check-in schedules, one JSON object per line."""
    svc = services()
    clinic = _clinic(svc, clinic_id)
    for row in checkins.schedules(svc, [clinic.id]):
        click.echo(
            json.dumps(
                {
                    "id": row.id,
                    "phone": row.phone,
                    "name": row.display_name,
                    "days": row.days,
                    "time": row.local_time,
                    "retries": row.retries,
                    "retry_minutes": row.retry_minutes,
                    "alert": row.alert_numbers,
                    "active": row.active,
                    "recording": row.recording_key,
                }
            )
        )


def _toggle(clinic_id: str, schedule_id: int, active: bool) -> None:
    svc = services()
    try:
        checkins.set_active(svc, schedule_id, _clinic(svc, clinic_id).id, active)
    except checkins.ScheduleError as exc:
        fail(str(exc))
    click.echo(f"schedule {schedule_id} {'active' if active else 'paused'}")


@checkins_group.command("pause")
@click.option("--clinic", "clinic_id", required=True)
@click.option("--id", "schedule_id", required=True, type=int)
def checkins_pause(clinic_id: str, schedule_id: int) -> None:
    """Stop calling (pending calls find the schedule paused and do nothing)."""
    _toggle(clinic_id, schedule_id, False)


@checkins_group.command("resume")
@click.option("--clinic", "clinic_id", required=True)
@click.option("--id", "schedule_id", required=True, type=int)
def checkins_resume(clinic_id: str, schedule_id: int) -> None:
    _toggle(clinic_id, schedule_id, True)


@checkins_group.command("remove")
@click.option("--clinic", "clinic_id", required=True)
@click.option("--id", "schedule_id", required=True, type=int)
def checkins_remove(clinic_id: str, schedule_id: int) -> None:
    """Delete a schedule with its attempts and alerts."""
    svc = services()
    try:
        checkins.delete_schedule(svc, schedule_id, _clinic(svc, clinic_id).id)
    except checkins.ScheduleError as exc:
        fail(str(exc))
    click.echo(f"schedule {schedule_id} removed")


@checkins_group.command("call-now")
@click.option("--clinic", "clinic_id", required=True)
@click.option("--id", "schedule_id", required=True, type=int)
def checkins_call_now(clinic_id: str, schedule_id: int) -> None:
    """Place an extra check-in call now (retries and alerts as for a scheduled one)."""
    svc = services()
    try:
        at = checkins.call_now(svc, schedule_id, _clinic(svc, clinic_id).id)
    except checkins.ScheduleError as exc:
        fail(str(exc))
    except redis.RedisError:
        fail("REDIS_URL: cannot queue the call")
    click.echo(json.dumps({"id": schedule_id, "occurrence": at.isoformat()}))


@main.group("reminders")
def reminders_group() -> None:
    """Appointment reminders."""


@reminders_group.command("list")
@click.option("--clinic", "clinic_id", required=True)
@click.option("--all", "show_all", is_flag=True, help="include sent, skipped and cancelled")
def reminders_list(clinic_id: str, show_all: bool) -> None:
    """Upcoming reminders of the clinic, soonest first, one JSON object per line."""
    svc = services()
    clinic = _clinic(svc, clinic_id)
    stmt = (
        select(Reminder, Appointment.ref, Appointment.phone)
        .join(Appointment, Appointment.id == Reminder.appointment_id)
        .where(Reminder.clinic_id == clinic.id)
        .order_by(Reminder.due_at, Reminder.id)
    )
    if not show_all:
        stmt = stmt.where(Reminder.status == "scheduled")
    with svc.db.session() as session:
        rows = session.execute(stmt).all()
    for rem, ref, phone in rows:
        click.echo(
            json.dumps(
                {
                    "id": rem.id,
                    "appointment": ref,
                    "phone": mask(phone),
                    "channel": rem.channel,
                    "hours_before": rem.offset_hours,
                    "due_at": rem.due_at.isoformat() if rem.due_at else None,
                    "starts_at": rem.starts_at.isoformat(),
                    "status": rem.status,
                    "reason": rem.reason,
                }
            )
        )


@main.group("outbound")
def outbound_group() -> None:
    """Reminders, check-ins and the daily summary as a whole."""


@outbound_group.command("resync")
def outbound_resync() -> None:
    """Queue every pending reminder, next check-in and summary mail again (after a Redis
    loss, or once at deploy). Job ids are keyed: running it twice queues nothing twice."""
    svc = services()
    try:
        counts = {
            "reminders": reminders.resync(svc),
            "checkins": checkins.resync(svc),
            "summaries": summary.resync(svc),
        }
    except redis.RedisError:
        fail("REDIS_URL: cannot queue jobs")
    click.echo(json.dumps(counts))


@outbound_group.command("summary")
@click.option("--clinic", "clinic_id", required=True)
@click.option("--day", default=None, help="YYYY-MM-DD, clinic's local day [today]")
@click.option("--send", is_flag=True, help="mail it (once per clinic and day)")
def outbound_summary(clinic_id: str, day: str | None, send: bool) -> None:
    """Print (or mail) the clinic's daily outbound summary."""
    svc = services()
    clinic = _clinic(svc, clinic_id)
    try:
        when = date.fromisoformat(day) if day else svc.clock().astimezone(clinic.tz).date()
    except ValueError:
        fail("--day: expected YYYY-MM-DD")
    if send:
        if clinic.summary_email is None:
            fail(f"clinics[{clinic.id}].summary_email: not configured")
        try:
            click.echo(summary.send_email(svc, clinic.id, when))
        except MailError as exc:
            fail(str(exc))
        return
    data = summary.day_summary(svc, clinic, when)
    click.echo(summary.render_text(data, svc.url("/console/outbound/summary")), nl=False)
