"""Recording consent events (SMS keyword, voice, staff) and reading a number's status.

Every event goes the same way: insert into the ledger (a repeated source id adds nothing),
commit, and only then write the new state through to the gate's cache, so that whatever
the cache says is already durable and a STOP counts from the very next webhook. Callers
reach it as `services.consent`, a ConsentService.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis
from sqlalchemy.orm import Session

from callgateway.config import Clinic, Config
from callgateway.config.retention import retention_until
from callgateway.db.audit import AuditTrail
from callgateway.phone import ANONYMOUS, InvalidNumber, parse_e164, subject_hash
from consent import cache, ledger, replies
from consent.keywords import Keyword

log = logging.getLogger(__name__)


class UnknownClinic(ValueError):
    """No clinic with this id in the config."""


def _number(phone: str) -> str:
    if not phone or phone == ANONYMOUS:
        raise InvalidNumber("consent needs a number: the caller's was withheld")
    return parse_e164(phone, strict=False)


def keyword_reply(clinic: Clinic, keyword: Keyword) -> str | None:
    """Our reply to a keyword, or None where Twilio's own opt-out handling answers for the
    number (it replies to STOP, START and HELP itself; two replies would be one too many)."""
    if clinic.sms.twilio_opt_out_replies:
        return None
    return replies.for_keyword(keyword, clinic.name)


@dataclass(frozen=True)
class Status:
    clinic: str
    phone: str
    state: str
    since: datetime | None
    events: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "clinic": self.clinic,
            "phone": self.phone,
            "state": self.state,
            "since": self.since.isoformat() if self.since else None,
            "events": self.events,
        }


@dataclass(frozen=True)
class ConsentService:
    """Records consent events and reads a number's status. `services.consent` builds one
    from the fields wired at the time of asking (tests swap the clock and the Redis client
    after bootstrap), so hold it for a request at most."""

    # A unit of work: a session committed on success, rolled back on error (Database.session).
    unit_of_work: Callable[[], AbstractContextManager[Session]]
    redis: redis.Redis
    subject_salt: str
    clock: Callable[[], datetime]
    config: Config  # for the retention date of each event
    clinic_by_id: Callable[[str], Clinic | None]
    audit: AuditTrail
    # The process's memo, where the cache registers its write script once.
    memo: dict[Any, Any]

    def record_event(
        self,
        clinic_id: str,
        phone: str,
        state: str,
        channel: str,
        source_id: str,
        *,
        actor: str | None = None,
    ) -> bool:
        """Append one event and write the state through. True when the event was new.

        A repeated `source_id` (a retried webhook) adds nothing and returns False; the cache
        is refreshed anyway, in case the first delivery's write-through was lost. `actor`
        adds an audit entry in the same unit of work (staff actions).
        """
        clinic = self._clinic(clinic_id)
        phone = _number(phone)
        now = self.clock()
        with self.unit_of_work() as session:
            new = ledger.append(
                session,
                ledger.NewEvent(
                    clinic_id=clinic.id,
                    phone=phone,
                    state=state,
                    channel=channel,
                    source_id=source_id,
                    at=now,
                    retention_until=retention_until(self.config, clinic, "consent", now),
                ),
            )
            if new and actor is not None:
                self.audit.record(
                    session,
                    actor=actor,
                    action=f"consent.{state}",
                    clinic_id=clinic.id,
                    phone=phone,
                    detail={"channel": channel},
                )
            snap = ledger.snapshot(
                session, clinic.id, phone, subject_hash(phone, self.subject_salt)
            )
        # After the commit, never before: the cache must not claim what may not be durable.
        cache.put(self.redis, self.subject_salt, clinic.id, phone, snap, memo=self.memo)
        log.info(
            "consent event",
            extra={"clinic": clinic.id, "channel": channel, "state": state, "new": new},
        )
        return new

    def record_opt_out(self, clinic_id: str, phone: str, channel: str, source_id: str) -> bool:
        return self.record_event(clinic_id, phone, ledger.OPTED_OUT, channel, source_id)

    def record_opt_in(self, clinic_id: str, phone: str, channel: str, source_id: str) -> bool:
        return self.record_event(clinic_id, phone, ledger.OPTED_IN, channel, source_id)

    def record_sms_keyword(
        self, clinic_id: str, phone: str, keyword: Keyword, message_sid: str
    ) -> bool:
        """STOP/START family by SMS; the MessageSid is the source id. True when new."""
        if keyword is Keyword.OPT_OUT:
            return self.record_opt_out(clinic_id, phone, "sms", message_sid)
        if keyword is Keyword.OPT_IN:
            return self.record_opt_in(clinic_id, phone, "sms", message_sid)
        raise ValueError(f"{keyword} is not a consent event")

    def record_voice_opt_out(self, clinic_id: str, phone: str, call_sid: str) -> bool:
        """The caller asked by voice not to be contacted. One event per call, however many
        turns (or retried turns) say so. A withheld number has nothing to record: False."""
        if not phone or phone == ANONYMOUS:
            return False
        return self.record_opt_out(clinic_id, phone, "voice", f"{call_sid}:opt_out")

    def record_staff_event(
        self,
        clinic_id: str,
        phone: str,
        state: str,
        user_id: int | str,
        request_id: str | None = None,
    ) -> bool:
        """A staff member recorded an opt-out or opt-in in the console; audited.

        Pass the form's `request_id` (e.g. a token rendered into it) to make a double submit
        one event; without it every call is a new event.
        """
        source_id = f"staff:{user_id}:{request_id or uuid.uuid4().hex}"
        if len(source_id) > 96:
            raise ValueError("staff consent source id longer than 96 characters")
        return self.record_event(
            clinic_id, phone, state, "staff", source_id, actor=f"user:{user_id}"
        )

    def status(self, clinic_id: str, phone: str) -> Status:
        """The number's state at the clinic, read from the ledger itself (not the cache)."""
        clinic = self._clinic(clinic_id)
        phone = _number(phone)
        with self.unit_of_work() as session:
            snap = ledger.snapshot(
                session, clinic.id, phone, subject_hash(phone, self.subject_salt)
            )
            rows = ledger.history(session, clinic.id, phone)
        since = snap.since
        # "Since" is when the number entered its state: a START while opted in is no change.
        for row in reversed(rows):
            if row.state != snap.state:
                break
            since = row.created_at
        events = [
            {
                "state": e.state,
                "channel": e.channel,
                "source_id": e.source_id,
                "at": e.created_at.isoformat(),
                "retention_until": e.retention_until.isoformat(),
            }
            for e in rows
        ]
        return Status(clinic.id, phone, snap.state, since, events)

    def _clinic(self, clinic_id: str) -> Clinic:
        clinic = self.clinic_by_id(clinic_id)
        if clinic is None:
            raise UnknownClinic(f"unknown clinic {clinic_id!r}")
        return clinic
