"""The retention sweep deletes every row and object past its date (and Twilio's copy of an
expired recording), keeps what has not expired, and keeps an expired opt-out suppressed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import responses
from rq import Queue
from rq.registry import ScheduledJobRegistry
from sqlalchemy import func, select

from callgateway.db.models import AuditEntry, Recording, Suppression
from callgateway.jobs import daily as jobs
from callgateway.phone import subject_hash
from callgateway.privacy.sweep import retained_tables, sweep
from callgateway.wiring import Services
from consent import gate
from recordings import lifecycle
from tests.support.cli import run_cli
from tests.support.regions import all_objects, stored_cli_env
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


def test_an_object_no_row_points_at_expires_by_its_own_tag(svc: Services, aws_env: str) -> None:
    clinic = svc.directory.by_id("harbour-gp")
    assert clinic is not None and svc.storage is not None
    today = svc.clock().date()
    svc.storage.put(
        clinic,
        "clinics/harbour-gp/old.bin",
        b"x",
        category="appointment",
        retention_until=today - timedelta(days=1),
    )
    svc.storage.put(
        clinic,
        "clinics/harbour-gp/new.bin",
        b"x",
        category="appointment",
        retention_until=today + timedelta(days=1),
    )
    result = sweep(svc, svc.clock(), actor="cli:test")
    assert result.counts()["appointment"] == 1
    assert all_objects(aws_env, svc.config)["au"] == ["clinics/harbour-gp/new.bin"]


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
    result = run_cli(["retention", "sweep", "--now", "2040-01-01"], env)
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)
    assert counts["recording"] == 2 and counts["voicemail"] == 2 and counts["message"] == 1
    assert set(counts) >= {"call-metadata", "transcript", "appointment", "consent", "audit"}
    assert all_objects(aws_env, svc.config)["uk"] == []

    again = run_cli(["retention", "sweep", "--now", "2040-01-01T00:00:00Z"], env)
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
