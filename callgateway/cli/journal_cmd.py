"""`callgateway journal drain`: apply the call journal to the database now.

Web processes apply it themselves every fraction of a second; this is for an operator
who wants it applied before a backup, a migration or a look at the database.
"""

from __future__ import annotations

import json

import click

from callgateway.calls import log as call_log
from callgateway.cli.common import fail, main, services


@main.group("journal")
def journal_group() -> None:
    """The call journal (the AI path's call-log writes, applied in order)."""


@journal_group.command("drain")
def drain() -> None:
    """Apply every pending entry; print counts as JSON; exit 1 if it cannot be applied."""
    svc = services()
    try:
        applied = call_log.bring_up_to_date(svc)
        pending = call_log.pending_writes(svc)
    except call_log.CallLogUnavailable as exc:
        fail(f"journal not applied ({exc}); entries stay queued and are applied later")
    click.echo(json.dumps({"applied": applied, "pending": pending}))
