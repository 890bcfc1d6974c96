"""The gate (`services.gate.may`) on real Redis and SQLite/PostgreSQL, including when Redis
or both Redis and the database are down: it answers from what it can read, and otherwise
denies, with a log line and no exception."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from callgateway.db.models import AuditEntry, ConsentEvent, Suppression
from callgateway.phone import subject_hash
from callgateway.wiring import Services
from consent import cache, ledger
from consent.gate import ACTIONS
from devtools.services import Service, free_port
from tests.support.services import service_stopped
from tests.support.twilio import PATIENT, PATIENT_2

CLINIC_A, CLINIC_B = "riverside-physio", "spree-hausarzt"
AUTOMATED = [a for a in ACTIONS if a != "ai_handling"]


@pytest.fixture
def svc(make_services: Callable[..., Services], db_url: str) -> Services:
    return make_services(db_url)


@pytest.mark.parametrize("action", ACTIONS)
def test_a_number_with_no_events_is_allowed_every_action(svc: Services, action: str) -> None:
    decision = svc.gate.may(CLINIC_A, PATIENT, action)
    assert (decision.allowed, decision.reason, decision.state) == (True, "no-objection", "none")


@pytest.mark.parametrize("action", ACTIONS)
def test_an_opted_out_number_is_denied_every_action(svc: Services, action: str) -> None:
    svc.consent.record_opt_out(CLINIC_A, PATIENT, "sms", "SM" + "1" * 32)
    decision = svc.gate.may(CLINIC_A, PATIENT, action)
    assert (decision.allowed, decision.reason, decision.state) == (False, "opted-out", "opted_out")


def test_the_newest_event_decides(svc: Services) -> None:
    svc.consent.record_opt_out(CLINIC_A, PATIENT, "sms", "SM" + "1" * 32)
    svc.consent.record_opt_in(CLINIC_A, PATIENT, "sms", "SM" + "2" * 32)
    assert svc.gate.may(CLINIC_A, PATIENT, "reminder_call").reason == "consented"
    svc.consent.record_voice_opt_out(CLINIC_A, PATIENT, "CA" + "3" * 32)
    assert svc.gate.may(CLINIC_A, PATIENT, "reminder_call").reason == "opted-out"


def test_anonymous_callers_may_talk_to_the_ai_but_get_nothing_automated(svc: Services) -> None:
    assert svc.gate.may(CLINIC_A, "anonymous", "ai_handling").allowed
    for action in AUTOMATED:
        decision = svc.gate.may(CLINIC_A, "anonymous", action)
        assert (decision.allowed, decision.reason) == (False, "anonymous-caller")


def test_an_unknown_clinic_is_denied(svc: Services) -> None:
    assert svc.gate.may("no-such-clinic", PATIENT, "ai_handling").reason == "unknown-clinic"


def test_an_unknown_action_is_a_programming_error(svc: Services) -> None:
    with pytest.raises(ValueError, match="unknown gated action"):
        svc.gate.may(CLINIC_A, PATIENT, "send_fax")


def test_opt_out_at_clinic_a_does_not_affect_clinic_b(svc: Services) -> None:
    svc.consent.record_opt_out(CLINIC_A, PATIENT, "sms", "SM" + "1" * 32)
    for action in ACTIONS:
        assert not svc.gate.may(CLINIC_A, PATIENT, action)
        assert svc.gate.may(CLINIC_B, PATIENT, action)
        assert svc.gate.may(CLINIC_A, PATIENT_2, action)


def test_an_erased_number_stays_opted_out_by_its_suppression(svc: Services) -> None:
    digest = subject_hash(PATIENT, svc.settings.subject_salt)
    with svc.db.session() as s:
        s.add(Suppression(clinic_id=CLINIC_A, phone_hash=digest, created_at=datetime.now(UTC)))
    for action in ACTIONS:
        assert svc.gate.may(CLINIC_A, PATIENT, action).reason == "opted-out"
    assert svc.gate.may(CLINIC_B, PATIENT, "ai_handling").allowed
    status = svc.consent.status(CLINIC_A, PATIENT)
    assert (status.state, status.events) == ("opted_out", [])
    # Opting back in is the patient's own choice, and wins over the old suppression.
    svc.consent.record_opt_in(CLINIC_A, PATIENT, "sms", "SM" + "4" * 32)
    assert svc.gate.may(CLINIC_A, PATIENT, "automated_sms").reason == "consented"


def test_the_cache_holds_a_keyed_hash_not_the_number(svc: Services) -> None:
    svc.consent.record_opt_out(CLINIC_A, PATIENT, "sms", "SM" + "1" * 32)
    keys = [k.decode() for k in svc.redis.keys("consent:*")]
    assert keys == [cache.key(svc.settings.subject_salt, CLINIC_A, PATIENT)]
    assert all(PATIENT[1:] not in k and "7700900123" not in k for k in keys)


def test_a_stale_read_cannot_put_an_older_state_over_a_newer_one(svc: Services) -> None:
    """A reader filled its miss from the database just before a STOP committed: its late
    cache write must not bring back the 'allow' the STOP replaced."""
    stale = svc.gate.read_snapshot(CLINIC_A, PATIENT)
    assert stale.state == "none"
    svc.consent.record_opt_out(CLINIC_A, PATIENT, "sms", "SM" + "1" * 32)
    cache.put(svc.redis, svc.settings.subject_salt, CLINIC_A, PATIENT, stale, memo=svc.memo)
    assert cache.get(svc.redis, svc.settings.subject_salt, CLINIC_A, PATIENT) == "opted_out"
    assert svc.gate.may(CLINIC_A, PATIENT, "ai_handling").reason == "opted-out"


def test_a_retried_event_adds_nothing_but_repairs_a_lost_write_through(svc: Services) -> None:
    source = "SM" + "5" * 32
    assert svc.consent.record_opt_out(CLINIC_A, PATIENT, "sms", source)
    svc.gate.forget(CLINIC_A, PATIENT)
    # As if the write-through was lost.
    svc.redis.set(cache.key(svc.settings.subject_salt, CLINIC_A, PATIENT), "none:0")
    assert not svc.consent.record_opt_out(CLINIC_A, PATIENT, "sms", source)
    assert cache.get(svc.redis, svc.settings.subject_salt, CLINIC_A, PATIENT) == "opted_out"
    with svc.db.session() as s:
        assert len(list(s.scalars(select(ConsentEvent)))) == 1


def test_voice_opt_out_is_one_event_per_call_however_often_it_is_said(svc: Services) -> None:
    call_sid = "CA" + "6" * 32
    assert svc.consent.record_voice_opt_out(CLINIC_A, PATIENT, call_sid)
    assert not svc.consent.record_voice_opt_out(CLINIC_A, PATIENT, call_sid)
    (event,) = svc.consent.status(CLINIC_A, PATIENT).events
    assert (event["channel"], event["source_id"]) == ("voice", f"{call_sid}:opt_out")
    assert not svc.gate.may(CLINIC_A, PATIENT, "ai_handling")
    assert not svc.consent.record_voice_opt_out(CLINIC_A, "anonymous", "CA" + "7" * 32)


def test_staff_events_are_audited_by_hash_and_a_double_submit_is_one_event(
    svc: Services,
) -> None:
    assert svc.consent.record_staff_event(CLINIC_A, PATIENT, "opted_out", 7, "form-abc")
    assert not svc.consent.record_staff_event(CLINIC_A, PATIENT, "opted_out", 7, "form-abc")
    assert svc.gate.may(CLINIC_A, PATIENT, "reminder_sms").reason == "opted-out"
    assert svc.consent.record_staff_event(CLINIC_A, PATIENT, "opted_in", 7)
    assert svc.gate.may(CLINIC_A, PATIENT, "reminder_sms").reason == "consented"
    with svc.db.session() as s:
        entries = list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    assert [(e.actor, e.action, e.clinic_id) for e in entries] == [
        ("user:7", "consent.opted_out", CLINIC_A),
        ("user:7", "consent.opted_in", CLINIC_A),
    ]
    assert entries[0].subject_hash == subject_hash(PATIENT, svc.settings.subject_salt)
    assert [e["channel"] for e in svc.consent.status(CLINIC_A, PATIENT).events] == [
        "staff",
        "staff",
    ]


def test_status_says_since_when_the_number_is_in_its_state(svc: Services) -> None:
    svc.clock = lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    svc.consent.record_opt_in(CLINIC_A, PATIENT, "sms", "SM" + "1" * 32)
    svc.clock = lambda: datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    svc.consent.record_opt_out(CLINIC_A, PATIENT, "sms", "SM" + "2" * 32)
    svc.clock = lambda: datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
    svc.consent.record_opt_out(CLINIC_A, PATIENT, "voice", "CA" + "3" * 32 + ":opt_out")
    status = svc.consent.status(CLINIC_A, PATIENT).as_json()
    assert status["state"] == "opted_out"
    assert status["since"] == "2026-03-03T09:00:00+00:00"
    assert [e["state"] for e in status["events"]] == ["opted_in", "opted_out", "opted_out"]


def test_console_list_shows_each_numbers_newest_event(svc: Services) -> None:
    svc.consent.record_opt_out(CLINIC_A, PATIENT, "sms", "SM" + "1" * 32)
    svc.consent.record_opt_in(CLINIC_A, PATIENT, "sms", "SM" + "2" * 32)
    svc.consent.record_opt_out(CLINIC_A, PATIENT_2, "sms", "SM" + "3" * 32)
    svc.consent.record_opt_out(CLINIC_B, PATIENT, "sms", "SM" + "4" * 32)
    with svc.db.session() as s:
        latest = ledger.latest_per_number(s, CLINIC_A)
        assert {phone: e.state for phone, e in latest.items()} == {
            PATIENT: "opted_in",
            PATIENT_2: "opted_out",
        }


# --- faults ---------------------------------------------------------------------------


def test_with_redis_stopped_mid_test_the_gate_answers_from_the_database(
    svc: Services, redis_server: Service
) -> None:
    svc.consent.record_opt_out(CLINIC_A, PATIENT, "sms", "SM" + "1" * 32)
    assert svc.gate.may(CLINIC_A, PATIENT, "ai_handling").reason == "opted-out"  # from the cache
    with service_stopped(redis_server):
        assert svc.gate.may(CLINIC_A, PATIENT, "ai_handling").reason == "opted-out"
        assert svc.gate.may(CLINIC_A, PATIENT_2, "ai_handling").reason == "no-objection"
        # An event while Redis is down still counts at once: the database has it.
        assert svc.consent.record_opt_out(CLINIC_A, PATIENT_2, "sms", "SM" + "2" * 32)
        assert svc.gate.may(CLINIC_A, PATIENT_2, "reminder_sms").reason == "opted-out"
    # Redis is back (empty): misses refill from the database.
    assert svc.gate.may(CLINIC_A, PATIENT_2, "reminder_sms").reason == "opted-out"
    assert cache.get(svc.redis, svc.settings.subject_salt, CLINIC_A, PATIENT_2) == "opted_out"


def test_with_redis_and_the_database_down_the_gate_denies_and_logs_without_a_number(
    make_services: Callable[..., Services],
    redis_server: Service,
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = make_services(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none")
    with service_stopped(redis_server), caplog.at_level(logging.ERROR, logger="consent"):
        for action in ACTIONS:
            decision = dead.gate.may(CLINIC_A, PATIENT, action)
            assert (decision.allowed, decision.reason) == (False, "consent-unavailable")
    lines = [r for r in caplog.records if r.name == "consent.gate"]
    assert len(lines) == len(ACTIONS)
    assert lines[0].getMessage() == (
        "consent state unreadable (cache down, database failed): denying"
    )
    assert lines[0].clinic == CLINIC_A  # type: ignore[attr-defined]
    for record in lines:
        text = record.getMessage() + str(record.__dict__)
        assert "7700900123" not in text
