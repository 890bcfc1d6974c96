"""The outbox's RQ entry point: deliver one appointment copy or confirmation text."""

from __future__ import annotations

import contextlib

import redis

from callgateway.booking.outbox import DELIVER_JOB, backoff, deliver
from callgateway.db.models import OutboxItem
from callgateway.wiring import Services, bootstrap

# One Services per worker process, kept between jobs: deliveries are many and small.
_worker_services: Services | None = None


def deliver_job(item_id: int) -> str:
    """Run by the RQ worker. On a transient failure it schedules its own retry (the Procfile
    worker runs `--with-scheduler`); the sweeper catches anything that slips through."""
    global _worker_services
    if _worker_services is None:
        _worker_services = bootstrap()
    services = _worker_services
    result = deliver(services, item_id)
    if result.status == "retry" and services.queue is not None:
        with services.db.session() as session:
            item = session.get(OutboxItem, item_id)
            delay = backoff(item.attempts if item else 1)
        with contextlib.suppress(redis.RedisError):
            services.queue.enqueue_in(delay, DELIVER_JOB, item_id)
    return result.status
