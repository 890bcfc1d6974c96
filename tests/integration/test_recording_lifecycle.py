"""Recordings and voicemails: callback -> row -> job -> region bucket -> verified -> deleted
at Twilio. Twilio's REST API is faked at the HTTP layer with `responses`; the bucket is the
real moto server; the queue is the real Redis."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import responses
from click.testing import CliRunner
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import delete, select

from callgateway.adapters.storage import subject_prefix
from callgateway.adapters.twilio_rest import TransientError
from callgateway.app import create_app
from callgateway.cli import main
from callgateway.config import Config
from callgateway.config.settings import DEV_ACCOUNT_SID
from callgateway.db.models import AuditEntry, Call, Recording, WorkItem
from callgateway.jobs import daily as jobs
from callgateway.wiring import Services
from devtools.services import Service
from recordings import lifecycle
from tests.support.regions import create_buckets, s3, stored_cli_env
from tests.support.services import service_stopped
from tests.support.settings import BASE_URL, EXAMPLE_CONFIG
from tests.support.twilio import ACCOUNT_SID, CLINIC_UK, CLINIC_US, PATIENT, TwilioSim, sid

pytest_plugins = ["tests.support.region_fixtures"]

API = f"https://api.twilio.com/2010-04-01/Accounts/{DEV_ACCOUNT_SID}"
MEDIA = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 40


@pytest.fixture
def svc(stored_services: Services) -> Services:
    return stored_services


def media_url(recording_sid: str) -> str:
    return f"{API}/Recordings/{recording_sid}.wav"


def delete_url(recording_sid: str) -> str:
    return f"{API}/Recordings/{recording_sid}.json"


def fake_twilio(mock: responses.RequestsMock, recording_sid: str, *, delete_status: int = 204):
    mock.get(media_url(recording_sid), body=MEDIA, content_type="audio/x-wav")
    mock.delete(delete_url(recording_sid), status=delete_status)


def recording_callback(
    tw: TwilioSim, call_sid: str, recording_sid: str, kind: str = "recording", **extra: str
):
    params = {
        "AccountSid": ACCOUNT_SID,
        "CallSid": call_sid,
        "RecordingSid": recording_sid,
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}"
        f"/Recordings/{recording_sid}",
        "RecordingStatus": "completed",
        "RecordingDuration": "7",
        "RecordingChannels": "2",
        "RecordingSource": "StartCallRecordingAPI" if kind == "recording" else "RecordVerb",
        **extra,
    }
    return tw.post(f"/twilio/voice/recording/status?kind={kind}", params)


def a_recorded_call(tw: TwilioSim, kind: str = "recording", to: str = CLINIC_UK):
    call_sid, recording_sid = sid("CA"), sid("RE")
    assert tw.call(call_sid, to=to).status_code == 200
    response = recording_callback(tw, call_sid, recording_sid, kind)
    assert response.status_code == 200 and response.get_data() == b""
    return call_sid, recording_sid


def row(svc: Services, recording_sid: str) -> Recording:
    with svc.db.session() as s:
        return s.scalars(select(Recording).where(Recording.recording_sid == recording_sid)).one()


def queued_job_ids(svc: Services) -> list[str]:
    assert svc.queue is not None
    return svc.queue.get_job_ids()


def bucket_object(svc: Services, aws_env: str, rec: Recording) -> dict:
    region = svc.config.regions[rec.region]
    client = s3(aws_env, region.aws_region)
    head = client.head_object(Bucket=region.bucket, Key=rec.key)
    tags = client.get_object_tagging(Bucket=region.bucket, Key=rec.key)["TagSet"]
    body = client.get_object(Bucket=region.bucket, Key=rec.key)["Body"].read()
    return {"head": head, "tags": {t["Key"]: t["Value"] for t in tags}, "body": body}


def methods(mock: responses.RequestsMock) -> list[str]:
    return [f"{c.request.method} {c.request.url.rsplit('/', 1)[-1]}" for c in mock.calls]


# --- the callback ------------------------------------------------------------------------


def test_a_retried_callback_stores_one_row_and_queues_one_job(tw: TwilioSim, svc: Services) -> None:
    call_sid, recording_sid = a_recorded_call(tw)
    recording_callback(tw, call_sid, recording_sid)
    with svc.db.session() as s:
        rows = list(s.scalars(select(Recording)))
    assert [(r.recording_sid, r.kind, r.status, r.region) for r in rows] == [
        (recording_sid, "recording", "pending", "uk")
    ]
    rec = rows[0]
    assert rec.phone == PATIENT and rec.clinic_id == "riverside-physio"
    assert rec.key == (
        f"{subject_prefix('riverside-physio', PATIENT, svc.settings.subject_salt)}"
        f"recordings/{recording_sid}.wav"
    )
    assert rec.data_category == "recording"
    # The clinic keeps recordings 30 days (its override of the default 365).
    assert rec.retention_until == rec.created_at.astimezone(
        svc.directory.by_id("riverside-physio").tz  # type: ignore[union-attr]
    ).date() + timedelta(days=30)
    assert queued_job_ids(svc) == [lifecycle.transfer_job_id(rec.id)]
    job = Job.fetch(queued_job_ids(svc)[0], connection=svc.redis)
    assert job.func_name == "recordings.jobs.transfer_recording"
    assert job.args == (rec.id,)  # an id, not an object
    assert job.retries_left == len(lifecycle.RETRY_INTERVALS)


def test_the_callback_may_come_before_the_calls_status_callback(
    tw: TwilioSim, svc: Services
) -> None:
    call_sid, recording_sid = a_recorded_call(tw)
    tw.status(call_sid, "completed", duration=30)
    recording_callback(tw, call_sid, recording_sid)
    assert row(svc, recording_sid).status == "pending"
    with svc.db.session() as s:
        assert s.scalars(select(Call.status).where(Call.call_sid == call_sid)).one() == "completed"


def test_an_unsigned_callback_is_refused_and_stores_nothing(tw: TwilioSim, svc: Services) -> None:
    call_sid = sid("CA")
    tw.call(call_sid)
    params = {"CallSid": call_sid, "RecordingSid": sid("RE"), "RecordingStatus": "completed"}
    response = tw.post("/twilio/voice/recording/status?kind=recording", params, signature="bad")
    assert response.status_code == 403
    # Signed for another kind: the query is part of what Twilio signs.
    forged = tw.post(
        "/twilio/voice/recording/status?kind=voicemail",
        params,
        signed_url=BASE_URL + "/twilio/voice/recording/status?kind=recording",
    )
    assert forged.status_code == 403
    with svc.db.session() as s:
        assert list(s.scalars(select(Recording))) == []
    assert queued_job_ids(svc) == []


@pytest.mark.parametrize("status", ["absent", "failed", "in-progress"])
def test_a_callback_without_a_finished_recording_stores_nothing(
    tw: TwilioSim, svc: Services, status: str
) -> None:
    call_sid = sid("CA")
    tw.call(call_sid)
    assert recording_callback(tw, call_sid, sid("RE"), RecordingStatus=status).status_code == 200
    with svc.db.session() as s:
        assert list(s.scalars(select(Recording))) == []
    assert queued_job_ids(svc) == []


def test_a_malformed_callback_gets_an_empty_200(tw: TwilioSim, svc: Services) -> None:
    response = tw.post("/twilio/voice/recording/status?kind=recording", {"RecordingSid": "x"})
    assert response.status_code == 200 and response.get_data() == b""


def test_a_voicemail_opens_one_work_item_for_staff(tw: TwilioSim, svc: Services) -> None:
    call_sid, recording_sid = a_recorded_call(tw, kind="voicemail", to=CLINIC_US)
    recording_callback(tw, call_sid, recording_sid, "voicemail")
    with svc.db.session() as s:
        items = list(s.scalars(select(WorkItem)))
    assert [(w.kind, w.call_sid, w.recording_sid, w.status, w.clinic_id) for w in items] == [
        ("voicemail", call_sid, recording_sid, "open", "hudson-family")
    ]
    rec = row(svc, recording_sid)
    assert (rec.kind, rec.data_category, rec.region) == ("voicemail", "voicemail", "us")
    assert "/voicemails/" in (rec.key or "")


def test_a_voicemail_item_opened_first_by_the_record_action_gets_its_recording(
    tw: TwilioSim, svc: Services
) -> None:
    call_sid = sid("CA")
    tw.call(call_sid)
    now = svc.clock()
    with svc.db.session() as s:
        s.add(
            WorkItem(
                kind="voicemail",
                call_sid=call_sid,
                clinic_id="riverside-physio",
                phone=PATIENT,
                status="open",
                created_at=now,
                updated_at=now,
                data_category="voicemail",
                retention_until=now.date(),
            )
        )
    recording_sid = sid("RE")
    recording_callback(tw, call_sid, recording_sid, "voicemail")
    with svc.db.session() as s:
        items = list(s.scalars(select(WorkItem)))
    assert [(w.kind, w.recording_sid) for w in items] == [("voicemail", recording_sid)]


# --- the job -----------------------------------------------------------------------------


def test_the_job_stores_in_the_region_bucket_verifies_and_only_then_deletes_at_twilio(
    tw: TwilioSim, svc: Services, aws_env: str, twilio_api: responses.RequestsMock
) -> None:
    _, recording_sid = a_recorded_call(tw)
    rec = row(svc, recording_sid)
    seen_in_bucket_at_delete: list[bool] = []

    def on_delete(request):  # Twilio's copy may go only once ours is in the bucket
        region = svc.config.regions["uk"]
        listing = s3(aws_env, region.aws_region).list_objects_v2(Bucket=region.bucket)
        seen_in_bucket_at_delete.append(rec.key in [o["Key"] for o in listing["Contents"]])
        return (204, {}, b"")

    twilio_api.get(media_url(recording_sid), body=MEDIA)
    twilio_api.add_callback("DELETE", delete_url(recording_sid), callback=on_delete)

    assert lifecycle.transfer(svc.recordings, rec.id) == "done"

    assert methods(twilio_api) == [f"GET {recording_sid}.wav", f"DELETE {recording_sid}.json"]
    assert twilio_api.calls[0].request.headers["Authorization"].startswith("Basic ")
    assert seen_in_bucket_at_delete == [True]
    stored = bucket_object(svc, aws_env, rec)
    assert stored["body"] == MEDIA
    assert stored["tags"] == {
        "data-category": "recording",
        "retention-until": rec.retention_until.isoformat(),
    }
    assert stored["head"]["ServerSideEncryption"] == "AES256"
    assert stored["head"]["ContentType"] == "audio/wav"
    done = row(svc, recording_sid)
    assert (done.status, done.deleted_at_twilio, done.size_bytes) == ("stored", True, len(MEDIA))
    assert done.sha256 == hashlib.sha256(MEDIA).hexdigest()
    # Nothing in any other region's bucket.
    for code, region in svc.config.regions.items():
        if code != "uk":
            listing = s3(aws_env, region.aws_region).list_objects_v2(Bucket=region.bucket)
            assert listing.get("KeyCount", 0) == 0

    # A duplicate job finds the work done and asks Twilio nothing.
    assert lifecycle.transfer(svc.recordings, rec.id) == "done"
    assert len(twilio_api.calls) == 2


def test_a_recording_twilio_already_deleted_completes(
    tw: TwilioSim, svc: Services, aws_env: str, twilio_api: responses.RequestsMock
) -> None:
    _, recording_sid = a_recorded_call(tw)
    fake_twilio(twilio_api, recording_sid, delete_status=404)
    assert lifecycle.transfer(svc.recordings, row(svc, recording_sid).id) == "done"
    rec = row(svc, recording_sid)
    assert (rec.status, rec.deleted_at_twilio) == ("stored", True)
    assert bucket_object(svc, aws_env, rec)["body"] == MEDIA


def test_a_twilio_5xx_on_download_is_retried_and_nothing_is_deleted_meanwhile(
    tw: TwilioSim, svc: Services, aws_env: str, twilio_api: responses.RequestsMock
) -> None:
    _, recording_sid = a_recorded_call(tw)
    twilio_api.get(media_url(recording_sid), status=503)
    twilio_api.get(media_url(recording_sid), body=MEDIA)
    twilio_api.delete(delete_url(recording_sid), status=204)
    rec_id = row(svc, recording_sid).id

    with pytest.raises(TransientError):
        lifecycle.transfer(svc.recordings, rec_id, final_attempt=False)
    first = row(svc, recording_sid)
    assert (first.status, first.attempts, first.deleted_at_twilio) == ("pending", 1, False)
    assert "503" in (first.error or "")
    assert methods(twilio_api) == [f"GET {recording_sid}.wav"]

    assert lifecycle.transfer(svc.recordings, rec_id, final_attempt=False) == "done"
    assert methods(twilio_api)[1:] == [f"GET {recording_sid}.wav", f"DELETE {recording_sid}.json"]
    done = row(svc, recording_sid)
    assert (done.status, done.deleted_at_twilio, done.attempts, done.error) == (
        "stored",
        True,
        2,
        None,
    )


def test_a_twilio_5xx_on_delete_keeps_the_bucket_copy_and_the_retry_deletes(
    tw: TwilioSim, svc: Services, aws_env: str, twilio_api: responses.RequestsMock
) -> None:
    _, recording_sid = a_recorded_call(tw)
    twilio_api.get(media_url(recording_sid), body=MEDIA)
    twilio_api.delete(delete_url(recording_sid), status=500)
    twilio_api.delete(delete_url(recording_sid), status=204)
    rec_id = row(svc, recording_sid).id
    with pytest.raises(TransientError):
        lifecycle.transfer(svc.recordings, rec_id, final_attempt=False)
    assert (row(svc, recording_sid).status, row(svc, recording_sid).deleted_at_twilio) == (
        "stored",
        False,
    )
    assert lifecycle.transfer(svc.recordings, rec_id, final_attempt=False) == "done"
    # The retry does not download again: the verified copy is already in the bucket.
    assert methods(twilio_api) == [
        f"GET {recording_sid}.wav",
        f"DELETE {recording_sid}.json",
        f"DELETE {recording_sid}.json",
    ]


def test_a_bucket_outage_is_retried_and_twilios_copy_stays_until_the_bucket_is_back(
    tw: TwilioSim,
    svc: Services,
    aws_env: str,
    s3_server: Service,
    twilio_api: responses.RequestsMock,
) -> None:
    _, recording_sid = a_recorded_call(tw)
    fake_twilio(twilio_api, recording_sid)
    rec_id = row(svc, recording_sid).id
    with service_stopped(s3_server):
        with pytest.raises(Exception) as failure:
            lifecycle.transfer(svc.recordings, rec_id, final_attempt=False)
        assert "Connect" in type(failure.value).__name__ or "Endpoint" in str(failure.value)
        assert row(svc, recording_sid).status == "pending"
        assert [c.request.method for c in twilio_api.calls] == ["GET"]
    create_buckets(svc)  # the restarted moto server starts empty
    assert lifecycle.transfer(svc.recordings, rec_id, final_attempt=False) == "done"
    assert [c.request.method for c in twilio_api.calls] == ["GET", "GET", "DELETE"]
    assert bucket_object(svc, aws_env, row(svc, recording_sid))["body"] == MEDIA


@pytest.mark.parametrize("status", [403, 404])
def test_a_permanent_download_failure_marks_the_row_for_staff_and_leaves_twilios_copy(
    tw: TwilioSim, svc: Services, twilio_api: responses.RequestsMock, status: int
) -> None:
    _, recording_sid = a_recorded_call(tw)
    twilio_api.get(media_url(recording_sid), status=status, json={"code": 20404})
    rec_id = row(svc, recording_sid).id
    assert lifecycle.transfer(svc.recordings, rec_id, final_attempt=False) == "failed"
    rec = row(svc, recording_sid)
    assert (rec.status, rec.deleted_at_twilio) == ("failed", False)
    assert str(status) in (rec.error or "")
    assert [c.request.method for c in twilio_api.calls] == ["GET"]
    # A failed row is left to staff: another run changes nothing and asks Twilio nothing.
    assert lifecycle.transfer(svc.recordings, rec_id) == "failed"
    assert len(twilio_api.calls) == 1


def test_the_last_attempt_marks_the_row_failed_and_keeps_twilios_copy(
    tw: TwilioSim, svc: Services, twilio_api: responses.RequestsMock
) -> None:
    _, recording_sid = a_recorded_call(tw)
    twilio_api.get(media_url(recording_sid), status=502)
    rec_id = row(svc, recording_sid).id
    assert lifecycle.transfer(svc.recordings, rec_id, final_attempt=True) == "failed"
    rec = row(svc, recording_sid)
    assert (rec.status, rec.deleted_at_twilio) == ("failed", False)
    assert [c.request.method for c in twilio_api.calls] == ["GET"]


def test_a_recording_erased_while_it_was_being_copied_leaves_no_copy_anywhere(
    tw: TwilioSim, svc: Services, aws_env: str, twilio_api: responses.RequestsMock
) -> None:
    _, recording_sid = a_recorded_call(tw)
    rec = row(svc, recording_sid)

    def download_then_erase(request):
        with svc.db.session() as s:  # the erase commits while the job holds the media
            s.execute(delete(Recording).where(Recording.id == rec.id))
        return (200, {}, MEDIA)

    twilio_api.add_callback("GET", media_url(recording_sid), callback=download_then_erase)
    twilio_api.delete(delete_url(recording_sid), status=204)
    assert lifecycle.transfer(svc.recordings, rec.id) == "gone"
    region = svc.config.regions["uk"]
    listing = s3(aws_env, region.aws_region).list_objects_v2(Bucket=region.bucket)
    assert listing.get("KeyCount", 0) == 0
    assert [c.request.method for c in twilio_api.calls] == ["GET", "DELETE"]


def test_a_region_mismatch_fails_the_row_and_writes_nowhere(
    tw: TwilioSim, svc: Services, aws_env: str, twilio_api: responses.RequestsMock
) -> None:
    _, recording_sid = a_recorded_call(tw)
    with svc.db.session() as s:  # e.g. the clinic moved region in the config since
        r = s.scalars(select(Recording).where(Recording.recording_sid == recording_sid)).one()
        r.region = "eu"
    fake_twilio(twilio_api, recording_sid)
    assert lifecycle.transfer(svc.recordings, row(svc, recording_sid).id) == "failed"
    assert len(twilio_api.calls) == 0  # neither downloaded nor deleted
    for region in svc.config.regions.values():
        listing = s3(aws_env, region.aws_region).list_objects_v2(Bucket=region.bucket)
        assert listing.get("KeyCount", 0) == 0


def test_a_recording_of_a_call_not_in_the_log_is_placed_by_twilios_call_record(
    tw: TwilioSim, svc: Services, twilio_api: responses.RequestsMock
) -> None:
    call_sid, recording_sid = sid("CA"), sid("RE")
    recording_callback(tw, call_sid, recording_sid)  # no /twilio/voice came first
    with svc.db.session() as s:
        assert list(s.scalars(select(Recording))) == []
    assert queued_job_ids(svc) == [f"adopt-{recording_sid}"]
    twilio_api.get(
        f"{API}/Calls/{call_sid}.json",
        json={"sid": call_sid, "to": CLINIC_UK, "from": PATIENT, "status": "completed"},
    )
    row_id = lifecycle.adopt(svc.recordings, recording_sid, call_sid, "recording", 7)
    assert row_id is not None
    rec = row(svc, recording_sid)
    assert (rec.clinic_id, rec.phone, rec.region) == ("riverside-physio", PATIENT, "uk")


# --- the real worker ---------------------------------------------------------------------


@pytest.fixture
def worker_env(
    monkeypatch: pytest.MonkeyPatch, svc: Services, aws_env: str, region_config_path: Path
) -> None:
    """What `bootstrap()` inside a job reads: the same database, Redis, config, endpoint."""
    monkeypatch.setenv("CALLGATEWAY_ENV", "test")
    monkeypatch.setenv("CALLGATEWAY_CONFIG", str(region_config_path))
    monkeypatch.setenv("DATABASE_URL", svc.settings.database_url)
    monkeypatch.setenv("REDIS_URL", svc.settings.redis_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", DEV_ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", svc.settings.twilio_auth_token)
    monkeypatch.delenv("TWILIO_API_BASE", raising=False)
    monkeypatch.delenv("CALLGATEWAY_CELL", raising=False)
    assert EXAMPLE_CONFIG.exists()


def test_the_rq_worker_retries_a_5xx_on_its_schedule_then_stores_and_deletes(
    tw: TwilioSim,
    svc: Services,
    aws_env: str,
    twilio_api: responses.RequestsMock,
    worker_env: None,
) -> None:
    _, recording_sid = a_recorded_call(tw)
    twilio_api.get(media_url(recording_sid), status=503)
    twilio_api.get(media_url(recording_sid), body=MEDIA)
    twilio_api.delete(delete_url(recording_sid), status=204)
    queue = Queue("default", connection=svc.redis)
    worker = SimpleWorker([queue], connection=svc.redis)

    worker.work(burst=True)
    job = Job.fetch(lifecycle.transfer_job_id(row(svc, recording_sid).id), connection=svc.redis)
    registry = ScheduledJobRegistry(queue=queue)
    assert job.id in registry.get_job_ids()  # backing off, not lost and not failed
    assert job.retries_left == len(lifecycle.RETRY_INTERVALS) - 1
    assert [c.request.method for c in twilio_api.calls] == ["GET"]
    assert row(svc, recording_sid).status == "pending"

    # Time passes: bring the retry forward and let rq's scheduler enqueue it.
    registry.schedule(job, svc.clock() - timedelta(seconds=1))
    worker.work(burst=True, with_scheduler=True)
    assert [c.request.method for c in twilio_api.calls] == ["GET", "GET", "DELETE"]
    rec = row(svc, recording_sid)
    assert (rec.status, rec.deleted_at_twilio) == ("stored", True)
    assert bucket_object(svc, aws_env, rec)["body"] == MEDIA
    assert Job.fetch(job.id, connection=svc.redis).return_value() == "done"
    assert re.fullmatch(
        r"clinics/riverside-physio/subjects/[0-9a-f]{64}/recordings/RE\w+\.wav", rec.key or ""
    )


def test_callback_retries_and_the_transfer_behave_the_same_on_postgresql_and_sqlite(
    make_services: Callable[..., Services],
    db_url: str,
    region_config: Config,
    aws_env: str,
    twilio_api: responses.RequestsMock,
) -> None:
    svc = make_services(db_url, region_config, aws_endpoint_url=aws_env)
    create_buckets(svc)
    tw = TwilioSim(create_app({"TESTING": True}, services=svc).test_client(), BASE_URL)
    call_sid, recording_sid = a_recorded_call(tw, kind="voicemail")
    recording_callback(tw, call_sid, recording_sid, "voicemail")
    with svc.db.session() as s:
        assert len(list(s.scalars(select(Recording)))) == 1
        assert len(list(s.scalars(select(WorkItem).where(WorkItem.kind == "voicemail")))) == 1
    assert len(queued_job_ids(svc)) == 1
    fake_twilio(twilio_api, recording_sid)
    assert lifecycle.transfer(svc.recordings, row(svc, recording_sid).id) == "done"
    assert bucket_object(svc, aws_env, row(svc, recording_sid))["body"] == MEDIA


# --- staff retry a failed transfer ---------------------------------------------------------


def test_a_failed_recording_is_queued_again_by_the_retry_command_and_then_stored(
    tw: TwilioSim,
    svc: Services,
    aws_env: str,
    region_config_path: Path,
    twilio_api: responses.RequestsMock,
) -> None:
    _, recording_sid = a_recorded_call(tw)
    _, other_sid = a_recorded_call(tw, to=CLINIC_US)
    for failing in (recording_sid, other_sid):
        twilio_api.get(media_url(failing), status=404, json={"code": 20404})
        assert lifecycle.transfer(svc.recordings, row(svc, failing).id) == "failed"
    svc.queue.empty()  # the callbacks' jobs ran (above) and are gone, as after a worker
    env = stored_cli_env(svc, region_config_path, aws_env)

    result = CliRunner().invoke(
        main, ["recordings", "retry", "--clinic", "riverside-physio"], env=env
    )

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"reset": 1, "queued": 1}
    rec = row(svc, recording_sid)
    assert (rec.status, rec.error) == ("pending", None)
    assert queued_job_ids(svc) == [lifecycle.transfer_job_id(rec.id)]
    assert row(svc, other_sid).status == "failed"  # another clinic's: not asked for
    with svc.db.session() as s:
        (entry,) = s.scalars(select(AuditEntry).where(AuditEntry.action == "recordings.retry"))
    assert (entry.clinic_id, entry.detail) == ("riverside-physio", {"recordings": 1})

    # The cause is fixed (Twilio serves the media now): the queued job stores it.
    twilio_api.replace(responses.GET, media_url(recording_sid), body=MEDIA)
    twilio_api.delete(delete_url(recording_sid), status=204)
    assert lifecycle.transfer(svc.recordings, rec.id) == "done"
    assert bucket_object(svc, aws_env, row(svc, recording_sid))["body"] == MEDIA
    again = CliRunner().invoke(main, ["recordings", "retry", "--sid", recording_sid], env=env)
    assert json.loads(again.stdout) == {"reset": 0, "queued": 0}


def test_retry_for_an_unknown_clinic_is_one_line_and_a_non_zero_exit(
    svc: Services, aws_env: str, region_config_path: Path
) -> None:
    env = stored_cli_env(svc, region_config_path, aws_env)
    result = CliRunner().invoke(main, ["recordings", "retry", "--clinic", "nowhere"], env=env)
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: --clinic: unknown clinic 'nowhere'"


# --- recordings Twilio holds that never reached us -----------------------------------------

SINCE = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
PAGE_2 = f"/2010-04-01/Accounts/{DEV_ACCOUNT_SID}/Recordings.json?PageSize=100&Page=1&PageToken=PA1"


def held(recording_sid: str, call_sid: str, source: str, status: str = "completed") -> dict:
    return {
        "sid": recording_sid, "call_sid": call_sid, "status": status, "source": source,
        "duration": "14", "account_sid": DEV_ACCOUNT_SID,
    }  # fmt: skip


def test_reconcile_places_each_recording_twilio_holds_that_never_reached_us(
    tw: TwilioSim, svc: Services, twilio_api: responses.RequestsMock
) -> None:
    _, known = a_recorded_call(tw)  # its callback came: it has a row
    lost_call, lost = sid("CA"), sid("RE")  # a voicemail whose callback met an outage
    other_cell_call, other_cell = sid("CA"), sid("RE")  # a clinic of another cell
    svc.queue.empty()
    first = {"DateCreated>": "2026-11-21T03:00:00Z", "PageSize": "100"}
    twilio_api.get(
        f"{API}/Recordings.json",
        match=[responses.matchers.query_param_matcher(first)],
        json={
            "recordings": [
                held(known, sid("CA"), "StartCallRecordingAPI"),
                held(lost, lost_call, "RecordVerb"),
                held(sid("RE"), lost_call, "RecordVerb", status="absent"),  # nothing to fetch
            ],
            "next_page_uri": PAGE_2,
        },
    )
    twilio_api.get(
        f"{API}/Recordings.json",
        match=[
            responses.matchers.query_param_matcher(
                {"PageSize": "100", "Page": "1", "PageToken": "PA1"}
            )
        ],
        json={"recordings": [held(other_cell, other_cell_call, "DialVerb")], "next_page_uri": None},
    )
    twilio_api.get(f"{API}/Calls/{lost_call}.json", json={"to": CLINIC_UK, "from": PATIENT})
    twilio_api.get(
        f"{API}/Calls/{other_cell_call}.json", json={"to": "+61255501234", "from": PATIENT}
    )

    assert lifecycle.reconcile(svc.recordings, SINCE) == 1
    rec = row(svc, lost)
    assert (rec.kind, rec.clinic_id, rec.phone, rec.status) == (
        "voicemail",
        "riverside-physio",
        PATIENT,
        "pending",
    )
    assert queued_job_ids(svc) == [lifecycle.transfer_job_id(rec.id)]
    with svc.db.session() as s:
        items = [(w.kind, w.call_sid) for w in s.scalars(select(WorkItem))]
        assert (
            s.scalars(select(Recording).where(Recording.recording_sid == other_cell)).first()
            is None
        )
    assert items == [("voicemail", lost_call)]  # for staff, like any voicemail
    assert lifecycle.reconcile(svc.recordings, SINCE) == 0  # tomorrow's run over the same window


def test_recordings_reconcile_command_prints_the_count_or_one_line_when_twilio_fails(
    svc: Services, aws_env: str, region_config_path: Path, twilio_api: responses.RequestsMock
) -> None:
    env = stored_cli_env(
        svc, region_config_path, aws_env,
        TWILIO_API_BASE="https://api.twilio.com", TWILIO_ACCOUNT_SID=DEV_ACCOUNT_SID,
    )  # fmt: skip
    twilio_api.get(f"{API}/Recordings.json", json={"recordings": [], "next_page_uri": None})
    done = CliRunner().invoke(main, ["recordings", "reconcile", "--days", "3"], env=env)
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout) == {"placed": 0}
    asked = [c.request.url for c in twilio_api.calls if "Recordings.json" in c.request.url]
    assert len(asked) == 1 and "DateCreated%3E=" in asked[0]

    twilio_api.replace(responses.GET, f"{API}/Recordings.json", status=503, json={"code": 20500})
    failed = CliRunner().invoke(main, ["recordings", "reconcile"], env=env)
    assert failed.exit_code == 1
    assert failed.stderr.strip().splitlines() == [
        "error: Twilio's recordings could not be listed (twilio GET 503 (code 20500))"
    ]


def test_the_daily_job_logs_a_twilio_outage_and_still_finishes_its_sweep(
    svc: Services, twilio_api: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    twilio_api.get(f"{API}/Recordings.json", status=503, json={"code": 20500})
    jobs._reconcile(svc.recordings, SINCE)  # raises nothing: tomorrow's run covers the same window
    assert "recordings not reconciled with Twilio" in caplog.text
