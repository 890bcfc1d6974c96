"""`callgateway rights export|erase`: data-subject requests, each one audited."""

from __future__ import annotations

import json

import click

from callgateway.adapters.storage import StorageError
from callgateway.cli.common import actor, fail, main, phone_option, services
from callgateway.privacy import rights


@main.group("rights")
def rights_group() -> None:
    """Data-subject rights: export or erase everything held for a number."""


@rights_group.command("export")
@phone_option()
@click.option("--clinic", "clinic_id", default=None, help="only this clinic [all]")
def export(phone: str, clinic_id: str | None) -> None:
    """Print every record held for the number as JSON."""
    svc = services()
    try:
        doc = rights.export(svc, phone, clinic_id, actor("rights export"))
    except rights.RightsError as exc:
        fail(str(exc))
    except StorageError as exc:
        fail(f"the region bucket cannot be read ({type(exc).__name__}); nothing exported")
    click.echo(json.dumps(doc, indent=2, ensure_ascii=False))


@rights_group.command("erase")
@phone_option()
@click.option("--clinic", "clinic_id", required=True, help="the clinic whose data goes")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def erase(phone: str, clinic_id: str, yes: bool) -> None:
    """Delete everything the clinic holds for the number (rows, bucket objects, Twilio's
    copies); an opted-out number stays suppressed by a salted hash."""
    svc = services()
    if svc.directory.by_id(clinic_id) is None:
        fail(f"--clinic: unknown clinic {clinic_id!r}")
    if not yes:
        # The question goes to stderr: stdout carries only the JSON result.
        question = f"Erase everything {clinic_id} holds for this number?"
        if not click.confirm(question, err=True, default=False):
            fail("aborted")
    try:
        done = rights.erase(svc, phone, clinic_id, actor("rights erase"))
    except rights.RightsError as exc:
        fail(str(exc))
    except StorageError as exc:
        fail(f"the region bucket cannot be read ({type(exc).__name__}); nothing erased")
    click.echo(
        json.dumps(
            {
                "clinic": clinic_id,
                "erased": done.done,
                "rows": done.counts,
                "objects": done.objects_deleted,
                "twilio_deleted": done.twilio_deleted,
                "suppressed": done.suppressed,
            }
        )
    )
