"""The call log page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from callgateway.config import Clinic
from callgateway.console.queries.paging import newest_first
from callgateway.db.models import Call


@dataclass(frozen=True)
class Filters:
    handled_by: str | None = None
    outcome: str | None = None
    day: date | None = None  # on each clinic's own calendar
    numbers: tuple[str, ...] = ()  # E.164 candidates for what was typed


def calls(
    db: Session, clinics: list[Clinic], filters: Filters, before: int | None, size: int
) -> tuple[list[Call], int | None]:
    """One page of calls at these clinics, newest first, filtered."""
    stmt = select(Call).where(Call.clinic_id.in_([c.id for c in clinics]))
    if filters.handled_by:
        stmt = stmt.where(Call.handled_by == filters.handled_by)
    if filters.outcome:
        stmt = stmt.where(Call.outcome == filters.outcome)
    if filters.numbers:
        stmt = stmt.where(Call.cli.in_(filters.numbers))
    if filters.day:
        stmt = stmt.where(or_(*(_on_day(c, filters.day) for c in clinics)))
    return newest_first(db, stmt, Call.id, before, size)


def _on_day(clinic: Clinic, day: date):  # type: ignore[no-untyped-def]
    start = datetime.combine(day, time(0), clinic.tz)
    end = datetime.combine(day + timedelta(days=1), time(0), clinic.tz)
    return and_(Call.clinic_id == clinic.id, Call.started_at >= start, Call.started_at < end)


def outcomes(db: Session, clinic_ids: list[str]) -> list[str]:
    stmt = select(Call.outcome).where(Call.clinic_id.in_(clinic_ids), Call.outcome.is_not(None))
    return sorted({o for o in db.scalars(stmt.distinct()) if o})
