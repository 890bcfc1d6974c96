"""Region-pinned bucket adapter: a clinic's objects go only to its region's bucket.

One boto3 S3 client per region, pinned to that region's `aws_region` (AWS_ENDPOINT_URL is
honoured by boto3 itself). Every put carries SSE and the tags `data-category` and
`retention-until`; keys always start `clinics/{clinic_id}/`.

Two locks keep data in its region: `_check` refuses a clinic's key aimed at any other region
before a request is built, and every region's client refuses (in botocore's
`before-parameter-build` hook, i.e. before signing or sending) to name any bucket but its
own region's. Objects about one person live under `subject_prefix(...)`, so that a rights
export or erase finds all of them with one listing per clinic.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlencode

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from callgateway.config import Clinic, Config
from callgateway.phone import ANONYMOUS, subject_hash

# What a bucket outage looks like to callers: retry later, never write elsewhere.
StorageError = (BotoCoreError, ClientError)
# purge_many: version listings in flight at once, for keys with no recorded version (boto3
# clients are thread-safe; S3 answers each in tens of milliseconds, so the sweep waits on
# the network, not the CPU), and versions per DeleteObjects request (S3's limit).
PURGE_THREADS = 8
DELETE_BATCH = 1000


class RegionViolation(RuntimeError):
    """A write that would put a clinic's data outside its region. Raised before any request."""


def subject_prefix(clinic_id: str, phone: str, salt: str) -> str:
    """Where objects about one caller of one clinic live. The number appears only hashed;
    anonymous callers share one prefix (nobody can ask for those by number)."""
    if phone == ANONYMOUS:
        return f"clinics/{clinic_id}/anonymous/"
    return f"clinics/{clinic_id}/subjects/{subject_hash(phone, salt)}/"


@dataclass(frozen=True)
class StoredObject:
    region: str
    bucket: str
    key: str
    size: int
    sha256: str
    etag: str | None = None
    # The version this put made: S3's id in a versioned bucket, "null" in one without
    # versioning (S3's name for that version). Deleting it by id needs no listing.
    version_id: str = "null"


class RegionStorage:
    def __init__(self, config: Config, endpoint_url: str | None = None) -> None:
        self.config = config
        self._endpoint = endpoint_url
        self._clients: dict[str, Any] = {}
        self._probes: dict[str, Any] = {}

    def client(self, region_code: str) -> Any:
        if region_code not in self.config.regions:
            raise RegionViolation(f"unknown region {region_code!r}")
        if region_code not in self._clients:
            self._clients[region_code] = self._pinned(
                region_code,
                BotoConfig(
                    retries={"max_attempts": 3, "mode": "standard"},
                    connect_timeout=2,
                    read_timeout=10,
                ),
            )
        return self._clients[region_code]

    def _pinned(self, region_code: str, boto_config: BotoConfig) -> Any:
        region = self.config.regions[region_code]
        client = boto3.client(
            "s3", region_name=region.aws_region, endpoint_url=self._endpoint, config=boto_config
        )
        client.meta.events.register(
            "before-parameter-build.s3", _only_bucket(region_code, region.bucket)
        )
        return client

    def probe(self, region_code: str) -> None:
        """HEAD the region's bucket once, for a readiness check: a client pinned like
        `client()` (same region, same one-bucket guard) but with no retries and short
        timeouts, so that a bucket that is down answers a health probe in about a second,
        not after three attempts. Raises one of StorageError (or RegionViolation)."""
        if region_code not in self.config.regions:
            raise RegionViolation(f"unknown region {region_code!r}")
        if region_code not in self._probes:
            self._probes[region_code] = self._pinned(
                region_code,
                BotoConfig(
                    retries={"max_attempts": 1, "mode": "standard"},
                    connect_timeout=1,
                    read_timeout=2,
                ),
            )
        self._probes[region_code].head_bucket(Bucket=self.config.regions[region_code].bucket)

    def region_codes(self, cell: str | None = None) -> list[str]:
        """The regions this process may touch: its cell's only, or all of them in dev."""
        return [cell] if cell else list(self.config.regions)

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
        return StoredObject(
            region,
            settings.bucket,
            key,
            len(body),
            digest,
            response.get("ETag"),
            response.get("VersionId") or "null",
        )

    def get(self, clinic: Clinic, key: str) -> bytes:
        region = self._check(clinic, key, None)
        obj = self.client(region).get_object(Bucket=self.bucket_of(clinic), Key=key)
        return obj["Body"].read()

    def head(self, clinic: Clinic, key: str) -> dict[str, Any]:
        region = self._check(clinic, key, None)
        return self.client(region).head_object(Bucket=self.bucket_of(clinic), Key=key)

    def delete(self, clinic: Clinic, key: str) -> int:
        """Delete the object and, in a versioned bucket, every version of it: an erased or
        expired record must not linger as a noncurrent version. Returns versions removed."""
        region = self._check(clinic, key, None)
        return self.purge(region, key)

    def purge(self, region_code: str, key: str) -> int:
        """`delete` by region, for records whose clinic has left the config."""
        if region_code not in self.config.regions:
            raise RegionViolation(f"unknown region {region_code!r}")
        if not key.startswith("clinics/") or ".." in key:
            raise RegionViolation("key must start with 'clinics/'")
        bucket = self.config.regions[region_code].bucket
        client = self.client(region_code)
        removed = 0
        pages = client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key)
        for page in pages:
            for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                if item["Key"] == key:  # the prefix also matches longer keys
                    client.delete_object(Bucket=bucket, Key=key, VersionId=item["VersionId"])
                    removed += 1
        if not removed:
            client.delete_object(Bucket=bucket, Key=key)  # unversioned stores, or a no-op
        return removed

    def purge_many(
        self, region_code: str, objects: Sequence[tuple[str, str | None]]
    ) -> tuple[list[str], list[str]]:
        """Delete many (key, version id) of one region, up to 1000 a request: the retention
        sweep. A version recorded at put time is deleted by its id, with no listing; a key
        without one (written before versions were recorded) has every version listed
        first, as `purge` does. Returns (keys now gone, keys that failed)."""
        if region_code not in self.config.regions:
            raise RegionViolation(f"unknown region {region_code!r}")
        for key, _ in objects:
            if not key.startswith("clinics/") or ".." in key:
                raise RegionViolation("key must start with 'clinics/'")
        bucket = self.config.regions[region_code].bucket
        client = self.client(region_code)

        def versions(key: str) -> list[dict[str, str]] | None:
            try:
                found = [
                    {"Key": key, "VersionId": item["VersionId"]}
                    for page in client.get_paginator("list_object_versions").paginate(
                        Bucket=bucket, Prefix=key
                    )
                    for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
                    if item["Key"] == key  # the prefix also matches longer keys
                ]
            except StorageError:
                return None
            return found or [{"Key": key}]  # already gone: a no-op

        failed: set[str] = set()
        targets = [{"Key": k, "VersionId": v} for k, v in objects if v]
        unversioned = [k for k, v in objects if not v]
        with ThreadPoolExecutor(max_workers=PURGE_THREADS) as pool:
            for key, found in zip(unversioned, pool.map(versions, unversioned), strict=True):
                if found is None:
                    failed.add(key)
                else:
                    targets.extend(found)
        for start in range(0, len(targets), DELETE_BATCH):
            chunk = targets[start : start + DELETE_BATCH]
            try:
                response = client.delete_objects(
                    Bucket=bucket, Delete={"Objects": chunk, "Quiet": True}
                )
            except StorageError:
                failed.update(item["Key"] for item in chunk)
                continue
            failed.update(error["Key"] for error in response.get("Errors", []))
        return [key for key, _ in objects if key not in failed], sorted(failed)

    def keys(self, region_code: str, prefix: str) -> Iterator[str]:
        """Keys under `prefix` (which must be inside `clinics/`) in a region's bucket."""
        if region_code not in self.config.regions:
            raise RegionViolation(f"unknown region {region_code!r}")
        if not prefix.startswith("clinics/"):
            raise RegionViolation("prefix must start with 'clinics/'")
        bucket = self.config.regions[region_code].bucket
        pages = self.client(region_code).get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]

    def tags(self, region_code: str, key: str) -> dict[str, str]:
        bucket = self.config.regions[region_code].bucket
        response = self.client(region_code).get_object_tagging(Bucket=bucket, Key=key)
        return {t["Key"]: t["Value"] for t in response.get("TagSet", [])}

    def ensure_bucket(self, region_code: str, *, create: bool) -> bool:
        """Check the region's bucket exists in its own AWS region; create it when missing
        and `create` (dev and test endpoints; production cells come from CloudFormation).
        True when it was created."""
        region = self.config.regions[region_code]
        client = self.client(region_code)
        try:
            client.head_bucket(Bucket=region.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                raise
            if not create:
                raise RegionViolation(
                    f"bucket {region.bucket!r} of region {region_code!r} does not exist; "
                    "deploy the region's cell (infra/cloudformation/cell.yaml)"
                ) from None
            if region.aws_region == "us-east-1":  # S3 rejects it as a LocationConstraint
                client.create_bucket(Bucket=region.bucket)
            else:
                client.create_bucket(
                    Bucket=region.bucket,
                    CreateBucketConfiguration={"LocationConstraint": region.aws_region},
                )
            return True
        where = client.get_bucket_location(Bucket=region.bucket).get("LocationConstraint")
        if (where or "us-east-1") != region.aws_region:
            raise RegionViolation(
                f"bucket {region.bucket!r} is in {where or 'us-east-1'}, "
                f"not region {region_code!r}'s {region.aws_region}"
            )
        return False

    def presigned_get(self, clinic: Clinic, key: str, seconds: int = 300) -> str:
        region = self._check(clinic, key, None)
        return self.client(region).generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket_of(clinic), "Key": key}, ExpiresIn=seconds
        )


def _only_bucket(region_code: str, bucket: str) -> Any:
    """A botocore hook: this region's client may name no other bucket. It runs before the
    request is serialised, signed or sent, so a mistake upstream fails with nothing sent."""

    def guard(params: dict[str, Any], **_: Any) -> None:
        named = params.get("Bucket")
        if named is not None and named != bucket:
            raise RegionViolation(
                f"the {region_code!r} client may only use bucket {bucket!r}, not {named!r}"
            )

    return guard
