"""`callgateway retention sweep|schedule`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from callgateway.cli.common import fail, main, services
from callgateway.cli.rights_cmd import actor


def _instant(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO-8601 date or time: {value!r}") from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


@main.group("retention")
def retention_group() -> None:
    """Retention: delete what is past its date."""


@retention_group.command("sweep")
@click.option(
    "--now", "now", callback=_instant, help="sweep as if it were this time (ISO-8601, UTC)"
)
def sweep_cmd(now: datetime | None) -> None:
    """Delete every row and object whose retention date is before NOW; print counts per
    data category as JSON."""
    from callgateway.privacy.sweep import sweep

    svc = services()
    result = sweep(svc, now or svc.clock(), actor("retention sweep"))
    click.echo(json.dumps(result.counts()))
    if result.errors:
        fail(
            f"{len(result.errors)} item(s) could not be deleted now ({result.errors[0]}); "
            "they are kept for the next sweep"
        )


@retention_group.command("schedule")
def schedule_cmd() -> None:
    """Book the daily sweep on the RQ scheduler (idempotent)."""
    from callgateway.jobs.daily import schedule_daily_sweep

    svc = services()
    assert svc.queue is not None
    job = schedule_daily_sweep(svc.queue, svc.clock())
    click.echo(f"retention sweep booked: {job.id}")
