"""The one place where adapters are chosen and wired (cosmicpython's bootstrap)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis
from rq import Queue

from callgateway.adapters.clock import Clock, utcnow
from callgateway.adapters.storage import RegionStorage
from callgateway.adapters.twilio_rest import TwilioRest
from callgateway.config import Clinic, Config, load_config
from callgateway.config.directory import Directory
from callgateway.config.settings import Settings
from callgateway.db.audit import AuditTrail
from callgateway.db.session import Database
from consent.gate import Gate
from consent.service import ConsentService
from recordings.desk import RecordingDesk


@dataclass
class Services:
    settings: Settings
    config: Config
    db: Database
    redis: redis.Redis
    directory: Directory
    clock: Clock = utcnow
    queue: Queue | None = None
    twilio: TwilioRest | None = None
    storage: RegionStorage | None = None
    # Adapters that later capabilities add (storage, twilio REST, agent factory, mailer…),
    # keyed by name so tests can hand in their own.
    adapters: dict[str, Any] = field(default_factory=dict)
    # Per-process memo of answers that depend on config alone (a clinic's opening TwiML):
    # config is loaded once at start, so they never go stale.
    memo: dict[Any, Any] = field(default_factory=dict)

    @property
    def audit(self) -> AuditTrail:
        """The audit trail, from what is wired now (tests may swap the clock)."""
        return AuditTrail(self.config, self.directory.by_id, self.settings.subject_salt, self.clock)

    @property
    def gate(self) -> Gate:
        """The consent gate, from what is wired now (tests may swap the Redis client)."""
        return Gate(
            self.redis, self.db.engine, self.settings.subject_salt, self.directory.by_id, self.memo
        )

    @property
    def consent(self) -> ConsentService:
        """Consent events and status, from what is wired now (tests may swap the clock)."""
        return ConsentService(
            unit_of_work=self.db.session,
            redis=self.redis,
            subject_salt=self.settings.subject_salt,
            clock=self.clock,
            config=self.config,
            clinic_by_id=self.directory.by_id,
            audit=self.audit,
            memo=self.memo,
        )

    @property
    def recordings(self) -> RecordingDesk:
        """What recordings work with, from what is wired now (tests swap the clock, Twilio,
        the bucket and the queue after bootstrap)."""
        return RecordingDesk(
            db=self.db,
            config=self.config,
            clinic_by_id=self.directory.by_id,
            clinic_by_number=self.directory.by_number,
            clock=self.clock,
            queue=self.queue,
            twilio=self.twilio,
            storage=self.storage,
            audit=self.audit,
            url=self.url,
            subject_salt=self.settings.subject_salt,
        )

    def appointment_changed(self, clinic: Clinic, appointment_id: int, event: str) -> None:
        """Booking's hook, after its commit: the appointment's reminders are planned afresh.
        Wired here, the composition root, so that booking and the agent know nothing of
        reminders. A new booking at a clinic that sends none has none to plan or cancel:
        no second transaction for nothing. Never raises (the booking stands)."""
        from callgateway.outbound.reminders import on_appointment_changed, sends_any

        if event != "booked" or sends_any(clinic):
            on_appointment_changed(self, appointment_id)

    def url(self, path: str) -> str:
        """An absolute URL Twilio will call back, under the base it signs against."""
        return self.settings.public_base_url + path


def bootstrap(settings: Settings | None = None, config: Config | None = None) -> Services:
    settings = settings or Settings.from_env()
    config = config or load_config(settings.config_path, settings.cell)
    # Short socket timeouts: a Redis that hangs must not hold a webhook past Twilio's 15 s.
    client = redis.Redis.from_url(
        settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
    )
    return Services(
        settings=settings,
        config=config,
        db=Database(settings.database_url),
        redis=client,
        directory=Directory(config),
        queue=Queue("default", connection=client),
        twilio=TwilioRest(
            settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_api_base
        ),
        storage=RegionStorage(config, settings.aws_endpoint_url),
    )
