"""Data-subject rights: export lists everything held for a number; erase removes it from the
database, the region bucket and Twilio, keeps an opt-out as a hashed suppression, audits
once, and is a no-op the second time."""

from __future__ import annotations

import json
from collections.abc import Callable

import jsonschema
import pytest
import responses
from sqlalchemy import select

from callgateway.adapters.storage import subject_prefix
from callgateway.app import create_app
from callgateway.booking.outbox import appointment_key
from callgateway.config import Config
from callgateway.db.models import Appointment, AuditEntry, Base, Suppression
from callgateway.outbound import checkins
from callgateway.phone import subject_hash
from callgateway.privacy import rights
from callgateway.wiring import Services
from consent import gate
from tests.support.regions import all_objects, create_buckets
from tests.support.settings import BASE_URL
from tests.support.subject_data import API, seed
from tests.support.twilio import CLINIC_UK, CLINIC_US, PATIENT, PATIENT_2, TwilioSim

pytest_plugins = ["tests.support.region_fixtures"]

UK = "riverside-physio"


@pytest.fixture
def svc(stored_services: Services) -> Services:
    return stored_services


def audit_entries(svc: Services) -> list[AuditEntry]:
    with svc.db.session() as s:
        return list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def rows_mentioning(svc: Services, value: str) -> dict[str, int]:
    """Every table's rows holding `value` in any column, by table name."""
    found: dict[str, int] = {}
    with svc.db.session() as s:
        for table in Base.metadata.sorted_tables:
            for row in s.execute(select(table)).mappings():
                if any(value in str(v) for v in row.values() if v is not None):
                    found[table.name] = found.get(table.name, 0) + 1
    return found


def test_export_lists_every_record_of_the_number_with_its_clinic_and_validates(
    svc: Services, tw: TwilioSim, twilio_api: responses.RequestsMock
) -> None:
    uk = seed(svc, tw, twilio_api, PATIENT, CLINIC_UK)
    us = seed(svc, tw, twilio_api, PATIENT, CLINIC_US, opted_out=False)
    seed(svc, tw, twilio_api, PATIENT_2, CLINIC_UK)

    doc = rights.export(svc, PATIENT, None, actor="cli:test:rights export")

    jsonschema.validate(doc, rights.export_schema(), format_checker=jsonschema.FormatChecker())
    assert list(doc) == [
        "phone", "generated_at", "calls", "appointments", "consent", "recordings",
        "voicemails", "messages",
    ]  # fmt: skip
    assert doc["phone"] == PATIENT
    assert sorted(c["call_sid"] for c in doc["calls"]) == sorted(uk.call_sids + us.call_sids)
    assert {c["clinic"] for c in doc["calls"]} == {UK, "hudson-family"}
    transcript = next(c for c in doc["calls"] if c["call_sid"] == uk.call_sids[0])["transcript"]
    assert [t["text"] for t in transcript] == [
        "I would like to book a session",
        "Which day suits you?",
    ]
    assert sorted(r["recording_sid"] for r in doc["recordings"]) == sorted(
        uk.recording_sids + us.recording_sids
    )
    for item in doc["recordings"] + doc["voicemails"]:
        region = "uk" if item["clinic"] == UK else "us"
        assert item["region"] == region
        assert item["bucket"] == svc.config.regions[region].bucket
        assert item["key"].startswith(f"clinics/{item['clinic']}/subjects/")
    waiting = [r["recording_sid"] for r in doc["recordings"] if r["at_twilio"]]
    assert sorted(waiting) == sorted(uk.pending_sids + us.pending_sids)
    assert sorted(v["recording_sid"] for v in doc["voicemails"]) == sorted(
        uk.voicemail_sids + us.voicemail_sids
    )
    assert [(c["clinic"], c["state"]) for c in doc["consent"]] == [
        (UK, "opted_in"),
        (UK, "opted_out"),
        ("hudson-family", "opted_in"),
    ]
    assert {(m["clinic"], m["body"]) for m in doc["messages"]} == {
        (UK, "Can I move my appointment?"),
        ("hudson-family", "Can I move my appointment?"),
    }
    assert {(a["clinic"], a["patient_name"]) for a in doc["appointments"]} == {
        (UK, "Sam Example"),
        ("hudson-family", "Sam Example"),
    }
    # Nothing of the other caller.
    assert PATIENT_2 not in json.dumps(doc)

    (entry,) = audit_entries(svc)
    assert (entry.action, entry.actor) == ("rights.export", "cli:test:rights export")
    assert entry.subject_hash == subject_hash(PATIENT, svc.settings.subject_salt)
    assert PATIENT not in json.dumps(entry.detail)

    only_uk = rights.export(svc, PATIENT, UK, actor="cli:test")
    sections = ("calls", "recordings", "voicemails", "consent", "messages", "appointments")
    assert {item["clinic"] for name in sections for item in only_uk[name]} == {UK}


def test_erase_round_trip_leaves_only_the_audit_entries_and_the_suppression(
    svc: Services, tw: TwilioSim, twilio_api: responses.RequestsMock, aws_env: str
) -> None:
    held = seed(svc, tw, twilio_api, PATIENT, CLINIC_UK)
    (still_at_twilio,) = held.pending_sids
    twilio_api.delete(f"{API}/Recordings/{still_at_twilio}.json", status=204)
    prefix = subject_prefix(UK, PATIENT, svc.settings.subject_salt)
    assert len([k for k in all_objects(aws_env, svc.config)["uk"] if k.startswith(prefix)]) == 2
    calls_before = len(twilio_api.calls)

    rights.export(svc, PATIENT, UK, actor="cli:test")
    done = rights.erase(svc, PATIENT, UK, actor="cli:test:rights erase")

    assert done.done and done.suppressed and done.twilio_deleted == 1
    assert [f"{c.request.method} {c.request.url}" for c in twilio_api.calls][calls_before:] == [
        f"DELETE {API}/Recordings/{still_at_twilio}.json"
    ]
    assert all_objects(aws_env, svc.config) == {code: [] for code in svc.config.regions}
    # The number survives only as keyed hashes: in the suppression list and the audit log.
    assert rows_mentioning(svc, PATIENT) == {}
    phone_hash = subject_hash(PATIENT, svc.settings.subject_salt)
    with svc.db.session() as s:
        assert [(x.clinic_id, x.phone_hash) for x in s.scalars(select(Suppression))] == [
            (UK, phone_hash)
        ]
    actions = [(e.action, e.subject_hash) for e in audit_entries(svc)]
    assert actions == [("rights.export", phone_hash), ("rights.erase", phone_hash)]
    erase_entry = audit_entries(svc)[-1]
    assert erase_entry.detail["suppressed"] is True and erase_entry.detail["objects"] == 2
    # And the number stays opted out: no AI, no automated SMS from this clinic.
    assert svc.gate.may(UK, PATIENT, "ai_handling").reason == gate.OPTED_OUT
    assert not svc.gate.may(UK, PATIENT, "automated_sms")

    after = rights.export(svc, PATIENT, UK, actor="cli:test")
    assert [
        after[n] for n in ("calls", "appointments", "recordings", "voicemails", "messages")
    ] == [[], [], [], [], []]
    assert [(c["state"], c["channel"]) for c in after["consent"]] == [("opted_out", "suppression")]


def test_a_second_erase_is_a_no_op(
    svc: Services, tw: TwilioSim, twilio_api: responses.RequestsMock
) -> None:
    held = seed(svc, tw, twilio_api, PATIENT, CLINIC_UK)
    twilio_api.delete(f"{API}/Recordings/{held.pending_sids[0]}.json", status=204)
    assert rights.erase(svc, PATIENT, UK, actor="cli:test").done
    audits, requests_so_far = len(audit_entries(svc)), len(twilio_api.calls)
    with svc.db.session() as s:
        snapshot = {t.name: s.execute(select(t)).all() for t in Base.metadata.sorted_tables}

    again = rights.erase(svc, PATIENT, UK, actor="cli:test")

    assert not again.done and again.counts == {}
    assert len(audit_entries(svc)) == audits
    assert len(twilio_api.calls) == requests_so_far
    with svc.db.session() as s:
        assert {t.name: s.execute(select(t)).all() for t in Base.metadata.sorted_tables} == (
            snapshot
        )


def test_erase_touches_neither_other_clinics_nor_other_callers(
    svc: Services, tw: TwilioSim, twilio_api: responses.RequestsMock, aws_env: str
) -> None:
    held = seed(svc, tw, twilio_api, PATIENT, CLINIC_UK)
    seed(svc, tw, twilio_api, PATIENT, CLINIC_US)
    seed(svc, tw, twilio_api, PATIENT_2, CLINIC_UK)
    twilio_api.delete(f"{API}/Recordings/{held.pending_sids[0]}.json", status=204)
    before = all_objects(aws_env, svc.config)

    rights.erase(svc, PATIENT, UK, actor="cli:test")

    after = all_objects(aws_env, svc.config)
    assert after["us"] == before["us"] and len(after["us"]) == 2
    other = subject_prefix(UK, PATIENT_2, svc.settings.subject_salt)
    assert after["uk"] == [k for k in before["uk"] if k.startswith(other)] and after["uk"]
    left = rights.export(svc, PATIENT, None, actor="cli:test")
    assert {c["clinic"] for c in left["calls"]} == {"hudson-family"}
    assert len(rights.export(svc, PATIENT_2, UK, actor="cli:test")["calls"]) == 3


def test_a_number_that_never_opted_out_is_erased_without_a_suppression(
    svc: Services, tw: TwilioSim, twilio_api: responses.RequestsMock
) -> None:
    held = seed(svc, tw, twilio_api, PATIENT, CLINIC_UK, opted_out=False)
    twilio_api.delete(f"{API}/Recordings/{held.pending_sids[0]}.json", status=204)
    assert not rights.erase(svc, PATIENT, UK, actor="cli:test").suppressed
    with svc.db.session() as s:
        assert list(s.scalars(select(Suppression))) == []
    assert svc.gate.may(UK, PATIENT, "automated_sms").reason == gate.NO_OBJECTION


def test_erase_stops_before_touching_our_data_when_twilio_cannot_delete_its_copy(
    svc: Services, tw: TwilioSim, twilio_api: responses.RequestsMock, aws_env: str
) -> None:
    held = seed(svc, tw, twilio_api, PATIENT, CLINIC_UK)
    twilio_api.delete(f"{API}/Recordings/{held.pending_sids[0]}.json", status=503)
    objects = all_objects(aws_env, svc.config)
    rows = rows_mentioning(svc, PATIENT)

    with pytest.raises(rights.RightsError, match="run again"):
        rights.erase(svc, PATIENT, UK, actor="cli:test")

    assert all_objects(aws_env, svc.config) == objects
    assert rows_mentioning(svc, PATIENT) == rows
    assert [e.action for e in audit_entries(svc)] == []


def test_erase_also_removes_objects_under_the_subject_prefix_no_row_points_at(
    svc: Services, aws_env: str
) -> None:
    clinic = svc.directory.by_id(UK)
    assert clinic is not None and svc.storage is not None
    key = subject_prefix(UK, PATIENT, svc.settings.subject_salt) + "appointments/letter.pdf"
    svc.storage.put(
        clinic, key, b"%PDF", category="appointment", retention_until=svc.clock().date()
    )
    doc = rights.export(svc, PATIENT, UK, actor="cli:test")
    assert [(a["kind"], a["key"], a["region"]) for a in doc["appointments"]] == [
        ("object", key, "uk")
    ]
    assert rights.erase(svc, PATIENT, UK, actor="cli:test").objects_deleted == 1
    assert all_objects(aws_env, svc.config)["uk"] == []


def test_the_erase_round_trip_holds_on_postgresql_and_sqlite(
    make_services: Callable[..., Services],
    db_url: str,
    region_config: Config,
    aws_env: str,
    twilio_api: responses.RequestsMock,
) -> None:
    svc = make_services(db_url, region_config, aws_endpoint_url=aws_env)
    create_buckets(svc)
    tw = TwilioSim(create_app({"TESTING": True}, services=svc).test_client(), BASE_URL)
    held = seed(svc, tw, twilio_api, PATIENT, CLINIC_UK)
    twilio_api.delete(f"{API}/Recordings/{held.pending_sids[0]}.json", status=204)
    doc = rights.export(svc, PATIENT, UK, actor="cli:test")
    jsonschema.validate(doc, rights.export_schema())
    assert len(doc["calls"]) == 3 and len(doc["appointments"]) == 1
    assert rights.erase(svc, PATIENT, UK, actor="cli:test").done
    assert rows_mentioning(svc, PATIENT) == {}
    assert all_objects(aws_env, svc.config)["uk"] == []
    assert not rights.erase(svc, PATIENT, UK, actor="cli:test").done
    assert [e.action for e in audit_entries(svc)] == ["rights.export", "rights.erase"]


def test_the_appointments_bucket_copy_is_exported_and_erased_with_it(
    svc: Services, tw: TwilioSim, twilio_api: responses.RequestsMock, aws_env: str
) -> None:
    held = seed(svc, tw, twilio_api, PATIENT, CLINIC_UK)
    twilio_api.delete(f"{API}/Recordings/{held.pending_sids[0]}.json", status=204)
    clinic = svc.directory.by_id(UK)
    assert clinic is not None and svc.storage is not None
    with svc.db.session() as s:
        appointment = s.scalars(select(Appointment).where(Appointment.phone == PATIENT)).one()
    key = appointment_key(UK, appointment.ref)  # where the outbox writes its JSON copy
    svc.storage.put(
        clinic, key, b"{}", category="appointment", retention_until=appointment.retention_until
    )

    (item,) = rights.export(svc, PATIENT, UK, actor="cli:test")["appointments"]
    assert item["objects"] == [
        {"region": "uk", "bucket": svc.config.regions["uk"].bucket, "key": key}
    ]
    rights.erase(svc, PATIENT, UK, actor="cli:test")
    assert key not in all_objects(aws_env, svc.config)["uk"]


def test_a_number_listed_only_as_someone_elses_check_in_alert_receiver_is_exported_and_erased(
    svc: Services,
) -> None:
    # PATIENT_2's check-in alerts PATIENT and a neighbour; PATIENT has nothing else here.
    neighbour = "+447700900555"
    schedule_id = checkins.add_schedule(
        svc,
        checkins.ScheduleSpec(
            clinic_id=UK,
            phone=PATIENT_2,
            days="daily",
            local_time="09:00",
            alert_numbers=[PATIENT, neighbour],
            message_text="Good morning, this is your daily check-in.",
        ),
    )

    doc = rights.export(svc, PATIENT, UK, actor="cli:test")
    jsonschema.validate(doc, rights.export_schema(), format_checker=jsonschema.FormatChecker())
    assert [(a["clinic"], a["kind"], a["schedule_id"]) for a in doc["appointments"]] == [
        (UK, "checkin_alert_receiver", schedule_id)
    ]
    assert PATIENT_2 not in json.dumps(doc)  # the schedule's patient is someone else

    done = rights.erase(svc, PATIENT, UK, actor="cli:test:rights erase")

    assert done.done and done.counts == {"checkin_alert_numbers": 1}
    assert rows_mentioning(svc, PATIENT) == {}
    (kept,) = checkins.schedules(svc, [UK])
    assert (kept.phone, kept.alert_numbers, kept.active) == (PATIENT_2, [neighbour], True)
    assert not rights.erase(svc, PATIENT, UK, actor="cli:test:rights erase").done
