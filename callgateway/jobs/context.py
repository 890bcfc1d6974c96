"""The job-wiring context: an RQ job wires its own Services and releases them when done.

Jobs carry ids, never objects, so each run bootstraps from the environment as the web
process does, and closes its database pool and Redis client before it returns.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from callgateway.wiring import Services, bootstrap


@contextmanager
def wired() -> Iterator[Services]:
    services = bootstrap()
    try:
        yield services
    finally:
        services.db.dispose()
        services.redis.close()
