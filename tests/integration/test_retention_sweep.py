"""The retention sweep deletes every row and object past its date (and Twilio's copy of an
expired recording), keeps what has not expired, and keeps an expired opt-out suppressed."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import responses
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import func, select

from callgateway.booking import appointments, outbox
from callgateway.db.models import Appointment, AuditEntry, Recording, StoredObject, Suppression
from callgateway.jobs import daily as jobs
from callgateway.outbound import checkins
from callgateway.phone import subject_hash
from callgateway.privacy import rights
from callgateway.privacy.sweep import retained_tables, sweep
from callgateway.wiring import Services
from consent import gate
from recordings import lifecycle
from tests.support.cli import CALLGATEWAY, ROOT, run_cli
from tests.support.regions import all_objects, s3, stored_cli_env
from tests.support.subject_data import API, seed
from tests.support.twilio import CLINIC_UK, CLINIC_US, PATIENT, PATIENT_2, TwilioSim

pytest_plugins = ["tests.support.region_fixtures"]

FAR = datetime(2040, 1, 1, tzinfo=UTC)


@pytest.fixture
def svc(stored_services: Services) -> Services:
    return stored_services


def row_counts(svc: Services) -> dict[str, int]:
    with svc.db.session() as s:
        return {
            t.name: n
            for t in retained_tables()
            if (n := s.execute(select(func.count()).select_from(t)).scalar_one())
        }


def test_a_sweep_far_in_the_future_empties_rows_objects_and_twilio(
    svc: Services, tw: TwilioSim, twilio_api: responses.RequestsMock, aws_env: str
) -> None:
    uk = seed(svc, tw, twilio_api, PATIENT, CLINIC_UK)
    us = seed(svc, tw, twilio_api, PATIENT_2, CLINIC_US, opted_out=False)
    for recording_sid in uk.pending_sids + us.pending_sids:
        twilio_api.delete(f"{API}/Recordings/{recording_sid}.json", status=204)
    sent_before = len(twilio_api.calls)
    assert sum(len(keys) for keys in all_objects(aws_env, svc.config).values()) == 4

    result = sweep(svc, FAR, actor="cli:test:retention sweep")

    assert result.errors == []
    assert result.counts() == {
        "call-metadata": 6,
        "transcript": 4,
        "recording": 4,
        "voicemail": 2 + 2,  # voicemail recordings and their work items for staff
        "appointment": 2,
        "consent": 3,
        "audit": 0,
        "message": 2,
    }
    assert all_objects(aws_env, svc.config) == {code: [] for code in svc.config.regions}
    deleted_at_twilio = [c.request.url for c in list(twilio_api.calls)[sent_before:]]
    assert sorted(deleted_at_twilio) == sorted(
        f"{API}/Recordings/{r}.json" for r in uk.pending_sids + us.pending_sids
    )
    assert row_counts(svc) == {"audit_log": 1}  # the sweep's own entry
    with svc.db.session() as s:
        (entry,) = s.scalars(select(AuditEntry))
        # The opted-out number stays opted out after its ledger expired.
        suppressed = [(x.clinic_id, x.phone_hash) for x in s.scalars(select(Suppression))]
    assert (entry.action, entry.actor) == ("retention.sweep", "cli:test:retention sweep")
    assert entry.detail["twilio_deleted"] == 2 and entry.detail["now"].startswith("2040-01-01")
    assert suppressed == [("riverside-physio", subject_hash(PATIENT, svc.settings.subject_salt))]
    assert svc.gate.may("riverside-physio", PATIENT, "automated_sms").reason == gate.OPTED_OUT
    assert svc.gate.may("hudson-family", PATIENT_2, "automated_sms").allowed


def test_a_sweep_today_deletes_nothing_that_has_not_expired(
    svc: Services, tw: TwilioSim, twilio_api: responses.RequestsMock, aws_env: str
) -> None:
    seed(svc, tw, twilio_api, PATIENT, CLINIC_UK)
    rows, objects = row_counts(svc), all_objects(aws_env, svc.config)
    sent = len(twilio_api.calls)

    result = sweep(svc, svc.clock(), actor="cli:test")

    assert sum(result.counts().values()) == 0
    assert all_objects(aws_env, svc.config) == objects
    assert row_counts(svc) == {**rows, "audit_log": rows.get("audit_log", 0) + 1}
    assert len(twilio_api.calls) == sent


def test_the_uk_clinics_30_day_recordings_go_before_its_other_records(
    svc: Services, tw: TwilioSim, twilio_api: responses.RequestsMock, aws_env: str
) -> None:
    held = seed(svc, tw, twilio_api, PATIENT, CLINIC_UK)
    twilio_api.delete(f"{API}/Recordings/{held.pending_sids[0]}.json", status=404)
    result = sweep(svc, svc.clock() + timedelta(days=45), actor="cli:test")
    assert result.counts()["recording"] == 2  # 30 days (clinic override)
    assert result.counts()["voicemail"] == 0  # 90 days
    assert result.counts()["call-metadata"] == 0
    left = all_objects(aws_env, svc.config)["uk"]
    assert len(left) == 1 and "/voicemails/" in left[0]


def _s3_calls(svc: Services) -> list[str]:
    """The S3 operations the storage adapter sends from now on, in every region."""
    assert svc.storage is not None
    calls: list[str] = []
    for code in svc.config.regions:
        svc.storage.client(code).meta.events.register(
            "before-call.s3", lambda model, **_: calls.append(model.name)
        )
    return calls


def _book_and_copy(svc: Services, start: datetime) -> tuple[Appointment, str]:
    """Book through the outbox, as the agent does, and deliver the bucket copy."""
    clinic = svc.directory.by_id("riverside-physio")
    assert clinic is not None
    now = svc.clock()
    with svc.db.session() as session:
        appointment = appointments.book(
            session, svc.config, clinic, phone=PATIENT, type_id="initial", start=start, now=now
        )
        (item,) = outbox.appointment_changed(session, clinic, appointment, "booked", now)
    assert outbox.deliver(svc, item).status == "done"
    return appointment, outbox.appointment_key(clinic.id, appointment.ref)


def _next_tuesday_noon(svc: Services) -> datetime:
    day = svc.clock().date() + timedelta(days=2)
    day += timedelta(days=(1 - day.weekday()) % 7)
    return datetime(day.year, day.month, day.day, 12, 0, tzinfo=UTC)


def test_an_appointments_bucket_copy_is_found_from_its_ledger_row(
    svc: Services, aws_env: str
) -> None:
    appointment, key = _book_and_copy(svc, _next_tuesday_noon(svc))
    assert all_objects(aws_env, svc.config)["uk"] == [key]
    with svc.db.session() as s:
        (ledger,) = s.scalars(select(StoredObject))
    assert (ledger.key, ledger.region, ledger.data_category) == (key, "uk", "appointment")
    assert ledger.retention_until == appointment.retention_until

    kept = sweep(svc, svc.clock(), actor="cli:test")
    assert sum(kept.counts().values()) == 0 and all_objects(aws_env, svc.config)["uk"] == [key]

    calls = _s3_calls(svc)
    result = sweep(svc, FAR, actor="cli:test")
    assert result.errors == []
    assert calls == ["DeleteObjects"]  # the version the put made, deleted by its id
    # The appointment row, its outbox entry and its bucket copy.
    assert result.counts()["appointment"] == 3
    assert all_objects(aws_env, svc.config)["uk"] == []
    assert row_counts(svc) == {"audit_log": 1}  # the last sweep's (the first's expired)


def test_in_a_versioned_bucket_the_sweep_deletes_the_version_the_put_made(
    svc: Services, aws_env: str
) -> None:
    """Production buckets are versioned: no version of an expired copy may stay behind."""
    bucket = svc.config.regions["uk"].bucket
    client = s3(aws_env, svc.config.regions["uk"].aws_region)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    _, key = _book_and_copy(svc, _next_tuesday_noon(svc))
    with svc.db.session() as s:
        (version,) = s.scalars(select(StoredObject.version_id))
    listed = client.list_object_versions(Bucket=bucket)["Versions"]
    assert [(v["Key"], v["VersionId"]) for v in listed] == [(key, version)] and version != "null"

    calls = _s3_calls(svc)
    assert sweep(svc, FAR, actor="cli:test").errors == []
    assert calls == ["DeleteObjects"]
    after = client.list_object_versions(Bucket=bucket)
    assert after.get("Versions", []) == [] and after.get("DeleteMarkers", []) == []


def test_a_checkin_message_recording_is_found_from_its_ledger_row(
    svc: Services, aws_env: str
) -> None:
    clinic = svc.directory.by_id("riverside-physio")
    assert clinic is not None
    key = checkins.upload_recording(svc, clinic, b"ID3 message", "audio/mpeg")
    assert all_objects(aws_env, svc.config)["uk"] == [key]
    result = sweep(svc, FAR, actor="cli:test")
    assert result.counts()["appointment"] == 1 and result.errors == []
    assert all_objects(aws_env, svc.config)["uk"] == []
    assert "stored_objects" not in row_counts(svc)


def test_the_sweep_never_lists_a_bucket_or_reads_tags(
    svc: Services, tw: TwilioSim, twilio_api: responses.RequestsMock, aws_env: str
) -> None:
    """Objects are found from the database. One no row points at (none of ours should
    exist) is left to the bucket's lifecycle rules by tag, the backstop."""
    held = seed(svc, tw, twilio_api, PATIENT, CLINIC_UK)
    for recording_sid in held.pending_sids:
        twilio_api.delete(f"{API}/Recordings/{recording_sid}.json", status=204)
    _book_and_copy(svc, _next_tuesday_noon(svc))
    clinic = svc.directory.by_id("harbour-gp")
    assert clinic is not None and svc.storage is not None
    svc.storage.put(
        clinic,
        "clinics/harbour-gp/stray.bin",
        b"x",
        category="appointment",
        retention_until=svc.clock().date() - timedelta(days=1),
    )
    calls = _s3_calls(svc)

    result = sweep(svc, FAR, actor="cli:test")

    assert result.errors == []
    assert set(calls) <= {"ListObjectVersions", "DeleteObjects"}, calls
    # One request per pass (recordings, other objects) for the whole batch, not per object.
    assert calls.count("DeleteObjects") == 2
    assert all_objects(aws_env, svc.config) == {
        **{code: [] for code in svc.config.regions},
        "au": ["clinics/harbour-gp/stray.bin"],
    }


def test_a_dry_run_lists_what_would_go_and_deletes_nothing(
    svc: Services, tw: TwilioSim, twilio_api: responses.RequestsMock, aws_env: str
) -> None:
    held = seed(svc, tw, twilio_api, PATIENT, CLINIC_UK)
    _, key = _book_and_copy(svc, _next_tuesday_noon(svc))
    rows, objects = row_counts(svc), all_objects(aws_env, svc.config)
    sent = len(twilio_api.calls)
    listed: list[dict[str, object]] = []

    result = sweep(svc, FAR, actor="cli:test", dry_run=True, listing=listed.append)

    assert row_counts(svc) == rows and all_objects(aws_env, svc.config) == objects
    assert len(twilio_api.calls) == sent
    listed_keys = {str(item["key"]) for item in listed if "key" in item}
    assert set(objects["uk"]) <= listed_keys and key in listed_keys
    assert {item["table"] for item in listed if "table" in item} >= {"calls", "appointments"}
    for recording_sid in held.pending_sids:
        twilio_api.delete(f"{API}/Recordings/{recording_sid}.json", status=204)
    real = sweep(svc, FAR, actor="cli:test")
    assert real.counts() == result.counts()


def test_a_sweep_out_of_time_stops_between_batches_and_the_next_finishes(
    svc: Services, aws_env: str
) -> None:
    _book_and_copy(svc, _next_tuesday_noon(svc))
    cut_short = sweep(svc, FAR, actor="cli:test", budget=timedelta(0))
    assert not cut_short.finished and sum(cut_short.counts().values()) == 0
    assert all_objects(aws_env, svc.config)["uk"] != []
    done = sweep(svc, FAR, actor="cli:test", budget=timedelta(minutes=5))
    assert done.finished and done.counts()["appointment"] == 3
    assert all_objects(aws_env, svc.config)["uk"] == []


def test_progress_is_reported_up_to_the_total(
    svc: Services, tw: TwilioSim, twilio_api: responses.RequestsMock
) -> None:
    held = seed(svc, tw, twilio_api, PATIENT, CLINIC_UK)
    for recording_sid in held.pending_sids:
        twilio_api.delete(f"{API}/Recordings/{recording_sid}.json", status=204)
    seen: list[tuple[int, int]] = []
    result = sweep(svc, FAR, actor="cli:test", progress=lambda d, t: seen.append((d, t)))
    total = sum(result.counts().values())
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_a_bucket_that_cannot_delete_keeps_the_row_for_the_next_sweep(
    svc: Services, tw: TwilioSim, twilio_api: responses.RequestsMock
) -> None:
    held = seed(svc, tw, twilio_api, PATIENT, CLINIC_UK)
    twilio_api.delete(f"{API}/Recordings/{held.pending_sids[0]}.json", status=503)
    result = sweep(svc, FAR, actor="cli:test")
    assert any(held.pending_sids[0] in e for e in result.errors)
    assert row_counts(svc).get("recordings") == 1  # retried tomorrow, not forgotten


def test_the_cli_sweep_prints_counts_per_category_as_json(
    svc: Services,
    tw: TwilioSim,
    twilio_api: responses.RequestsMock,
    aws_env: str,
    region_config_path: Path,
) -> None:
    held = seed(svc, tw, twilio_api, PATIENT, CLINIC_UK)
    twilio_api.delete(f"{API}/Recordings/{held.pending_sids[0]}.json", status=204)
    # Run the last transfer too, so nothing is left at Twilio for the subprocess to call.
    twilio_api.get(f"{API}/Recordings/{held.pending_sids[0]}.wav", body=b"RIFF....WAVE")
    with svc.db.session() as s:
        rec_id = s.scalars(
            select(Recording.id).where(Recording.recording_sid == held.pending_sids[0])
        ).one()
    assert lifecycle.transfer(svc.recordings, rec_id) == "done"
    # Twilio's API on the discard port: nothing must be asked of Twilio here.
    env = stored_cli_env(
        svc,
        region_config_path,
        aws_env,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )
    result = run_cli(["retention", "sweep", "--now", "2040-01-01", "--yes"], env)
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)
    assert counts["recording"] == 2 and counts["voicemail"] == 2 and counts["message"] == 1
    assert set(counts) >= {"call-metadata", "transcript", "appointment", "consent", "audit"}
    assert all_objects(aws_env, svc.config)["uk"] == []

    again = run_cli(["retention", "sweep", "--now", "2040-01-01T00:00:00Z", "--yes"], env)
    assert again.returncode == 0, again.stderr
    # Only the first sweep's own audit entry, whose six years are over by 2040.
    assert {k: v for k, v in json.loads(again.stdout).items() if v} == {"audit": 1}

    bad = run_cli(["retention", "sweep", "--now", "next tuesday"], env)
    assert bad.returncode != 0
    assert bad.stderr.strip().count("\n") == 0 and "ISO-8601" in bad.stderr


def test_the_daily_sweep_is_booked_once_on_rqs_scheduler(svc: Services) -> None:
    queue = Queue("default", connection=svc.redis)
    now = datetime(2030, 5, 6, 14, 0, tzinfo=UTC)
    first = jobs.schedule_daily_sweep(queue, now)
    again = jobs.schedule_daily_sweep(queue, now + timedelta(hours=1))
    assert first.id == again.id == "retention-sweep-2030-05-07"
    registry = ScheduledJobRegistry(queue=queue)
    assert registry.get_job_ids() == [first.id]
    assert registry.get_scheduled_time(first.id) == datetime(2030, 5, 7, 3, 0, tzinfo=UTC)
    assert first.func_name == "callgateway.jobs.daily.retention_sweep"


def test_the_daily_sweep_job_carries_a_timeout_that_fits_its_work(svc: Services) -> None:
    queue = Queue("default", connection=svc.redis)
    now = datetime(2030, 5, 6, 14, 0, tzinfo=UTC)
    # Booked by an older release, with RQ's default timeout (180 s): it gets the new one.
    old = queue.enqueue_at(
        jobs.next_sweep_time(now), jobs.SWEEP_JOB, job_id="retention-sweep-2030-05-07"
    )
    assert old.timeout == 180
    job = jobs.schedule_daily_sweep(queue, now)
    assert job.id == old.id
    assert Job.fetch(job.id, connection=svc.redis).timeout == 3600
    assert jobs.SWEEP_BUDGET < jobs.SWEEP_TIMEOUT
    tomorrow = jobs.schedule_daily_sweep(queue, now + timedelta(days=1))
    assert tomorrow.timeout == 3600


def test_a_cli_sweep_in_the_future_asks_at_a_terminal_warns_a_script_and_a_dry_run_lists(
    svc: Services,
    tw: TwilioSim,
    twilio_api: responses.RequestsMock,
    aws_env: str,
    region_config_path: Path,
) -> None:
    _, key = _book_and_copy(svc, _next_tuesday_noon(svc))
    env = stored_cli_env(
        svc, region_config_path, aws_env,
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
    )  # fmt: skip
    rows = row_counts(svc)

    # A person at a terminal is asked, and "n" deletes nothing.
    leader, follower = os.openpty()
    try:
        asked = subprocess.Popen(
            [CALLGATEWAY, "retention", "sweep", "--now", "2040-01-01"],
            stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=ROOT, text=True,
        )  # fmt: skip
        os.write(leader, b"n\n")
        out, err = asked.communicate(timeout=60)
    finally:
        os.close(leader)
        os.close(follower)
    assert asked.returncode != 0 and out == "" and "Sweep anyway?" in err
    assert row_counts(svc) == rows and all_objects(aws_env, svc.config)["uk"] == [key]

    dry = run_cli(["retention", "sweep", "--now", "2040-01-01", "--dry-run"], env)
    assert dry.returncode == 0, dry.stderr
    *items, counts = [json.loads(line) for line in dry.stdout.splitlines()]
    assert {"category": "appointment", "region": "uk", "key": key} in items
    assert counts["appointment"] == 3
    assert row_counts(svc) == rows and all_objects(aws_env, svc.config)["uk"] == [key]
    # Without a terminal, progress is JSON counts on stderr, ending with all done.
    progress = [json.loads(line) for line in dry.stderr.splitlines()]
    assert progress[-1]["done"] == progress[-1]["total"] == sum(counts.values())

    # A script (no terminal) that names the date sweeps, as contract §6 says, with a warning.
    swept = run_cli(["retention", "sweep", "--now", "2040-01-01"], env)
    assert swept.returncode == 0, swept.stderr
    assert json.loads(swept.stdout) == counts
    assert "in the future" in swept.stderr
    assert all_objects(aws_env, svc.config)["uk"] == []

    # Today's date is not the future: no question asked.
    today = run_cli(["retention", "sweep"], env)
    assert today.returncode == 0, today.stderr
    assert "warning" not in today.stderr


def test_an_erase_takes_the_ledger_rows_of_the_objects_it_deleted(
    svc: Services, aws_env: str
) -> None:
    _, key = _book_and_copy(svc, _next_tuesday_noon(svc))
    assert all_objects(aws_env, svc.config)["uk"] == [key]
    done = rights.erase(svc, PATIENT, "riverside-physio", actor="cli:test:rights erase")
    assert done.done and all_objects(aws_env, svc.config)["uk"] == []
    with svc.db.session() as s:
        assert list(s.scalars(select(StoredObject.key))) == []


def test_a_ledger_row_from_before_the_ledger_finds_its_region_from_the_clinic(
    svc: Services, aws_env: str
) -> None:
    """Migration 0005's rows have no region: the clinic's, from the config."""
    clinic = svc.directory.by_id("harbour-gp")
    assert clinic is not None and svc.storage is not None
    key = "clinics/harbour-gp/appointments/11112222.json"
    expired = svc.clock().date() - timedelta(days=1)
    svc.storage.put(clinic, key, b"{}", category="appointment", retention_until=expired)
    with svc.db.session() as s:
        s.add(
            StoredObject(
                key=key, clinic_id=clinic.id, region=None, created_at=svc.clock(),
                data_category="appointment", retention_until=expired,
            )
        )  # fmt: skip
    result = sweep(svc, svc.clock(), actor="cli:test")
    assert result.errors == [] and result.counts()["appointment"] == 1
    assert all_objects(aws_env, svc.config)["au"] == []
