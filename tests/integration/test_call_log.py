"""Every call leaves exactly one complete call-log row, whatever Twilio sends and how often."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from callgateway.db.models import Call
from callgateway.wiring import Services
from tests.support.twilio import CLINIC_UK, PATIENT, TwilioSim, sid


@pytest.fixture
def svc(make_services: Callable[..., Services], db_url: str) -> Services:
    return make_services(db_url)


def calls(svc: Services) -> list[Call]:
    with svc.db.session() as s:
        return list(s.scalars(select(Call)))


def test_incoming_call_greets_and_logs_a_row_with_retention(tw: TwilioSim, svc: Services) -> None:
    call_sid = sid("CA")
    response = tw.call(call_sid)
    body = response.get_data(as_text=True)
    assert "Thank you for calling Riverside Physiotherapy." in body
    (row,) = calls(svc)
    assert row.call_sid == call_sid
    assert row.clinic_id == "riverside-physio"
    assert row.cli == PATIENT
    assert row.called == CLINIC_UK
    assert row.data_category == "call-metadata"
    local_day = row.started_at.astimezone(svc.config.clinics[0].tz).date()
    assert row.retention_until == local_day + timedelta(days=2190)


def test_recording_clinic_plays_announcement_before_anything_else(tw: TwilioSim) -> None:
    body = tw.call(sid("CA")).get_data(as_text=True)
    greeting = body.index("Thank you for calling")
    announcement = body.index("Calls are recorded for quality and training.")
    redirect = body.index("/twilio/voice/recording/start")
    assert greeting < announcement < redirect
    assert "<Record" not in body and "<Start" not in body


@pytest.mark.parametrize("raw", ["Anonymous", "+266696687", "", "Restricted"])
def test_withheld_caller_id_is_logged_as_anonymous(tw: TwilioSim, svc: Services, raw: str) -> None:
    tw.call(sid("CA"), from_=raw)
    assert [c.cli for c in calls(svc)] == ["anonymous"]


def test_unknown_number_gets_a_polite_error_and_a_hang_up(
    tw: TwilioSim, svc: Services, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        body = tw.call(sid("CA"), to="+442079460123").get_data(as_text=True)
    assert "not connected to a clinic" in body
    assert body.rstrip().endswith("<Hangup /></Response>")
    assert any("no clinic claims" in r.getMessage() for r in caplog.records)
    (row,) = calls(svc)
    assert row.clinic_id is None and row.outcome == "unknown-number"


def test_retried_incoming_webhook_answers_the_same_and_adds_no_row(
    tw: TwilioSim, svc: Services
) -> None:
    call_sid = sid("CA")
    first = tw.call(call_sid).get_data(as_text=True)
    second = tw.call(call_sid).get_data(as_text=True)
    assert first == second
    assert len(calls(svc)) == 1


ORDERS = list(
    itertools.permutations(
        [("ringing", None), ("in-progress", None), ("completed", 63), ("completed", 63)]
    )
)


@pytest.mark.parametrize("order", ORDERS[:: max(1, len(ORDERS) // 6)])
def test_status_callbacks_in_any_order_leave_one_complete_row(
    tw: TwilioSim, svc: Services, order: tuple[tuple[str, int | None], ...]
) -> None:
    call_sid = sid("CA")
    tw.call(call_sid)
    for status, duration in order:
        assert tw.status(call_sid, status, duration).status_code == 200
    (row,) = calls(svc)
    assert row.status == "completed"
    assert row.duration_seconds == 63
    assert row.ended_at is not None
    assert row.outcome is not None
    assert row.retention_until is not None


def test_late_ringing_does_not_reopen_a_finished_call(tw: TwilioSim, svc: Services) -> None:
    call_sid = sid("CA")
    tw.call(call_sid)
    tw.status(call_sid, "no-answer", 0)
    tw.status(call_sid, "ringing")
    tw.status(call_sid, "completed", 99)
    (row,) = calls(svc)
    assert (row.status, row.duration_seconds, row.outcome) == ("no-answer", 0, "missed")


def test_status_for_a_call_never_seen_still_leaves_one_row(tw: TwilioSim, svc: Services) -> None:
    call_sid = sid("CA")
    tw.status(call_sid, "completed", 12)
    tw.call(call_sid)  # the incoming webhook arriving late finds the row
    (row,) = calls(svc)
    assert row.status == "completed" and row.clinic_id == "riverside-physio"


def test_malformed_call_sid_gets_valid_twiml_not_an_error(tw: TwilioSim, svc: Services) -> None:
    response = tw.post("/twilio/voice", tw.voice_params("not-a-sid"))
    assert response.status_code == 200
    assert "<Hangup" in response.get_data(as_text=True)
    assert calls(svc) == []
