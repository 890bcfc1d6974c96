"""Helpers for the region-storage tests: the five example regions on the moto endpoint."""

from __future__ import annotations

from typing import Any

import boto3

from callgateway.config import Config
from callgateway.wiring import Services

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
    return boto3.client("s3", region_name=aws_region, endpoint_url=endpoint)


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
