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

from callgateway.config import Clinic
from callgateway.console.access import chosen_clinics, services
from callgateway.console.blueprint import bp
from callgateway.console.charts import Series, bar_chart
from callgateway.console.filters import NONE
from callgateway.console.queries import dashboard as queries

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


Tiles = list[tuple[str, str]]  # the figures above the charts: (label, value)


def _calls_figure(
    days: list[date], zone: tzinfo, scope: str, calls: list[tuple[datetime, str | None]]
) -> tuple[Figure, Tiles]:
    zeros = [0] * len(days)
    by_outcome = _per_day(
        days, zone, [(at, who if who in dict(OUTCOMES) else "none") for at, who in calls]
    )
    series = [Series(k, label, by_outcome.get(k, zeros)) for k, label in OUTCOMES]
    mix = Counter({label: sum(s.values) for s, (_, label) in zip(series, OUTCOMES, strict=True)})
    total = sum(mix.values())
    rows, totals = _table(days, series)
    figure = Figure(
        bar_chart(
            "chart-calls",
            f"Calls per day by outcome, {scope}",
            f"{total} calls in {len(days)} days: "
            + ", ".join(f"{label} {count}" for label, count in mix.items())
            + ".",
            days,
            series,
        ),
        [label for _, label in OUTCOMES],
        rows,
        totals,
    )
    ai_share = f"{100 * mix['AI-handled'] / total:.0f}%" if total else NONE
    return figure, [("Calls", str(total)), ("Handled by the AI", ai_share)]


def _bookings_figure(
    days: list[date], zone: tzinfo, scope: str, bookings: list[datetime]
) -> tuple[Figure, Tiles]:
    booked = _per_day(days, zone, [(at, "ai") for at in bookings]).get("ai", [0] * len(days))
    series = [Series("booked", "Booked by the AI", booked)]
    rows, totals = _table(days, series)
    figure = Figure(
        bar_chart(
            "chart-bookings",
            f"Appointments booked by the AI per day, {scope}",
            f"{sum(booked)} appointments booked by the AI in {len(days)} days.",
            days,
            series,
        ),
        ["Booked by the AI"],
        rows,
        totals,
    )
    return figure, [("Booked by the AI", str(sum(booked)))]


def _answer_figure(
    days: list[date], zone: tzinfo, scope: str, escalations: list[tuple[datetime, str | None]]
) -> tuple[Figure, Tiles]:
    zeros = [0] * len(days)
    esc = _per_day(days, zone, [(at, "all") for at, _ in escalations]).get("all", zeros)
    answered = _per_day(days, zone, [(at, "yes") for at, who in escalations if who == "human"]).get(
        "yes", zeros
    )
    rate = [None if esc[i] == 0 else 100 * answered[i] / esc[i] for i in range(len(days))]
    total_esc, total_answered = sum(esc), sum(answered)
    rate_rows = [
        (
            f"{d:%a %d %b}",
            [str(answered[i]), str(esc[i]), NONE if rate[i] is None else f"{rate[i]:.0f}%"],
        )
        for i, d in enumerate(days)
    ]
    overall = f"{100 * total_answered / total_esc:.0f}%" if total_esc else NONE
    figure = Figure(
        bar_chart(
            "chart-answer",
            f"Share of calls put through to a person that were answered, {scope}",
            f"{total_answered} of {total_esc} put-through calls answered ({overall}).",
            days,
            [Series("rate", "Answered", rate)],
            unit="%",
            fixed_max=100,
        ),
        ["Answered", "Put through", "Answer rate"],
        rate_rows,
        [str(total_answered), str(total_esc), overall],
    )
    return figure, [("Put-through calls answered", overall)]


def _opt_outs_figure(
    days: list[date], zone: tzinfo, scope: str, opt_outs: list[tuple[datetime, str]]
) -> tuple[Figure, Tiles]:
    zeros = [0] * len(days)
    by_channel = _per_day(days, zone, [(at, ch) for at, ch in opt_outs])
    series = [Series(k, label, by_channel.get(k, zeros)) for k, label in CHANNELS]
    total = sum(sum(s.values) for s in series)
    rows, totals = _table(days, series)
    figure = Figure(
        bar_chart(
            "chart-optouts",
            f"Opt-outs per day, {scope}",
            f"{total} opt-outs in {len(days)} days.",
            days,
            series,
        ),
        [label for _, label in CHANNELS],
        rows,
        totals,
    )
    return figure, [("Opt-outs", str(total))]


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
    scope = clinics[0].name if len(clinics) == 1 else f"{len(clinics)} clinics"
    with svc.db.session() as db:
        calls = queries.inbound_calls(db, ids, since)
        bookings = queries.ai_bookings(db, ids, since)
        escalations = queries.escalations(db, ids, since)
        opt_outs = queries.opt_outs(db, ids, since)
    built = {
        "calls": _calls_figure(days, zone, scope, calls),
        "bookings": _bookings_figure(days, zone, scope, bookings),
        "answer": _answer_figure(days, zone, scope, escalations),
        "optouts": _opt_outs_figure(days, zone, scope, opt_outs),
    }
    return render_template(
        "console/dashboard.html",
        figures={key: figure for key, (figure, _) in built.items()},
        tiles=[tile for _, tiles in built.values() for tile in tiles],
        period=period,
        periods=PERIODS,
        clinic_filter=request.args.get("clinic", ""),
        zone_name=str(zone),
        scope=scope,
    )
