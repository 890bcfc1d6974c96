"""`/metrics`: who may read it, and the figures read at scrape time.

Counters and histograms of events live in `callgateway.metrics`, counted where things
happen; under gunicorn (`PROMETHEUS_MULTIPROC_DIR`) they are summed over every worker here.
What describes state rather than events (the outbox, RQ's queues, recordings waiting for
their transfer, SMS outcomes, the call journal) is read from the database and Redis when
Prometheus scrapes: correct whichever process (web, worker, outbox) did the work, and
nothing on the webhook path. A source that cannot be read is reported as
`callgateway_scrape_source_up{source=...} 0`, and the scrape still answers.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from sqlalchemy import func, select

from callgateway.calls import log as call_log
from callgateway.config.settings import Settings
from callgateway.db.models import Message, OutboxItem, Recording

if TYPE_CHECKING:
    from callgateway.wiring import Services

SMS_WINDOW = timedelta(hours=24)


def access(settings: Settings, remote_addr: str | None, authorization: str | None) -> int:
    """200 when this client may read /metrics; 404 when /metrics is off (no network and no
    token configured); 403 otherwise."""
    networks = settings.metrics_allow_cidrs
    token = settings.metrics_token
    if not networks and not token:
        return 404
    if token and authorization:
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode()):
            return 200
    if networks and remote_addr:
        try:
            address = ipaddress.ip_address(remote_addr)
        except ValueError:
            return 403
        if any(address in ipaddress.ip_network(n) for n in networks):
            return 200
    return 403


class StateCollector:
    """Figures read at scrape time (prometheus-client's custom collector protocol)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def describe(self) -> list[Metric]:
        return []  # registering must not query anything

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "callgateway_scrape_source_up",
            "Whether a source of the scrape-time figures could be read (1) or not (0)",
            labels=["source"],
        )
        try:
            yield from self._database()
            up.add_metric(["database"], 1)
        except Exception:
            up.add_metric(["database"], 0)
        try:
            yield from self._redis()
            up.add_metric(["redis"], 1)
        except Exception:
            up.add_metric(["redis"], 0)
        yield up

    def _database(self) -> Iterator[Metric]:
        since = self.services.clock() - SMS_WINDOW
        with self.services.db.session() as session:
            outbox = session.scalar(
                select(func.count()).select_from(OutboxItem).where(OutboxItem.done_at.is_(None))
            )
            recordings = dict(
                session.execute(
                    select(Recording.status, func.count())
                    .where(Recording.status.in_(("pending", "failed")))
                    .group_by(Recording.status)
                ).all()
            )
            sms = dict(
                session.execute(
                    select(Message.status, func.count())
                    .where(Message.direction == "out", Message.created_at >= since)
                    .group_by(Message.status)
                ).all()
            )
        yield GaugeMetricFamily(
            "callgateway_outbox_pending",
            "Appointment copies and confirmation SMS not yet delivered (the outbox)",
            value=outbox or 0,
        )
        transfers = GaugeMetricFamily(
            "callgateway_recording_transfers",
            "Recordings still at Twilio: waiting for their transfer (pending) or given up "
            "(failed, waiting for `callgateway recordings retry`)",
            labels=["status"],
        )
        for status in ("pending", "failed"):
            transfers.add_metric([status], recordings.get(status, 0))
        yield transfers
        messages = GaugeMetricFamily(
            "callgateway_sms_last_24h",
            "Outbound SMS created in the last 24 hours, by their last known status",
            labels=["status"],
        )
        for status, count in sorted(sms.items()):
            messages.add_metric([str(status)], count)
        yield messages

    def _redis(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "callgateway_rq_jobs", "Jobs in RQ's queue, by state", labels=["queue", "state"]
        )
        queue = self.services.queue
        if queue is not None:
            jobs.add_metric([queue.name, "queued"], queue.count)
            jobs.add_metric([queue.name, "scheduled"], ScheduledJobRegistry(queue=queue).count)
            jobs.add_metric([queue.name, "failed"], FailedJobRegistry(queue=queue).count)
        yield jobs
        yield GaugeMetricFamily(
            "callgateway_call_journal_pending",
            "Call journal entries not yet applied to the database",
            value=call_log.pending_writes(self.services),
        )


def state_registry(services: Services) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(StateCollector(services))
    return registry


def exposition(state: CollectorRegistry) -> bytes:
    """The text format: this process's (or, under gunicorn, every worker's) events, then
    the scrape-time state."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        events = CollectorRegistry()
        MultiProcessCollector(events)  # reads every worker's files, at each scrape
    else:
        events = REGISTRY
    return generate_latest(events) + generate_latest(state)
