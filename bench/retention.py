"""`python -m bench.retention`: the retention sweep at scale, against the old bucket walk.

Starts its own S3 endpoint (moto) and Redis, a fresh SQLite database, fills the UK bucket
with N tagged objects (appointment copies), each with its `stored_objects` ledger row, and
times, on the same objects:

- the old walk (main before issue 19, kept here only as the reference): list every object
  of every region's bucket and read each one's tags (timed on a sample of the objects and
  carried to all N: at moto's pace the whole walk would take most of an hour; its deletions
  are left out, which flatters it);
- the sweep on a typical day: the same N objects, E of them expired;
- the sweep when all N expire at once (a clinic's retention shortened), against the daily
  job's time budget (callgateway.jobs.daily.SWEEP_BUDGET).

Every S3 request is counted, so the figures can be carried to real S3, where a request
takes 20-40 ms instead of moto's loopback milliseconds. Not a test: run it by hand.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from callgateway.db import migrate
from callgateway.db.models import StoredObject
from callgateway.jobs.daily import SWEEP_BUDGET
from callgateway.privacy.sweep import sweep
from callgateway.wiring import Services, bootstrap
from devtools.services import free_port, start_moto, start_redis

REAL_S3_MS = 30.0  # a request to S3 from the same region, typical
PUT_THREADS = 16


def _fill(svc: Services, n: int, expired: int, today: date) -> list[str]:
    """N objects in the UK bucket (versioned, as in production) and their ledger rows, with
    the version each put made; the first `expired` expired."""
    assert svc.storage is not None
    client = svc.storage.client("uk")
    bucket = svc.config.regions["uk"].bucket
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    keys = [f"clinics/riverside-physio/appointments/{i:08d}.json" for i in range(n)]
    versions: dict[int, str] = {}

    def until(i: int) -> date:
        return today - timedelta(days=1) if i < expired else today + timedelta(days=365)

    def put(i: int) -> None:
        tags = {"data-category": "appointment", "retention-until": until(i).isoformat()}
        put = client.put_object(Bucket=bucket, Key=keys[i], Body=b"{}", Tagging=urlencode(tags))
        versions[i] = put["VersionId"]

    with ThreadPoolExecutor(PUT_THREADS) as pool:
        list(pool.map(put, range(n)))
    now = datetime.now(UTC)
    rows = [
        {
            "key": keys[i],
            "clinic_id": "riverside-physio",
            "region": "uk",
            "version_id": versions[i],
            "created_at": now,
            "data_category": "appointment",
            "retention_until": until(i),
        }
        for i in range(n)
    ]
    with svc.db.session() as session:
        session.execute(StoredObject.__table__.insert(), rows)  # type: ignore[attr-defined]
    return keys


def _old_walk(svc: Services, n: int, sample: int) -> tuple[float, float]:
    """The sweep's bucket pass before issue 19 (privacy/sweep.py `_orphan_objects`): every
    key listed, every object's tags read. Timed over the first `sample` keys (moto lists a
    page in time that grows with the bucket, so a full listing would measure moto) and
    carried to `n`. Returns (seconds, S3 requests) for all n objects."""
    assert svc.storage is not None
    started = time.perf_counter()
    keys = list(itertools.islice(svc.storage.keys("uk", "clinics/"), sample))
    listing = (time.perf_counter() - started) / len(keys)
    started = time.perf_counter()
    for key in keys:
        date.fromisoformat(svc.storage.tags("uk", key)["retention-until"])
    per_tag = (time.perf_counter() - started) / len(keys)
    print(
        f"  old walk, timed over {len(keys):,} objects: {listing * 1000:.2f} ms a key listed, "
        f"{per_tag * 1000:.1f} ms a tag read",
        flush=True,
    )
    return (listing + per_tag) * n, -(-n // 1000) + n


@contextmanager
def _requests(svc: Services) -> Iterator[Counter[str]]:
    """S3 requests sent by the storage adapter while the block runs, by operation."""
    assert svc.storage is not None
    seen: Counter[str] = Counter()

    def count(model: object, **_: object) -> None:
        seen[getattr(model, "name", "?")] += 1

    clients = [svc.storage.client(code) for code in svc.config.regions]
    for client in clients:
        client.meta.events.register("before-call.s3", count)
    try:
        yield seen
    finally:
        for client in clients:
            client.meta.events.unregister("before-call.s3", count)


def _timed(label: str, svc: Services, work: Callable[[], object]) -> tuple[float, int]:
    with _requests(svc) as seen:
        started = time.perf_counter()
        work()
        seconds = time.perf_counter() - started
    total = sum(seen.values())
    print(f"  {label}: {seconds:7.1f} s, {total:,} S3 requests {dict(seen)}", flush=True)
    return seconds, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--expired", type=int, default=1_000, help="expired on a typical day")
    parser.add_argument("--sample", type=int, default=3_000, help="tag reads timed, old walk")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-retention-") as tmp:
        work = Path(tmp)
        moto = start_moto(free_port(), work)
        redis = start_redis(free_port(), work)
        try:
            os.environ.update(
                {
                    "DATABASE_URL": f"sqlite:///{work / 'sweep.db'}",
                    "REDIS_URL": redis.url,
                    "AWS_ENDPOINT_URL": moto.url,
                    "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing",
                    "CALLGATEWAY_ENV": "dev",
                }
            )
            os.environ.pop("CALLGATEWAY_CELL", None)
            migrate.upgrade(os.environ["DATABASE_URL"])
            svc = bootstrap()
            assert svc.storage is not None
            for code in svc.config.regions:
                svc.storage.ensure_bucket(code, create=True)
            now = datetime.now(UTC)
            today = now.date()
            n, e = args.objects, args.expired

            print(f"filling the UK bucket with {n:,} objects ({e:,} expired)...", flush=True)
            started = time.perf_counter()
            _fill(svc, n, e, today)
            print(f"  filled in {time.perf_counter() - started:.0f} s", flush=True)

            print(f"typical day, {n:,} objects of which {e:,} expired:", flush=True)
            old_s, old_r = _old_walk(svc, n, args.sample)
            print(
                f"  old walk (list + tags of every object): {old_s:7.0f} s, {old_r:,} S3 requests"
            )
            new_s, new_r = _timed("sweep (ledger rows)", svc, lambda: sweep(svc, now, "bench"))

            print(f"all {n - e:,} remaining objects expire at once:", flush=True)
            later = now + timedelta(days=400)
            result = sweep(svc, later, actor="bench", dry_run=True)
            all_s, all_r = _timed(
                "sweep (ledger rows)",
                svc,
                lambda: sweep(svc, later, actor="bench", budget=SWEEP_BUDGET),
            )
            client, bucket = svc.storage.client("uk"), svc.config.regions["uk"].bucket
            left = client.list_object_versions(Bucket=bucket, MaxKeys=1).get("Versions", [])
            print(
                f"  deleted {result.counts()['appointment']:,} records, {len(left)} versions left"
            )

            ms = REAL_S3_MS / 1000
            print(f"\nAt {REAL_S3_MS:.0f} ms per S3 request, one at a time:")
            print(
                f"  old walk, typical day: {old_r * ms / 60:6.1f} min (moto: {old_s / 60:.1f} min)"
            )
            print(f"  sweep, typical day:    {new_r * ms / 60:6.1f} min (moto: {new_s:.1f} s)")
            print(
                f"  sweep, all at once:    {all_r * ms / 60:6.1f} min (moto: {all_s:.1f} s); "
                f"the job's budget is {SWEEP_BUDGET.total_seconds() / 60:.0f} min"
            )
        finally:
            redis.stop()
            moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
