"""Readiness: can this process serve a caller end to end right now?

Each check is bounded in time (Redis's 0.5 s socket timeout, PostgreSQL's 2 s connect
timeout, a one-attempt bucket probe with a 1 s connect timeout) and the bucket probes are
cached for a few seconds, so a load balancer or an orchestrator may poll every few seconds.
A failure is named by what failed and the exception's class only: never a URL (it may
hold a password), never anything about a caller.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from callgateway.adapters.storage import RegionViolation, StorageError
from callgateway.calls import log as call_log

if TYPE_CHECKING:
    from callgateway.wiring import Services

# Journal entries waiting for the database beyond which the process is not ready: the
# drainers apply hundreds a second, so a backlog this deep means they have stalled.
JOURNAL_MAX = 10_000
# How long one bucket probe's answer stands: S3 HEADs cost a round trip each, per region.
BUCKET_TTL = 5.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: dict[str, Any]


class Readiness:
    """The readiness checks of one web process (one instance per app: it holds the cache)."""

    def __init__(
        self,
        services: Services,
        *,
        journal_max: int = JOURNAL_MAX,
        bucket_ttl: float = BUCKET_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.services = services
        self.journal_max = journal_max
        self.bucket_ttl = bucket_ttl
        self.clock = clock
        self._buckets: dict[str, tuple[float, Check]] = {}
        self._lock = threading.Lock()

    def run(self) -> list[Check]:
        checks = [self.database(), self.redis()]
        redis_ok = checks[-1].ok
        checks += self.buckets()
        if redis_ok:  # the journal lives in Redis: with Redis down, that is the failure
            checks.append(self.journal())
        return checks

    def database(self) -> Check:
        try:
            with self.services.db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means not ready; the class names it
            return Check("database", False, {"error": type(exc).__name__})
        return Check("database", True, {})

    def redis(self) -> Check:
        try:
            self.services.redis.ping()
        except Exception as exc:
            return Check("redis", False, {"error": type(exc).__name__})
        return Check("redis", True, {})

    def journal(self) -> Check:
        try:
            pending = call_log.pending_writes(self.services)
        except call_log.CallLogUnavailable as exc:
            return Check("journal", False, {"error": str(exc)})
        ok = pending <= self.journal_max
        return Check("journal", ok, {"pending": pending, "max": self.journal_max})

    def buckets(self) -> list[Check]:
        storage = self.services.storage
        if storage is None:
            return []
        return [self._bucket(code) for code in storage.region_codes(self.services.settings.cell)]

    def _bucket(self, code: str) -> Check:
        now = self.clock()
        with self._lock:
            cached = self._buckets.get(code)
        if cached is not None and now - cached[0] < self.bucket_ttl:
            return cached[1]
        check = self._probe(code)
        with self._lock:
            self._buckets[code] = (now, check)
        return check

    def _probe(self, code: str) -> Check:
        name = f"bucket:{code}"
        storage = self.services.storage
        assert storage is not None
        try:
            storage.probe(code)
        except StorageError as exc:
            error = getattr(exc, "response", {}).get("Error", {}).get("Code")
            return Check(name, False, {"error": error or type(exc).__name__})
        except RegionViolation:
            return Check(name, False, {"error": "RegionViolation"})
        return Check(name, True, {})


def report(checks: list[Check]) -> tuple[bool, dict[str, Any]]:
    """(ready, the JSON body): every check by name, and the names of those that failed."""
    failing = [c.name for c in checks if not c.ok]
    body = {
        "status": "unavailable" if failing else "ready",
        "failing": failing,
        "checks": {c.name: {"ok": c.ok, **c.detail} for c in checks},
    }
    return not failing, body
