"""The practice manager's first page: how the phone line did, day by day.

Counts are made in Python over one narrow query per figure: a clinic's month is a few
thousand rows, and the same code then runs on SQLite and PostgreSQL alike. Days are the
clinic's own calendar days (UTC when the chosen clinics span timezones).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from flask import render_template, request
from flask_login import login_required
from sqlalchemy import select

from callgateway.config import Clinic
from callgateway.console import bp
from callgateway.console.access import chosen_clinics, services
from callgateway.console.charts import Series, bar_chart
from callgateway.console.filters import NONE
from callgateway.db.models import Appointment, Call, ConsentEvent, WorkItem

PERIODS = (7, 14, 30, 90)
# handled_by -> the manager's words, in the order the stacked bars are drawn.
OUTCOMES = (
    ("ai", "AI-handled"),
    ("human", "Person"),
    ("voicemail", "Voicemail"),
    ("none", "Missed"),
)
CHANNELS = (("sms", "By text"), ("voice", "By voice"), ("staff", "By staff"))


@dataclass(frozen=True)
class Figure:
    """One chart and the table beneath it."""

    chart: Any
    columns: list[str]
    rows: list[tuple[str, list[str]]]
    totals: list[str]


def _zone(clinics: list[Clinic]) -> tzinfo:
    zones = {c.timezone for c in clinics}
    return ZoneInfo(zones.pop()) if len(zones) == 1 else ZoneInfo("UTC")


def _days(zone: tzinfo, now: datetime, count: int) -> list[date]:
    today = now.astimezone(zone).date()
    return [today - timedelta(days=count - 1 - i) for i in range(count)]


def _per_day(
    days: list[date], zone: tzinfo, stamps: list[tuple[datetime, str]]
) -> dict[str, list[int]]:
    """(time, key) pairs -> {key: [count per day]} on the chosen calendar."""
    index = {d: i for i, d in enumerate(days)}
    out: dict[str, list[int]] = {}
    for at, key in stamps:
        i = index.get(at.astimezone(zone).date())
        if i is not None:
            out.setdefault(key, [0] * len(days))[i] += 1
    return out


def _table(days: list[date], series: list[Series]) -> tuple[list[tuple[str, list[str]]], list[str]]:
    rows = [
        (f"{d:%a %d %b}", [NONE if s.values[i] is None else f"{s.values[i]:.0f}" for s in series])
        for i, d in enumerate(days)
    ]
    totals = [f"{sum(v or 0 for v in s.values):.0f}" for s in series]
    return rows, totals


@bp.get("/dashboard")
@login_required
def dashboard() -> str:
    clinics = chosen_clinics(request.args.get("clinic"))
    period = request.args.get("days", type=int)
    period = period if period in PERIODS else 14
    svc = services()
    zone = _zone(clinics)
    days = _days(zone, svc.clock(), period)
    since = datetime.combine(days[0], time.min, zone)
    ids = [c.id for c in clinics]

    with svc.db.session() as db:
        calls = list(
            db.execute(
                select(Call.started_at, Call.handled_by).where(
                    Call.clinic_id.in_(ids), Call.direction == "inbound", Call.started_at >= since
                )
            )
        )
        bookings = list(
            db.scalars(
                select(Appointment.created_at).where(
                    Appointment.clinic_id.in_(ids),
                    Appointment.source == "ai",
                    Appointment.created_at >= since,
                )
            )
        )
        escalations = list(
            db.execute(
                select(WorkItem.created_at, Call.handled_by)
                .outerjoin(Call, Call.call_sid == WorkItem.call_sid)
                .where(
                    WorkItem.clinic_id.in_(ids),
                    WorkItem.kind == "escalation",
                    WorkItem.created_at >= since,
                )
            )
        )
        opt_outs = list(
            db.execute(
                select(ConsentEvent.created_at, ConsentEvent.channel).where(
                    ConsentEvent.clinic_id.in_(ids),
                    ConsentEvent.state == "opted_out",
                    ConsentEvent.created_at >= since,
                )
            )
        )

    n = len(days)
    zeros = [0] * n
    scope = clinics[0].name if len(clinics) == 1 else f"{len(clinics)} clinics"

    by_outcome = _per_day(
        days, zone, [(at, who if who in dict(OUTCOMES) else "none") for at, who in calls]
    )
    call_series = [Series(k, label, by_outcome.get(k, zeros)) for k, label in OUTCOMES]
    mix = Counter(
        {label: sum(s.values) for s, (_, label) in zip(call_series, OUTCOMES, strict=True)}
    )
    call_total = sum(mix.values())

    booked = _per_day(days, zone, [(at, "ai") for at in bookings]).get("ai", zeros)
    booking_series = [Series("booked", "Booked by the AI", booked)]

    esc = _per_day(days, zone, [(at, "all") for at, _ in escalations]).get("all", zeros)
    answered = _per_day(days, zone, [(at, "yes") for at, who in escalations if who == "human"]).get(
        "yes", zeros
    )
    rate = [None if esc[i] == 0 else 100 * answered[i] / esc[i] for i in range(n)]
    rate_series = [Series("rate", "Answered", rate)]
    total_esc, total_answered = sum(esc), sum(answered)

    by_channel = _per_day(days, zone, [(at, ch) for at, ch in opt_outs])
    opt_series = [Series(k, label, by_channel.get(k, zeros)) for k, label in CHANNELS]

    figures: dict[str, Figure] = {}
    rows, totals = _table(days, call_series)
    figures["calls"] = Figure(
        bar_chart(
            "chart-calls",
            f"Calls per day by outcome, {scope}",
            f"{call_total} calls in {n} days: "
            + ", ".join(f"{label} {count}" for label, count in mix.items())
            + ".",
            days,
            call_series,
        ),
        [label for _, label in OUTCOMES],
        rows,
        totals,
    )
    rows, totals = _table(days, booking_series)
    figures["bookings"] = Figure(
        bar_chart(
            "chart-bookings",
            f"Appointments booked by the AI per day, {scope}",
            f"{sum(booked)} appointments booked by the AI in {n} days.",
            days,
            booking_series,
        ),
        ["Booked by the AI"],
        rows,
        totals,
    )
    rate_rows = [
        (
            f"{d:%a %d %b}",
            [str(answered[i]), str(esc[i]), NONE if rate[i] is None else f"{rate[i]:.0f}%"],
        )
        for i, d in enumerate(days)
    ]
    overall = f"{100 * total_answered / total_esc:.0f}%" if total_esc else NONE
    figures["answer"] = Figure(
        bar_chart(
            "chart-answer",
            f"Share of calls put through to a person that were answered, {scope}",
            f"{total_answered} of {total_esc} put-through calls answered ({overall}).",
            days,
            rate_series,
            unit="%",
            fixed_max=100,
        ),
        ["Answered", "Put through", "Answer rate"],
        rate_rows,
        [str(total_answered), str(total_esc), overall],
    )
    rows, totals = _table(days, opt_series)
    figures["optouts"] = Figure(
        bar_chart(
            "chart-optouts",
            f"Opt-outs per day, {scope}",
            f"{sum(sum(s.values) for s in opt_series)} opt-outs in {n} days.",
            days,
            opt_series,
        ),
        [label for _, label in CHANNELS],
        rows,
        totals,
    )
    tiles = [
        ("Calls", str(call_total)),
        (
            "Handled by the AI",
            f"{100 * mix['AI-handled'] / call_total:.0f}%" if call_total else NONE,
        ),
        ("Booked by the AI", str(sum(booked))),
        ("Put-through calls answered", overall),
        ("Opt-outs", str(sum(sum(s.values) for s in opt_series))),
    ]
    return render_template(
        "console/dashboard.html",
        figures=figures,
        tiles=tiles,
        period=period,
        periods=PERIODS,
        clinic_filter=request.args.get("clinic", ""),
        zone_name=str(zone),
        scope=scope,
    )
