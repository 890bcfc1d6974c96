"""`callgateway retention sweep|schedule`."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from callgateway.cli.common import fail, main, services
from callgateway.cli.rights_cmd import actor

# A --now this far ahead of the clock is "in the future": more than a clock's drift, less
# than any retention period.
FUTURE_SLACK = timedelta(minutes=5)
# Without a terminal, a progress line at most this often (and one at the end).
PROGRESS_EVERY = 2.0


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


class _Progress:
    """The sweep's progress on stderr (stdout carries only the result): a bar on a
    terminal, otherwise a JSON line now and then, e.g. {"done": 500, "total": 1200}."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._last = 0.0
        self._tty = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if self._tty:
            if self._bar is None:
                self._bar = click.progressbar(
                    length=max(total, 1), label="retention sweep", file=sys.stderr
                )
                self._bar.__enter__()
            self._bar.update(done - self._bar.pos)
            return
        now = time.monotonic()
        if now - self._last >= PROGRESS_EVERY or done >= total:
            self._last = now
            click.echo(json.dumps({"done": done, "total": total}), err=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


@retention_group.command("sweep")
@click.option(
    "--now", "now", callback=_instant, help="sweep as if it were this time (ISO-8601, UTC)"
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="list what would be deleted (one JSON line each); delete nothing",
)
@click.option(
    "--yes", is_flag=True, help="do not ask (on a terminal) before a sweep with --now in the future"
)
def sweep_cmd(now: datetime | None, dry_run: bool, yes: bool) -> None:
    """Delete every row and object whose retention date is before NOW; print counts per
    data category as JSON."""
    from callgateway.privacy.sweep import sweep

    svc = services()
    clock = svc.clock()
    at = now or clock
    if at > clock + FUTURE_SLACK and not dry_run and not yes:
        what = (
            f"--now {at.isoformat()} is in the future: records still inside their retention "
            "period would be deleted"
        )
        if sys.stdin.isatty():  # a person at a terminal: ask (a typo in a year is easy)
            if not click.confirm(f"{what}. Sweep anyway?", err=True, default=False):
                fail("aborted")
        else:  # a script asked for this date on purpose (contract §6): say so, and sweep
            click.echo(f"warning: {what}; sweeping as asked (pass --yes to silence)", err=True)

    def listed(item: dict[str, Any]) -> None:
        click.echo(json.dumps(item))

    progress = _Progress()
    try:
        result = sweep(
            svc,
            at,
            actor("retention sweep"),
            dry_run=dry_run,
            progress=progress,
            listing=listed if dry_run else None,
        )
    finally:
        progress.close()
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
