"""`callgateway storage init`: each configured region's bucket, in its own AWS region."""

from __future__ import annotations

import click

from callgateway.adapters.storage import RegionViolation, StorageError
from callgateway.cli.common import fail, main, services


@main.group("storage")
def storage_group() -> None:
    """Region buckets."""


@storage_group.command("init")
def init() -> None:
    """Create each region's bucket when missing (local endpoints only; a production cell's
    bucket comes from infra/cloudformation/cell.yaml) and check it sits in its region."""
    svc = services()
    assert svc.storage is not None
    # Against real AWS a missing bucket means a missing cell: creating a bare bucket would
    # skip its encryption key, policy and lifecycle rules.
    create = svc.settings.aws_endpoint_url is not None
    for code in svc.storage.region_codes(svc.settings.cell):
        region = svc.config.regions[code]
        try:
            created = svc.storage.ensure_bucket(code, create=create)
        except RegionViolation as exc:
            fail(str(exc))
        except StorageError as exc:
            fail(f"regions.{code}.bucket: {type(exc).__name__}: {exc}")
        state = "created" if created else "present"
        click.echo(f"{code}: bucket {region.bucket} in {region.aws_region} ({state})")
