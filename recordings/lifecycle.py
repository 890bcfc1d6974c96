"""A recording's life: Twilio -> the clinic's region bucket -> verified -> deleted at Twilio.

The status callback stores one row per RecordingSid and, after that commit, enqueues a job
carrying the row's id. The job downloads the media from Twilio's REST API, writes it to the
region bucket with its tags, reads it back (size and SHA-256) and only then deletes
Twilio's copy. Each step is safe to repeat: a retried job, a duplicate job or an erase
racing the job all end with one copy, in the right bucket, and none at Twilio.

Transient failures (Twilio 5xx/429, network, bucket outage, a failed read-back) raise so
that RQ retries with backoff; the last attempt, and any permanent failure, marks the row
`failed` for staff and leaves Twilio's copy where it is.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from typing import Literal

import redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus, Retry
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callgateway.adapters.storage import RegionViolation, StorageError, subject_prefix
from callgateway.adapters.twilio_rest import NotFound, PermanentError, TransientError
from callgateway.config import Clinic
from callgateway.config.retention import retention_until
from callgateway.db.insert import insert_ignore
from callgateway.db.models import Call, Recording, WorkItem
from callgateway.events import RecordingEvent
from callgateway.phone import ANONYMOUS, caller_id, mask
from recordings.desk import RecordingDesk

log = logging.getLogger(__name__)

KINDS = ("recording", "voicemail")
# Seconds before each retry: a Twilio or bucket outage is usually over within the hour.
RETRY_INTERVALS = [30, 120, 600, 1800, 3600]
# The jobs' entry points (recordings/jobs.py), by name: they import this module, and RQ
# stores the dotted path anyway.
TRANSFER_JOB = "recordings.jobs.transfer_recording"
ADOPT_JOB = "recordings.jobs.adopt_recording"
PENDING = "pending"
STORED = "stored"
FAILED = "failed"


class VerificationFailed(RuntimeError):
    """The bucket's copy does not match what Twilio sent: never delete Twilio's then."""


def object_key(clinic_id: str, phone: str, kind: str, recording_sid: str, salt: str) -> str:
    return f"{subject_prefix(clinic_id, phone, salt)}{kind}s/{recording_sid}.wav"


# --- the status callback ------------------------------------------------------------------


def recording_status(desk: RecordingDesk, event: RecordingEvent) -> bool:
    """Store the recording's row (once per RecordingSid) and, after commit, queue its
    transfer. Any order: before or after the call's status callback or the voicemail's
    action; a repeat finds its row and queues nothing new while a job is under way.
    False when its job could not be queued: the row waits as pending, and the webhook asks
    Twilio to deliver the callback again (which queues it) rather than wait for a sweep."""
    if event.status != "completed" or event.kind not in KINDS:
        return True  # nothing to fetch: Twilio made no recording (absent/failed) or not yet
    now = desk.clock()
    with desk.db.session() as session:
        call = session.scalars(select(Call).where(Call.call_sid == event.call_sid)).first()
        clinic = desk.clinic_by_id(call.clinic_id) if call and call.clinic_id else None
        if call is None or clinic is None:
            row_id = None
        else:
            row_id = _insert_row(desk, session, event, call.cli, clinic, now)
            if event.kind == "voicemail":
                _open_voicemail_item(desk, session, event, call.cli, clinic, now)
    # After the commit: a job must never look for a row that is not there yet.
    if row_id is None:
        log.warning(
            "recording for a call not in the log; placing it from Twilio's call record",
            extra={"recording_sid": event.recording_sid},
        )
        adopted = _enqueue(
            desk,
            ADOPT_JOB,
            f"adopt-{event.recording_sid}",
            event.recording_sid,
            event.call_sid,
            event.kind,
            event.duration_seconds,
        )
        return adopted != "failed"
    return _transfer(desk, row_id) != "failed"


def _insert_row(
    desk: RecordingDesk,
    session: Session,
    event: RecordingEvent,
    phone: str,
    clinic: Clinic,
    now: datetime,
) -> int:
    insert_ignore(
        session,
        Recording,
        {
            "recording_sid": event.recording_sid,
            "call_sid": event.call_sid,
            "clinic_id": clinic.id,
            "phone": phone,
            "kind": event.kind,
            "status": PENDING,
            "region": clinic.region,
            "bucket": desk.config.regions[clinic.region].bucket,
            "key": object_key(clinic.id, phone, event.kind, event.recording_sid, desk.subject_salt),
            "media_url": event.media_url,
            "duration_seconds": event.duration_seconds,
            "deleted_at_twilio": False,
            "attempts": 0,
            "created_at": now,
            "data_category": event.kind,
            "retention_until": retention_until(desk.config, clinic, event.kind, now),
        },
        ["recording_sid"],
    )
    return session.scalars(
        select(Recording.id).where(Recording.recording_sid == event.recording_sid)
    ).one()


def _open_voicemail_item(
    desk: RecordingDesk,
    session: Session,
    event: RecordingEvent,
    phone: str,
    clinic: Clinic,
    now: datetime,
) -> None:
    """One voicemail item per call for staff; it points at its recording whichever of the
    Record action and this callback came first."""
    insert_ignore(
        session,
        WorkItem,
        {
            "kind": "voicemail",
            "call_sid": event.call_sid,
            "clinic_id": clinic.id,
            "phone": phone,
            "reason": "voicemail",
            "status": "open",
            "recording_sid": event.recording_sid,
            "created_at": now,
            "updated_at": now,
            "data_category": "voicemail",
            "retention_until": retention_until(desk.config, clinic, "voicemail", now),
        },
        ["call_sid", "kind"],
    )
    session.execute(
        update(WorkItem)
        .where(
            WorkItem.call_sid == event.call_sid,
            WorkItem.kind == "voicemail",
            WorkItem.recording_sid.is_(None),
        )
        .values(recording_sid=event.recording_sid, updated_at=now)
    )


# --- queueing -------------------------------------------------------------------------------


def transfer_job_id(recording_id: int) -> str:
    return f"recording-transfer-{recording_id}"


def enqueue_transfer(desk: RecordingDesk, recording_id: int) -> bool:
    """Queue the transfer unless a job for this row is already waiting or running. True
    when this call queued it."""
    return _transfer(desk, recording_id) == "queued"


def _transfer(desk: RecordingDesk, recording_id: int) -> Enqueued:
    return _enqueue(desk, TRANSFER_JOB, transfer_job_id(recording_id), recording_id)


# waiting: a job for it already is; failed: Redis refused it (try again); unwired: no
# queue in this process (nothing to retry).
Enqueued = Literal["queued", "waiting", "failed", "unwired"]


def _enqueue(desk: RecordingDesk, func: str, job_id: str, *args: object) -> Enqueued:
    if desk.queue is None:
        log.error("no job queue wired: recording left at Twilio", extra={"job": job_id})
        return "unwired"
    busy = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED)
    try:
        try:
            if Job.fetch(job_id, connection=desk.queue.connection).get_status() in busy:
                return "waiting"
        except NoSuchJobError:
            pass
        desk.queue.enqueue(
            func,
            *args,
            job_id=job_id,
            retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
        )
    except redis.RedisError as exc:
        # The row is committed as pending; `resume_stalled` (daily job) queues it again.
        log.error("could not queue the recording job", extra={"job": job_id, "error": str(exc)})
        return "failed"
    return "queued"


def resume_stalled(desk: RecordingDesk, older_than: timedelta = timedelta(minutes=30)) -> int:
    """Queue again every recording still pending, or stored but not yet deleted at Twilio,
    whose job is lost (Redis was down at enqueue time, or retries ran out on a delete)."""
    cutoff = desk.clock() - older_than
    with desk.db.session() as session:
        ids = list(
            session.scalars(
                select(Recording.id).where(
                    Recording.created_at < cutoff,
                    (Recording.status == PENDING)
                    | ((Recording.status == STORED) & Recording.deleted_at_twilio.is_(False)),
                )
            )
        )
    return sum(enqueue_transfer(desk, i) for i in ids)


def retry_failed(
    desk: RecordingDesk,
    actor: str,
    *,
    clinic_id: str | None = None,
    recording_sids: list[str] | None = None,
) -> tuple[int, int]:
    """Staff asked: failed recordings (never stored: Twilio still has them) go back to
    pending and are queued again, with one audit entry. Returns (reset, queued); a row
    whose job can't be queued now is still pending, and `resume_stalled` takes it."""
    query = select(Recording.id).where(Recording.status == FAILED)
    if clinic_id is not None:
        query = query.where(Recording.clinic_id == clinic_id)
    if recording_sids is not None:
        query = query.where(Recording.recording_sid.in_(recording_sids))
    with desk.db.session() as session:
        ids = list(session.scalars(query.order_by(Recording.id)))
        if ids:
            session.execute(
                update(Recording)
                .where(Recording.id.in_(ids), Recording.status == FAILED)
                .values(status=PENDING, error=None)
            )
            desk.audit.record(
                session,
                actor=actor,
                action="recordings.retry",
                clinic_id=clinic_id,
                detail={"recordings": len(ids)},
            )
    return len(ids), sum(_transfer(desk, i) in ("queued", "waiting") for i in ids)


# --- the transfer job -------------------------------------------------------------------


def transfer(desk: RecordingDesk, recording_id: int, *, final_attempt: bool = True) -> str:
    """Run one attempt. Returns `done`, `failed` or `gone` (row erased); raises a
    transient error when another attempt should follow (`final_attempt` False)."""
    with desk.db.session() as session:
        row = session.get(Recording, recording_id)
        if row is None:
            return "gone"
        if row.status == FAILED:
            return FAILED  # staff decide; a failed row is never retried behind their back
        if row.status == STORED and row.deleted_at_twilio:
            return "done"
        session.execute(
            update(Recording)
            .where(Recording.id == recording_id)
            .values(attempts=Recording.attempts + 1)
        )
    clinic = desk.clinic_by_id(row.clinic_id)
    extra = {"recording_sid": row.recording_sid, "clinic": row.clinic_id}
    try:
        if clinic is None or clinic.region != row.region or row.key is None:
            raise RegionViolation("the clinic's region is no longer the row's region")
        if row.status == PENDING and not _store(desk, row, clinic):
            return "gone"
        if desk.twilio is None:
            raise TransientError("no Twilio adapter wired")
        # Only now, with a verified copy in the bucket, may Twilio's copy go.
        existed = desk.twilio.delete_recording(row.recording_sid)
        _update(desk, recording_id, deleted_at_twilio=True, error=None)
        log.info(
            "recording stored and deleted at twilio", extra={**extra, "already_gone": not existed}
        )
        return "done"
    except (NotFound, PermanentError, RegionViolation) as exc:
        # NotFound on download: Twilio has nothing to give; a retry cannot change that.
        _update(desk, recording_id, status=FAILED, error=_reason(exc))
        log.error("recording transfer failed for good; Twilio's copy kept", extra=extra)
        return FAILED
    except (TransientError, VerificationFailed, *StorageError) as exc:
        if final_attempt:
            fields: dict[str, object] = {"error": _reason(exc)}
            if _status(desk, recording_id) == PENDING:
                fields["status"] = FAILED  # never reached the bucket: staff must see it
            _update(desk, recording_id, **fields)
            log.error("recording transfer gave up after retries; Twilio's copy kept", extra=extra)
            return FAILED
        _update(desk, recording_id, error=_reason(exc))
        log.warning("recording transfer will be retried", extra=extra)
        raise


def _store(desk: RecordingDesk, row: Recording, clinic: Clinic) -> bool:
    """Download, upload with tags, verify. False when the row was erased meanwhile (and
    then the copy just made is removed again, with Twilio's)."""
    assert desk.twilio is not None and desk.storage is not None and row.key
    media = desk.twilio.fetch_recording_media(row.recording_sid)
    stored = desk.storage.put(
        clinic,
        row.key,
        media,
        category=row.data_category,
        retention_until=row.retention_until,
        content_type="audio/wav",
        region_code=row.region,
    )
    head = desk.storage.head(clinic, row.key)
    if head.get("ContentLength") != len(media):
        raise VerificationFailed("size in the bucket differs from Twilio's")
    if hashlib.sha256(desk.storage.get(clinic, row.key)).hexdigest() != stored.sha256:
        raise VerificationFailed("checksum in the bucket differs from Twilio's")
    with desk.db.session() as session:
        moved = session.execute(
            update(Recording)
            .where(Recording.id == row.id, Recording.status == PENDING)
            .values(
                status=STORED,
                bucket=stored.bucket,
                version_id=stored.version_id,
                size_bytes=stored.size,
                sha256=stored.sha256,
                error=None,
            )
        ).rowcount
        still_there = moved or session.get(Recording, row.id) is not None
    if not still_there:
        # Erased while we copied: what we just wrote must not outlive the erase.
        desk.storage.delete(clinic, row.key)
        desk.twilio.delete_recording(row.recording_sid)
        return False
    return True


def _update(desk: RecordingDesk, recording_id: int, **fields: object) -> None:
    with desk.db.session() as session:
        session.execute(update(Recording).where(Recording.id == recording_id).values(**fields))


def _status(desk: RecordingDesk, recording_id: int) -> str | None:
    with desk.db.session() as session:
        return session.scalars(select(Recording.status).where(Recording.id == recording_id)).first()


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


# --- a recording whose call we never logged ---------------------------------------------


def adopt(
    desk: RecordingDesk,
    recording_sid: str,
    call_sid: str,
    kind: str,
    duration_seconds: int | None,
    foreign_ok: bool = False,
) -> int | None:
    """Place a recording by Twilio's own call record (its `to` is the clinic number) and
    store its row; None when it belongs to no clinic here (it then stays at Twilio).
    `foreign_ok`: such a recording is expected (an account-wide listing), not an error."""
    assert desk.twilio is not None
    call = desk.twilio.fetch_call(call_sid)
    clinic = desk.clinic_by_number(str(call.get("to") or ""))
    if clinic is None:
        (log.debug if foreign_ok else log.error)(
            "recording of a call to no clinic of this cell; left at Twilio",
            extra={"recording_sid": recording_sid},
        )
        return None
    phone = caller_id(str(call.get("from") or ""))
    event = RecordingEvent(recording_sid, call_sid, kind, "completed", duration_seconds, None)
    now = desk.clock()
    with desk.db.session() as session:
        row_id = _insert_row(desk, session, event, phone, clinic, now)
        if kind == "voicemail":
            _open_voicemail_item(desk, session, event, phone, clinic, now)
    log.info(
        "recording placed by Twilio's call record",
        extra={
            "recording_sid": recording_sid,
            "caller": mask(phone) if phone != ANONYMOUS else ANONYMOUS,
        },
    )
    return row_id


# --- calls answered while the database was down ----------------------------------------

FIND_JOB = "recordings.jobs.find_call_recordings"
# The first look once the caller has had time to speak; then until the database is back.
FIND_DELAY = timedelta(minutes=5)
FIND_RETRY_INTERVALS = [300, 600, 1800, 3600, 3600, 7200, 14400, 28800]
KIND_BY_SOURCE = {"RecordVerb": "voicemail"}  # the <Record> verb: a voicemail


def find_job_id(call_sid: str) -> str:
    return f"find-{call_sid}"


def schedule_find(desk: RecordingDesk, call_sid: str) -> bool:
    """Book a later look at Twilio for the recordings of a call the database could not log.

    The fallback (callgateway.calls.fallback) takes a voicemail only when this succeeds: the
    recording's own status callback may come while the database is still down, and then
    nothing here would ever know the message exists. Needs Redis only.
    """
    if desk.queue is None:
        return False
    try:
        desk.queue.enqueue_in(
            FIND_DELAY,
            FIND_JOB,
            call_sid,
            job_id=find_job_id(call_sid),
            retry=Retry(max=len(FIND_RETRY_INTERVALS), interval=FIND_RETRY_INTERVALS),
        )
    except redis.RedisError as exc:
        log.error("could not book the look for a voicemail", extra={"error": type(exc).__name__})
        return False
    return True


def find_call_recordings(desk: RecordingDesk, call_sid: str) -> int:
    """Place every completed recording Twilio holds for the call that has no row here
    (`adopt`), and queue its transfer. Raises while the database or Twilio is down, so RQ
    tries again. Returns how many it placed."""
    assert desk.twilio is not None
    return _place_unknown(desk, desk.twilio.list_call_recordings(call_sid))


RECONCILE_WINDOW = timedelta(days=2)


def reconcile(desk: RecordingDesk, since: datetime) -> int:
    """Place every completed recording Twilio has held since `since` that has no row here,
    and queue its transfer: one whose status callback and look both missed us (a long
    database outage, Redis lost with the booked look). The daily job runs it over
    RECONCILE_WINDOW. Recordings of other cells' clinics (one Twilio account, several
    cells) are left alone. Returns how many it placed."""
    assert desk.twilio is not None
    return _place_unknown(desk, desk.twilio.list_recordings(since), foreign_ok=True)


def _place_unknown(
    desk: RecordingDesk, held: list[dict[str, object]], foreign_ok: bool = False
) -> int:
    done = [
        r
        for r in held
        if r.get("status") == "completed"
        and str(r.get("sid") or "").startswith("RE")
        and str(r.get("call_sid") or "").startswith("CA")
    ]
    sids = [str(r["sid"]) for r in done]
    known: set[str] = set()
    with desk.db.session() as session:
        for i in range(0, len(sids), 500):
            chunk = sids[i : i + 500]
            known |= set(
                session.scalars(
                    select(Recording.recording_sid).where(Recording.recording_sid.in_(chunk))
                )
            )
    placed = 0
    for rec in done:
        sid, call_sid = str(rec["sid"]), str(rec["call_sid"])
        if sid in known:
            continue
        kind = KIND_BY_SOURCE.get(str(rec.get("source") or ""), "recording")
        duration = str(rec.get("duration") or "")
        row_id = adopt(
            desk,
            sid,
            call_sid,
            kind,
            int(duration) if duration.isdigit() else None,
            foreign_ok=foreign_ok,
        )
        if row_id is not None:
            enqueue_transfer(desk, row_id)
            placed += 1
    return placed
