"""Scheduled check-in calls: "are you OK?" on chosen days at a local time, a few retries a
few minutes apart, and alerts to the receivers when nobody confirms.

An occurrence is (schedule, UTC instant); each call of it is an attempt, claimed by an
INSERT ... ON CONFLICT DO NOTHING on (schedule, occurrence, attempt number) before Twilio
is asked. The attempt ends exactly once (a guarded UPDATE from `calling`/`in-call`), by
the status callback or, if that never comes, by a watchdog job; only the one that ended it
schedules the retry or the alerts. A lost callback therefore raises alerts rather than
silence: for this service, fail-closed means somebody is told.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import Gather, VoiceResponse

from callgateway.adapters.storage import RegionViolation
from callgateway.adapters.twilio_rest import TwilioError
from callgateway.calls import log as call_log
from callgateway.calls.twiml import apology_and_hangup
from callgateway.config import Clinic
from callgateway.config.hours import parse_days, parse_time
from callgateway.config.retention import retention_until
from callgateway.db.insert import insert_new
from callgateway.db.models_outbound import CheckinAttempt, CheckinSchedule
from callgateway.db.objects import object_written, record_object
from callgateway.outbound import scheduling
from callgateway.outbound.calling import CallKind, place_call
from callgateway.outbound.timing import at_local, next_occurrence
from callgateway.phone import InvalidNumber, mask, parse_e164

if TYPE_CHECKING:
    from callgateway.wiring import Services

log = logging.getLogger(__name__)

ANSWER_PATH = "/twilio/outbound/checkin/answer"
OPEN = ("calling", "in-call")
# Twilio rings for RING_SECONDS; a call that has not ended WATCHDOG after it was placed has
# lost its status callback.
RING_SECONDS = 30
WATCHDOG = timedelta(minutes=15)
# Answered by a machine, the call hangs up at once: a machine cannot say it is fine.
CALL = CallKind(
    "checkin",
    "/twilio/outbound/checkin/call",
    ref="attempt",
    machine_detection="Enable",
    ring_seconds=RING_SECONDS,
)
# Called later than this (a worker that was down), an occurrence is skipped: a check-in
# call in the middle of the night would alarm more than it helps.
TOO_LATE = timedelta(hours=3)
MAX_RETRIES = 5
DEFAULT_MESSAGE = "Hello, this is your check-in call from {clinic}."
PROMPT = "If you are OK, please press 1 or say I'm fine."
_HELP = re.compile(
    r"\b(not (fine|ok|okay|good|well|alright|all right)|help|unwell|hurt|fallen|fell|"
    r"emergency|ambulance|pain|ill|sick)\b"
)
_FINE = re.compile(r"\b(fine|ok|okay|good|well|alright|all right|yes|yeah|great)\b")


class ScheduleError(ValueError):
    """A check-in schedule that cannot be kept; the message names the field."""


@dataclass(frozen=True)
class ScheduleSpec:
    clinic_id: str
    phone: str
    days: str  # "mon,tue", "daily", "weekdays"
    local_time: str  # HH:MM in the clinic's timezone
    alert_numbers: list[str]
    message_text: str | None = None
    recording_key: str | None = None
    display_name: str | None = None
    retries: int = 2
    retry_minutes: int = 5


def _validated(services: Services, spec: ScheduleSpec) -> dict[str, object]:
    clinic = services.directory.by_id(spec.clinic_id)
    if clinic is None:
        raise ScheduleError(f"clinic: unknown clinic {spec.clinic_id!r}")
    try:
        phone = parse_e164(spec.phone, strict=False)
    except InvalidNumber as exc:
        raise ScheduleError(f"phone: {exc}") from None
    try:
        receivers = list(dict.fromkeys(parse_e164(n, strict=False) for n in spec.alert_numbers))
    except InvalidNumber as exc:
        raise ScheduleError(f"alert: {exc}") from None
    if not receivers:
        raise ScheduleError("alert: at least one alert receiver is needed")
    if phone in receivers:
        raise ScheduleError("alert: the patient cannot be their own alert receiver")
    try:
        days = parse_days(spec.days)
        wall = parse_time(spec.local_time)
    except ValueError as exc:
        raise ScheduleError(f"days/time: {exc}") from None
    text = (spec.message_text or "").strip() or None
    key = (spec.recording_key or "").strip() or None
    if not text and not key:
        raise ScheduleError("message: give a message text or a recording")
    if key and (not key.startswith(f"clinics/{clinic.id}/") or ".." in key):
        raise ScheduleError(f"recording: key must start with clinics/{clinic.id}/")
    if not 0 <= spec.retries <= MAX_RETRIES:
        raise ScheduleError(f"retries: between 0 and {MAX_RETRIES}")
    if not 1 <= spec.retry_minutes <= 120:
        raise ScheduleError("retry-minutes: between 1 and 120")
    name = (spec.display_name or "").strip()[:100] or None
    return {
        "clinic_id": clinic.id,
        "phone": phone,
        "display_name": name,
        "days": ",".join(days),
        "local_time": wall.strftime("%H:%M"),
        "message_text": text,
        "recording_key": key,
        "retries": spec.retries,
        "retry_minutes": spec.retry_minutes,
        "alert_numbers": receivers,
    }


def _keep_until(services: Services, clinic_id: str, now: datetime):  # type: ignore[no-untyped-def]
    # Counted from the last activity: an active schedule is never due for deletion.
    clinic = services.directory.by_id(clinic_id)
    return retention_until(services.config, clinic, "appointment", now)


def add_schedule(services: Services, spec: ScheduleSpec) -> int:
    values = _validated(services, spec)
    now = services.clock()
    with services.db.session() as session:
        row = CheckinSchedule(
            **values,
            active=True,
            created_at=now,
            updated_at=now,
            data_category="appointment",
            retention_until=_keep_until(services, spec.clinic_id, now),
        )
        session.add(row)
        session.flush()
        schedule_id = row.id
    schedule_next(services, schedule_id)
    log.info("check-in schedule added", extra={"schedule_id": schedule_id, "to": mask(row.phone)})
    return schedule_id


def update_schedule(services: Services, schedule_id: int, spec: ScheduleSpec) -> None:
    values = _validated(services, spec)
    now = services.clock()
    with services.db.session() as session:
        row = session.get(CheckinSchedule, schedule_id)
        if row is None or row.clinic_id != spec.clinic_id:
            raise ScheduleError("schedule: no such schedule at this clinic")
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = now
        row.retention_until = _keep_until(services, row.clinic_id, now)
    schedule_next(services, schedule_id)


def set_active(services: Services, schedule_id: int, clinic_id: str, active: bool) -> None:
    now = services.clock()
    with services.db.session() as session:
        row = session.get(CheckinSchedule, schedule_id)
        if row is None or row.clinic_id != clinic_id:
            raise ScheduleError("schedule: no such schedule at this clinic")
        row.active = active
        row.updated_at = now
    if active:
        schedule_next(services, schedule_id)


def set_alert_numbers(
    services: Services, schedule_id: int, clinic_id: str, numbers: list[str]
) -> list[str]:
    """Replace the schedule's alert receivers; the same checks as when it was added."""
    with services.db.session() as session:
        row = session.get(CheckinSchedule, schedule_id)
        if row is None or row.clinic_id != clinic_id:
            raise ScheduleError("schedule: no such schedule at this clinic")
        spec = ScheduleSpec(
            clinic_id=row.clinic_id,
            phone=row.phone,
            days=row.days,
            local_time=row.local_time,
            alert_numbers=numbers,
            message_text=row.message_text,
            recording_key=row.recording_key,
            display_name=row.display_name,
            retries=row.retries,
            retry_minutes=row.retry_minutes,
        )
        receivers = list(_validated(services, spec)["alert_numbers"])  # type: ignore[call-overload]
        row.alert_numbers = receivers
        row.updated_at = services.clock()
    return receivers


def delete_schedule(services: Services, schedule_id: int, clinic_id: str) -> None:
    with services.db.session() as session:
        row = session.get(CheckinSchedule, schedule_id)
        if row is None or row.clinic_id != clinic_id:
            raise ScheduleError("schedule: no such schedule at this clinic")
        session.delete(row)  # attempts and alerts go with it (ON DELETE CASCADE)


def schedules(services: Services, clinic_ids: list[str] | None) -> list[CheckinSchedule]:
    """Schedules of these clinics (None: all), newest first."""
    stmt = select(CheckinSchedule).order_by(CheckinSchedule.id.desc())
    if clinic_ids is not None:
        stmt = stmt.where(CheckinSchedule.clinic_id.in_(clinic_ids))
    with services.db.session() as session:
        return list(session.scalars(stmt))


def upload_recording(services: Services, clinic: Clinic, body: bytes, content_type: str) -> str:
    """Store a check-in message recording in the clinic's region bucket; returns its key."""
    assert services.storage is not None
    ext = {"audio/mpeg": "mp3", "audio/wav": "wav", "audio/x-wav": "wav"}.get(content_type, "bin")
    key = f"clinics/{clinic.id}/checkins/{uuid.uuid4().hex}.{ext}"
    now = services.clock()
    keep_until = retention_until(services.config, clinic, "appointment", now)
    # The ledger row first, committed: the retention sweep finds the object from it.
    with services.db.session() as session:
        record_object(
            session,
            clinic_id=clinic.id,
            region=clinic.region,
            key=key,
            category="appointment",
            retention_until=keep_until,
            now=now,
        )
    stored = services.storage.put(
        clinic, key, body, category="appointment", retention_until=keep_until,
        content_type=content_type,
    )  # fmt: skip
    with services.db.session() as session:
        object_written(session, key, stored.version_id)
    return key


# Scheduling ------------------------------------------------------------------------------


def attempt_job_id(schedule_id: int, occurrence: datetime, attempt_no: int) -> str:
    return f"checkin-{schedule_id}-{occurrence:%Y%m%dT%H%M%SZ}-{attempt_no}"


def alerts_job_id(schedule_id: int, occurrence: datetime) -> str:
    return f"checkin-alerts-{schedule_id}-{occurrence:%Y%m%dT%H%M%SZ}"


def _wall(row: CheckinSchedule, clinic: Clinic, occurrence: datetime) -> bool:
    """Is `occurrence` still one of the schedule's slots (days and time may have changed)?"""
    local = occurrence.astimezone(clinic.tz)
    days = row.days.split(",")
    wall = parse_time(row.local_time)
    return (
        local.strftime("%a").lower() in days
        and at_local(local.date(), wall, clinic.tz) == occurrence
    )


def schedule_next(
    services: Services, schedule_id: int, after: datetime | None = None
) -> datetime | None:
    """Enqueue the first attempt of the next occurrence (keyed job id: safe to repeat)."""
    with services.db.session() as session:
        row = session.get(CheckinSchedule, schedule_id)
        if row is None or not row.active:
            return None
        clinic = services.directory.by_id(row.clinic_id)
        days, wall = row.days.split(","), parse_time(row.local_time)
    if clinic is None:
        return None
    start = max(after or services.clock(), services.clock())
    occurrence = next_occurrence(days, wall, clinic.tz, start)
    scheduling.schedule(
        services,
        occurrence,
        scheduling.CHECKIN_ATTEMPT,
        schedule_id,
        occurrence.isoformat(),
        1,
        job_id=attempt_job_id(schedule_id, occurrence, 1),
    )
    return occurrence


def resync(services: Services) -> int:
    ids = [s.id for s in schedules(services, None) if s.active]
    for schedule_id in ids:
        schedule_next(services, schedule_id)
    return len(ids)


# One attempt ---------------------------------------------------------------------------


def call_now(services: Services, schedule_id: int, clinic_id: str) -> datetime:
    """An extra occurrence now (staff testing a schedule): same retries, alerts and gate."""
    with services.db.session() as session:
        row = session.get(CheckinSchedule, schedule_id)
        if row is None or row.clinic_id != clinic_id:
            raise ScheduleError("schedule: no such schedule at this clinic")
        if not row.active:
            raise ScheduleError("schedule: paused")
    occurrence = services.clock().replace(microsecond=0)
    scheduling.schedule(
        services,
        occurrence,
        scheduling.CHECKIN_ATTEMPT,
        schedule_id,
        occurrence.isoformat(),
        1,
        True,
        job_id=attempt_job_id(schedule_id, occurrence, 1),
    )
    return occurrence


def run_attempt(
    services: Services,
    schedule_id: int,
    occurrence: datetime,
    attempt_no: int,
    adhoc: bool = False,
) -> str:
    """The job: claim the attempt, ask the gate, place the call."""
    now = services.clock()
    if attempt_no == 1 and not adhoc:
        # The chain goes on whatever happens to this occurrence.
        schedule_next(services, schedule_id, after=occurrence)
    with services.db.session() as session:
        row = session.get(CheckinSchedule, schedule_id)
        clinic = services.directory.by_id(row.clinic_id) if row else None
        if row is None or clinic is None:
            return "gone"
        if not row.active:
            return "inactive"
        if attempt_no == 1 and not adhoc and not _wall(row, clinic, occurrence):
            return "stale"
        if _settled(session, schedule_id, occurrence):
            return "settled"
        late = attempt_no == 1 and now - occurrence > TOO_LATE
        attempt_id = insert_new(
            session,
            CheckinAttempt,
            {
                "schedule_id": schedule_id,
                "clinic_id": clinic.id,
                "occurrence": occurrence,
                "attempt_no": attempt_no,
                "status": "skipped" if late else "calling",
                "reason": "worker-late" if late else None,
                "call_sid": None,
                "answered_by": None,
                "created_at": now,
                "updated_at": now,
                "data_category": "call-metadata",
                "retention_until": retention_until(services.config, clinic, "call-metadata", now),
            },
            ["schedule_id", "occurrence", "attempt_no"],
        )
        if attempt_id is None:
            return "duplicate"
        if late:
            log.warning("check-in skipped: worker too late", extra={"schedule_id": schedule_id})
            return "worker-late"
        row.retention_until = _keep_until(services, clinic.id, now)
        phone = row.phone
    decision = services.gate.may(clinic.id, phone, "checkin_call", ledger_only=True)
    if not decision.allowed:
        # Nobody is alerted either: the patient asked not to be called, not to be checked on.
        _end(services, attempt_id, "skipped", reason=decision.reason)
        log.info(
            "check-in not called", extra={"schedule_id": schedule_id, "reason": decision.reason}
        )
        return decision.reason
    try:
        call_sid = place_call(services, clinic, phone, CALL, attempt_id)
    except TwilioError as exc:
        # Unreachable is exactly what the receivers must hear about: retry, then alert.
        if _end(
            services, attempt_id, "failed", reason=f"twilio-{exc.code or exc.status or 'down'}"
        ):
            follow_up(services, attempt_id)
        return "failed"
    with services.db.session() as session:
        session.execute(
            update(CheckinAttempt).where(CheckinAttempt.id == attempt_id).values(call_sid=call_sid)
        )
    scheduling.schedule(
        services,
        services.clock() + WATCHDOG,
        scheduling.CHECKIN_WATCHDOG,
        attempt_id,
        job_id=f"checkin-watchdog-{attempt_id}",
    )
    return "calling"


def _settled(session: Session, schedule_id: int, occurrence: datetime) -> bool:
    """Did the patient already confirm (or ask for help in) this occurrence?"""
    return (
        session.scalars(
            select(CheckinAttempt.id).where(
                CheckinAttempt.schedule_id == schedule_id,
                CheckinAttempt.occurrence == occurrence,
                CheckinAttempt.status.in_(("confirmed", "help")),
            )
        ).first()
        is not None
    )


def _end(services: Services, attempt_id: int, status: str, **fields: object) -> bool:
    """End an open attempt; True only for the one caller that ended it."""
    with services.db.session() as session:
        result = session.execute(
            update(CheckinAttempt)
            .where(CheckinAttempt.id == attempt_id, CheckinAttempt.status.in_(OPEN))
            .values(status=status, updated_at=services.clock(), **fields)
        )
    return bool(result.rowcount)


def follow_up(services: Services, attempt_id: int) -> str:
    """After an attempt ended unconfirmed: the next retry, or the alerts after the last."""
    with services.db.session() as session:
        attempt = session.get(CheckinAttempt, attempt_id)
        row = session.get(CheckinSchedule, attempt.schedule_id) if attempt else None
    if attempt is None or row is None:
        return "gone"
    occurrence = attempt.occurrence
    if attempt.attempt_no <= row.retries and row.active:
        nxt = attempt.attempt_no + 1
        scheduling.schedule(
            services,
            services.clock() + timedelta(minutes=row.retry_minutes),
            scheduling.CHECKIN_ATTEMPT,
            row.id,
            occurrence.isoformat(),
            nxt,
            job_id=attempt_job_id(row.id, occurrence, nxt),
        )
        return "retry"
    scheduling.schedule(
        services,
        services.clock(),
        scheduling.CHECKIN_ALERTS,
        row.id,
        occurrence.isoformat(),
        attempt.status,
        job_id=alerts_job_id(row.id, occurrence),
        retry=True,
    )
    return "alerts"


def call_ended(services: Services, attempt_id: int, answered_by: str | None) -> str:
    """The call's terminal status arrived: end the attempt (once) and follow up."""
    with services.db.session() as session:
        attempt = session.get(CheckinAttempt, attempt_id)
    if attempt is None:
        return "gone"
    machine = (answered_by or attempt.answered_by or "").startswith(("machine", "fax"))
    if machine:
        status = "machine"
    elif attempt.status == "in-call":
        status = "unconfirmed"
    else:
        status = "unanswered"
    if not _end(services, attempt_id, status, answered_by=answered_by or attempt.answered_by):
        return attempt.status
    return follow_up(services, attempt_id)


def watchdog(services: Services, attempt_id: int) -> str:
    """The status callback never came: end the attempt as unanswered and follow up."""
    if not _end(services, attempt_id, "unanswered", reason="no-status-callback"):
        return "ended"
    log.warning("check-in call ended by watchdog", extra={"attempt_id": attempt_id})
    return follow_up(services, attempt_id)


# The call --------------------------------------------------------------------------------


def _context(
    services: Services, attempt_id: int
) -> tuple[CheckinAttempt, CheckinSchedule, Clinic] | None:
    with services.db.session() as session:
        attempt = session.get(CheckinAttempt, attempt_id)
        row = session.get(CheckinSchedule, attempt.schedule_id) if attempt else None
    clinic = services.directory.by_id(row.clinic_id) if row else None
    if attempt is None or row is None or clinic is None:
        return None
    return attempt, row, clinic


def _prompt(
    services: Services, resp: VoiceResponse, attempt_id: int, tries: int, clinic: Clinic
) -> None:
    gather: Gather = resp.gather(
        input="dtmf speech",
        num_digits=1,
        timeout=6,
        speech_timeout="auto",
        language=clinic.language,
        hints="I'm fine, fine, okay, yes, help",
        action=services.url(f"{ANSWER_PATH}?attempt={attempt_id}&try={tries}"),
        method="POST",
    )
    gather.say(PROMPT, language=clinic.language)
    # No input: Twilio falls through to here, and the answer handler asks once more.
    resp.redirect(services.url(f"{ANSWER_PATH}?attempt={attempt_id}&try={tries}"), method="POST")


def call_twiml(services: Services, attempt_id: int, answered_by: str | None) -> str:
    ctx = _context(services, attempt_id)
    if ctx is None:
        return apology_and_hangup("Goodbye.")
    _attempt, row, clinic = ctx
    resp = VoiceResponse()
    with services.db.session() as session:
        session.execute(
            update(CheckinAttempt)
            .where(CheckinAttempt.id == attempt_id)
            .values(answered_by=answered_by or None)
        )
        if (answered_by or "").startswith(("machine", "fax")):
            resp.hangup()  # a machine cannot confirm; the status callback decides what next
            return str(resp)
        session.execute(
            update(CheckinAttempt)
            .where(CheckinAttempt.id == attempt_id, CheckinAttempt.status == "calling")
            .values(status="in-call", updated_at=services.clock())
        )
    _message(services, resp, row, clinic)
    _prompt(services, resp, attempt_id, 1, clinic)
    return str(resp)


def _message(services: Services, resp: VoiceResponse, row: CheckinSchedule, clinic: Clinic) -> None:
    if row.recording_key and services.storage is not None:
        try:
            resp.play(services.storage.presigned_get(clinic, row.recording_key, seconds=600))
            return
        except (RegionViolation, BotoCoreError, ClientError):
            # A bucket hiccup must not drop the call: the patient still hears a message.
            log.warning(
                "check-in recording unavailable; speaking instead", extra={"clinic": clinic.id}
            )
    text = row.message_text or DEFAULT_MESSAGE.format(clinic=clinic.name)
    resp.say(text, language=clinic.language)


def classify(digits: str, speech: str) -> str | None:
    """'fine', 'help' or None. Help wins: "I'm not fine" must never read as fine."""
    text = speech.lower().replace("\u2019", "'")
    if digits == "1":
        return "fine"
    if _HELP.search(text):
        return "help"
    if _FINE.search(text):
        return "fine"
    return None


def answer_twiml(
    services: Services, attempt_id: int, call_sid: str, digits: str, speech: str, tries: int
) -> str:
    ctx = _context(services, attempt_id)
    if ctx is None:
        return apology_and_hangup("Goodbye.")
    attempt, row, clinic = ctx
    resp = VoiceResponse()
    verdict = classify(digits, speech)  # the speech itself is neither stored nor logged
    if verdict == "fine":
        _end(services, attempt_id, "confirmed")
        _note(services, call_sid, "checkin-confirmed")
        resp.say("Thank you. We are glad you are well. Goodbye.", language=clinic.language)
        resp.hangup()
    elif verdict == "help":
        if _end(services, attempt_id, "help"):
            scheduling.schedule(
                services,
                services.clock(),
                scheduling.CHECKIN_ALERTS,
                row.id,
                attempt.occurrence.isoformat(),
                "help",
                job_id=alerts_job_id(row.id, attempt.occurrence),
                retry=True,
            )
        _note(services, call_sid, "checkin-help")
        emergency = services.config.emergency_number(clinic)
        resp.say(
            "We will let your contacts know straight away. If you need urgent help, "
            f"hang up and call {' '.join(emergency)}.",
            language=clinic.language,
        )
        resp.hangup()
    elif tries < 2:
        resp.say("Sorry, I did not catch that.", language=clinic.language)
        _prompt(services, resp, attempt_id, tries + 1, clinic)
    else:
        resp.say("We did not hear from you. Goodbye.", language=clinic.language)
        resp.hangup()
    return str(resp)


def _note(services: Services, call_sid: str, outcome: str) -> None:
    if not call_sid:
        return
    with services.db.session() as session:
        call_log.note(session, call_sid, outcome=outcome, handled_by="ai")
