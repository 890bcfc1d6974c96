"""Region-pinned bucket adapter: a clinic's objects go only to its region's bucket.

One boto3 S3 client per region, pinned to that region's `aws_region` (AWS_ENDPOINT_URL is
honoured by boto3 itself). Every put carries SSE and the tags `data-category` and
`retention-until`; keys always start `clinics/{clinic_id}/`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlencode

import boto3
from botocore.config import Config as BotoConfig

from callgateway.config import Clinic, Config


class RegionViolation(RuntimeError):
    """A write that would put a clinic's data outside its region. Raised before any request."""


@dataclass(frozen=True)
class StoredObject:
    region: str
    bucket: str
    key: str
    size: int
    sha256: str
    etag: str | None = None


class RegionStorage:
    def __init__(self, config: Config, endpoint_url: str | None = None) -> None:
        self.config = config
        self._endpoint = endpoint_url
        self._clients: dict[str, Any] = {}

    def client(self, region_code: str) -> Any:
        if region_code not in self.config.regions:
            raise RegionViolation(f"unknown region {region_code!r}")
        if region_code not in self._clients:
            region = self.config.regions[region_code]
            self._clients[region_code] = boto3.client(
                "s3",
                region_name=region.aws_region,
                endpoint_url=self._endpoint,
                config=BotoConfig(
                    retries={"max_attempts": 3, "mode": "standard"},
                    connect_timeout=2,
                    read_timeout=10,
                ),
            )
        return self._clients[region_code]

    def bucket_of(self, clinic: Clinic) -> str:
        return self.config.regions[clinic.region].bucket

    def _check(self, clinic: Clinic, key: str, region_code: str | None) -> str:
        if clinic.region not in self.config.regions:
            raise RegionViolation(f"clinic {clinic.id!r} has no known region")
        if region_code is not None and region_code != clinic.region:
            raise RegionViolation(
                f"clinic {clinic.id!r} is in region {clinic.region!r}, not {region_code!r}"
            )
        prefix = f"clinics/{clinic.id}/"
        if not key.startswith(prefix) or ".." in key:
            raise RegionViolation(f"key must start with {prefix!r}")
        return clinic.region

    def put(
        self,
        clinic: Clinic,
        key: str,
        body: bytes,
        *,
        category: str,
        retention_until: date,
        content_type: str = "application/octet-stream",
        region_code: str | None = None,
    ) -> StoredObject:
        """Write to the clinic's region bucket only; `region_code`, if given, must match."""
        region = self._check(clinic, key, region_code)
        settings = self.config.regions[region]
        sse: dict[str, str] = {"ServerSideEncryption": "AES256"}
        if settings.kms_key_id:
            sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": settings.kms_key_id}
        digest = hashlib.sha256(body).hexdigest()
        response = self.client(region).put_object(
            Bucket=settings.bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            Tagging=urlencode(
                {"data-category": category, "retention-until": retention_until.isoformat()}
            ),
            Metadata={"sha256": digest},
            **sse,
        )
        return StoredObject(region, settings.bucket, key, len(body), digest, response.get("ETag"))

    def get(self, clinic: Clinic, key: str) -> bytes:
        region = self._check(clinic, key, None)
        obj = self.client(region).get_object(Bucket=self.bucket_of(clinic), Key=key)
        return obj["Body"].read()

    def head(self, clinic: Clinic, key: str) -> dict[str, Any]:
        region = self._check(clinic, key, None)
        return self.client(region).head_object(Bucket=self.bucket_of(clinic), Key=key)

    def delete(self, clinic: Clinic, key: str) -> None:
        region = self._check(clinic, key, None)
        self.client(region).delete_object(Bucket=self.bucket_of(clinic), Key=key)

    def presigned_get(self, clinic: Clinic, key: str, seconds: int = 300) -> str:
        region = self._check(clinic, key, None)
        return self.client(region).generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket_of(clinic), "Key": key}, ExpiresIn=seconds
        )
