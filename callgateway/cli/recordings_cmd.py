"""`callgateway recordings retry|reconcile`: recordings that need a person's nudge.

`retry`: a transfer that failed for good (Twilio refused the download, retries ran out
during a long bucket outage) is left for a person to decide on, with Twilio's copy kept.
Once the cause is fixed, this puts those rows back in the queue; each is audited.

`reconcile`: recordings Twilio holds that never reached us (their status callback met
an outage); the daily job does it over two days, this over as many as asked.
"""

from __future__ import annotations

import json
from datetime import timedelta

import click

from callgateway.adapters.twilio_rest import TwilioError
from callgateway.cli.common import actor, fail, main, services
from recordings import lifecycle


@main.group("recordings")
def recordings_group() -> None:
    """Call recordings and voicemails on their way to the region bucket."""


@recordings_group.command("retry")
@click.option("--clinic", "clinic_id", help="Only this clinic's failed recordings.")
@click.option("--sid", "sids", multiple=True, help="Only this RecordingSid (repeatable).")
def retry(clinic_id: str | None, sids: tuple[str, ...]) -> None:
    """Put failed recordings back to pending and queue their transfer; print counts as
    JSON. Recordings that are pending or stored are left alone."""
    svc = services()
    if clinic_id is not None and svc.directory.by_id(clinic_id) is None:
        fail(f"--clinic: unknown clinic {clinic_id!r}")
    reset, queued = lifecycle.retry_failed(
        svc.recordings,
        actor("recordings retry"),
        clinic_id=clinic_id,
        recording_sids=list(sids) or None,
    )
    click.echo(json.dumps({"reset": reset, "queued": queued}))
    if reset and queued < reset:
        click.echo(
            "warning: the job queue did not take every recording; they stay pending and "
            "the daily resume job queues them",
            err=True,
        )


@recordings_group.command("reconcile")
@click.option(
    "--days", type=click.IntRange(1, 30), default=2, show_default=True,
    help="How far back to look at Twilio's recordings.",
)  # fmt: skip
def reconcile(days: int) -> None:
    """Place the recordings Twilio has held for --days that have no row here, and queue
    their transfer to the region bucket; print the count as JSON."""
    svc = services()
    if svc.twilio is None:
        fail("no Twilio account configured")
    try:
        placed = lifecycle.reconcile(svc.recordings, svc.clock() - timedelta(days=days))
    except TwilioError as exc:
        fail(f"Twilio's recordings could not be listed ({exc})")
    click.echo(json.dumps({"placed": placed}))
