"""Helpers for the region-storage tests: the five example regions on the moto endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import yaml

from callgateway.config import Config, load_config
from callgateway.wiring import Services
from tests.support.cli import cli_env
from tests.support.settings import EXAMPLE_CONFIG

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def with_buckets(config: Config, suffix: str, **region_overrides: dict[str, Any]) -> Config:
    regions = {
        code: region.model_copy(
            update={"bucket": f"{region.bucket}-{suffix}", **region_overrides.get(code, {})}
        )
        for code, region in config.regions.items()
    }
    return config.model_copy(update={"regions": regions})


def s3(endpoint: str, aws_region: str = "us-east-1") -> Any:
    return boto3.client(
        "s3",
        region_name=aws_region,
        endpoint_url=endpoint,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def create_buckets(services: Services) -> None:
    assert services.storage is not None
    for code in services.config.regions:
        services.storage.ensure_bucket(code, create=True)


def all_objects(endpoint: str, config: Config) -> dict[str, list[str]]:
    """Every key in every region's bucket, by region code."""
    out: dict[str, list[str]] = {}
    for code, region in config.regions.items():
        listing = s3(endpoint, region.aws_region).list_objects_v2(Bucket=region.bucket)
        out[code] = [o["Key"] for o in listing.get("Contents", [])]
    return out


def write_config(path: Path, suffix: str) -> Config:
    """The example config with this test's bucket names, written where CALLGATEWAY_CONFIG
    can point (jobs and CLI subprocesses wire themselves from the environment)."""
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    for region in data["regions"].values():
        region["bucket"] = f"{region['bucket']}-{suffix}"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


def stored_cli_env(svc: Services, config_path: Path, aws_env: str, **extra: str) -> dict[str, str]:
    """A CLI invocation's environment on the same database, Redis, config and S3 endpoint as
    `svc`; Twilio's API points at the discard port, so a command that asks it fails fast."""
    return cli_env(
        **{
            "CALLGATEWAY_CONFIG": str(config_path),
            "DATABASE_URL": svc.settings.database_url,
            "REDIS_URL": svc.settings.redis_url,
            "AWS_ENDPOINT_URL": aws_env,
            "TWILIO_API_BASE": "http://127.0.0.1:9",
            **extra,  # a test may point Twilio at the `responses` fake instead
        }
    )
