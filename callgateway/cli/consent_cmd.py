"""`callgateway consent status --clinic ID --phone E164`."""

from __future__ import annotations

import json

import click
from sqlalchemy.exc import SQLAlchemyError

from callgateway.cli.common import fail, main, services
from callgateway.phone import InvalidNumber, parse_e164


@main.group("consent")
def consent_group() -> None:
    """The consent ledger (opt-outs and opt-ins per clinic and number)."""


@consent_group.command("status")
@click.option("--clinic", "clinic_id", required=True, help="clinic id from the config")
@click.option("--phone", "raw_phone", required=True, help="E.164 number")
def status(clinic_id: str, raw_phone: str) -> None:
    """Print the number's consent state at the clinic and its events, as JSON."""
    try:
        phone = parse_e164(raw_phone, strict=False)
    except InvalidNumber as exc:
        fail(f"--phone: {exc}")
    svc = services()
    if svc.directory.by_id(clinic_id) is None:
        fail(f"--clinic: unknown clinic {clinic_id!r}")
    try:
        result = svc.consent.status(clinic_id, phone)
    except SQLAlchemyError as exc:
        fail(f"DATABASE_URL: cannot read the consent ledger: {type(exc).__name__}")
    finally:
        svc.db.dispose()
    click.echo(json.dumps(result.as_json(), indent=2))
