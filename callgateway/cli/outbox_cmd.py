"""`callgateway outbox drain`: deliver pending bucket copies and SMS now (the sweeper)."""

from __future__ import annotations

import json
import logging
import time

import click

from callgateway import logs
from callgateway.booking import outbox
from callgateway.cli.common import fail, main, services


@main.group("outbox")
def outbox_group() -> None:
    """Durable side effects of bookings (bucket copies, confirmation SMS)."""


@outbox_group.command("drain")
@click.option("--limit", default=500, show_default=True, help="items per pass")
@click.option(
    "--watch",
    type=float,
    default=None,
    help="keep sweeping every N seconds (a sweeper process) instead of one pass",
)
def drain(limit: int, watch: float | None) -> None:
    """Deliver every due item once and print counts as JSON; exit 1 if any must retry.

    With --watch it is a process (the Procfile's `outbox`): each pass's counts are a line
    of the one JSON log stream, like the web's and the worker's."""
    if watch is not None:
        logs.configure()
    svc = services()
    while True:
        counts = outbox.sweep(svc, limit=limit)
        if watch is not None:
            logging.getLogger("callgateway.outbox").info("outbox pass", extra=counts)
        else:
            click.echo(json.dumps(counts, sort_keys=True))
            if counts["retry"]:
                fail(f"{counts['retry']} item(s) could not be delivered; they will be retried")
            return
        time.sleep(max(1.0, watch))
