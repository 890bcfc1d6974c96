"""`callgateway recordings retry`: queue failed recording transfers again.

A transfer that failed for good (Twilio refused the download, retries ran out during a
long bucket outage) is left for a person to decide on, with Twilio's copy kept. Once the
cause is fixed, this puts those rows back in the queue; each is audited.
"""

from __future__ import annotations

import json

import click

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
        svc,
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
