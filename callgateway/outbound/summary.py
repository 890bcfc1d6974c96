"""The daily outbound summary per clinic: the console page, and an e-mail when configured.

The e-mail carries counts and masked numbers only (no names, no full numbers): mail leaves
the region and is read on all sorts of devices; the console has the rest.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING

from sqlalchemy import and_, or_, select, update

from callgateway.adapters.mailer import MailError, mailer_for
from callgateway.config import Clinic
from callgateway.db.insert import insert_new
from callgateway.db.models_outbound import (
    CheckinAlert,
    CheckinAttempt,
    CheckinSchedule,
    Reminder,
    SummaryEmail,
)
from callgateway.outbound import scheduling
from callgateway.outbound.timing import at_local
from callgateway.phone import mask

if TYPE_CHECKING:
    from callgateway.wiring import Services

log = logging.getLogger(__name__)

SEND_AT = time(7, 0)  # local: yesterday's summary before the morning's first patient


@dataclass
class CheckinLine:
    schedule_id: int
    display_name: str | None
    masked_phone: str
    at: str  # local HH:MM of the occurrence
    outcome: str  # confirmed | help | alerted | skipped | pending
    detail: str | None
    calls: int
    alerts: Counter[str] = field(default_factory=Counter)  # sent | skipped | failed | ...


@dataclass
class DaySummary:
    clinic_id: str
    clinic_name: str
    day: date
    reminders: Counter[str]
    responses: Counter[str]
    checkins: list[CheckinLine]

    @property
    def alerts_not_delivered(self) -> int:
        return sum(n for line in self.checkins for s, n in line.alerts.items() if s != "sent")


def bounds(clinic: Clinic, day: date) -> tuple[datetime, datetime]:
    return at_local(day, time(0), clinic.tz), at_local(day + timedelta(days=1), time(0), clinic.tz)


def day_summary(services: Services, clinic: Clinic, day: date) -> DaySummary:
    start, end = bounds(clinic, day)
    with services.db.session() as session:
        rems = session.scalars(
            select(Reminder).where(
                Reminder.clinic_id == clinic.id,
                or_(
                    and_(Reminder.due_at >= start, Reminder.due_at < end),
                    and_(
                        Reminder.due_at.is_(None),
                        Reminder.created_at >= start,
                        Reminder.created_at < end,
                    ),
                ),
            )
        ).all()
        attempts = session.scalars(
            select(CheckinAttempt)
            .where(
                CheckinAttempt.clinic_id == clinic.id,
                CheckinAttempt.occurrence >= start,
                CheckinAttempt.occurrence < end,
            )
            .order_by(CheckinAttempt.occurrence, CheckinAttempt.attempt_no)
        ).all()
        alert_rows = session.scalars(
            select(CheckinAlert).where(
                CheckinAlert.clinic_id == clinic.id,
                CheckinAlert.occurrence >= start,
                CheckinAlert.occurrence < end,
            )
        ).all()
        ids = {a.schedule_id for a in attempts}
        scheds = {
            s.id: s
            for s in session.scalars(select(CheckinSchedule).where(CheckinSchedule.id.in_(ids)))
        }
    lines: dict[tuple[int, datetime], CheckinLine] = {}
    for a in attempts:
        sched = scheds.get(a.schedule_id)
        key = (a.schedule_id, a.occurrence)
        line = lines.get(key)
        if line is None:
            line = lines[key] = CheckinLine(
                schedule_id=a.schedule_id,
                display_name=sched.display_name if sched else None,
                masked_phone=mask(sched.phone) if sched else "",
                at=a.occurrence.astimezone(clinic.tz).strftime("%H:%M"),
                outcome="pending",
                detail=None,
                calls=0,
            )
        if a.call_sid:
            line.calls += 1
        if a.status in ("confirmed", "help"):
            line.outcome = a.status
        elif a.status == "skipped" and line.outcome == "pending":
            line.outcome, line.detail = "skipped", a.reason
        elif line.outcome == "pending" and a.status not in ("calling", "in-call"):
            line.detail = a.status
    for alert in alert_rows:
        line = lines.get((alert.schedule_id, alert.occurrence))
        if line is None:
            continue
        line.alerts[alert.status] += 1
        if line.outcome == "pending":
            line.outcome, line.detail = "alerted", alert.reason
    return DaySummary(
        clinic_id=clinic.id,
        clinic_name=clinic.name,
        day=day,
        reminders=Counter(r.status for r in rems),
        responses=Counter(r.response for r in rems if r.response),
        checkins=sorted(lines.values(), key=lambda line: (line.at, line.schedule_id)),
    )


def render_text(summary: DaySummary, console_url: str) -> str:
    r = summary.reminders
    lines = [
        f"{summary.clinic_name}: outbound summary for {summary.day:%A %d %B %Y}",
        "",
        "Appointment reminders",
        f"  sent: {r['sent']}  skipped: {r['skipped']}  failed: {r['failed']}  "
        f"cancelled: {r['cancelled']}  still scheduled: {r['scheduled']}",
        f"  patients confirmed: {summary.responses['confirmed']}  "
        f"cancelled by phone: {summary.responses['cancelled']}  "
        f"asked for a person: {summary.responses['person']}",
        "",
        f"Check-in calls ({len(summary.checkins)})",
    ]
    for line in summary.checkins:
        alerts = ", ".join(f"{k} {v}" for k, v in sorted(line.alerts.items())) or "none"
        detail = f" ({line.detail})" if line.detail else ""
        lines.append(
            f"  {line.at} schedule #{line.schedule_id} {line.masked_phone}: "
            f"{line.outcome}{detail}; calls {line.calls}; alerts {alerts}"
        )
    if summary.alerts_not_delivered:
        lines += ["", f"ATTENTION: {summary.alerts_not_delivered} alert(s) were not delivered."]
    lines += ["", f"Details: {console_url}"]
    return "\n".join(lines) + "\n"


def send_email(services: Services, clinic_id: str, day: date) -> str:
    """Mail one clinic's summary for `day`, once (claimed by (clinic, day))."""
    clinic = services.directory.by_id(clinic_id)
    if clinic is None or clinic.summary_email is None:
        return "not-configured"
    mailer = mailer_for(services, clinic)
    assert mailer is not None
    now = services.clock()
    with services.db.session() as session:
        claimed = insert_new(
            session,
            SummaryEmail,
            {
                "clinic_id": clinic.id,
                "day": day,
                "status": "sending",
                "sent_at": None,
                "error": None,
            },
            ["clinic_id", "day"],
        ) is not None or bool(
            session.execute(
                update(SummaryEmail)
                .where(
                    SummaryEmail.clinic_id == clinic.id,
                    SummaryEmail.day == day,
                    SummaryEmail.status == "retry",
                )
                .values(status="sending")
            ).rowcount
        )
    if not claimed:
        return "already-sent"
    summary = day_summary(services, clinic, day)
    message = EmailMessage()
    message["Subject"] = f"{clinic.name}: outbound summary {day.isoformat()}"
    message["From"] = clinic.summary_email.from_
    message["To"] = ", ".join(clinic.summary_email.to)
    message.set_content(
        render_text(
            summary, services.url(f"/console/outbound/summary?clinic={clinic.id}&day={day}")
        )
    )
    try:
        mailer.send(message)
    except MailError as exc:
        _mark(services, clinic.id, day, "retry", error=str(exc))
        raise
    _mark(services, clinic.id, day, "sent", sent_at=now)
    log.info("summary mailed", extra={"clinic": clinic.id})
    return "sent"


def _mark(services: Services, clinic_id: str, day: date, status: str, **fields: object) -> None:
    with services.db.session() as session:
        session.execute(
            update(SummaryEmail)
            .where(SummaryEmail.clinic_id == clinic_id, SummaryEmail.day == day)
            .values(status=status, **fields)
        )


def schedule_next(services: Services, clinic: Clinic) -> datetime | None:
    """Enqueue the next morning's mail of yesterday's summary (keyed: safe to repeat)."""
    if clinic.summary_email is None:
        return None
    now = services.clock()
    local_today = now.astimezone(clinic.tz).date()
    at = at_local(local_today, SEND_AT, clinic.tz)
    if at <= now:
        at = at_local(local_today + timedelta(days=1), SEND_AT, clinic.tz)
    day = at.astimezone(clinic.tz).date() - timedelta(days=1)
    scheduling.schedule(
        services,
        at,
        scheduling.DAILY_SUMMARY,
        clinic.id,
        day.isoformat(),
        job_id=f"summary-{clinic.id}-{day:%Y%m%d}",
        retry=True,
    )
    return at


def send_and_schedule_next(services: Services, clinic_id: str, day: date) -> str:
    clinic = services.directory.by_id(clinic_id)
    if clinic is None:
        return "gone"
    try:
        return send_email(services, clinic_id, day)
    finally:
        schedule_next(services, clinic)


def resync(services: Services) -> int:
    return sum(1 for c in services.directory.all() if schedule_next(services, c))
