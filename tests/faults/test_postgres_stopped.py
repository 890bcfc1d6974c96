"""PostgreSQL stopped: every voice webhook still answers the caller, without the AI.

Consent cannot be read without the database, so nobody is handed to the AI (fail closed):
a caller who has not yet tried the team is put through to it while the clinic is open, and
hears a clear apology otherwise. Callbacks and inbound SMS get a 503 (nothing was stored,
nothing is confirmed) so that Twilio's retry policy redelivers them; once the database is
back the redelivered callbacks store exactly one row each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from callgateway.clock import fixed
from callgateway.db.models import Call, ConsentEvent, Message, Recording
from callgateway.devservices import Service
from callgateway.wiring import Services
from consent.gate import may
from tests.faults.conftest import (
    ESCALATION_UK,
    app_for,
    assert_caller_is_served,
    dialled,
    heard,
)
from tests.integration.test_booking_calls import MONDAY_9AM, Phone
from tests.services import service_stopped
from tests.twilio import CLINIC_UK, PATIENT, TwilioSim, sid

pytestmark = pytest.mark.usefixtures("twilio_api")
SUNDAY_NOON = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)  # riverside-physio is closed


@pytest.fixture
def svc(make_services: Callable[..., Services], pg_url: str) -> Services:
    services = make_services(pg_url)
    services.clock = fixed(MONDAY_9AM)
    return services


@pytest.fixture
def tw(svc: Services) -> TwilioSim:
    return app_for(svc)


def rows(svc: Services, model: type) -> list:
    with svc.db.session() as s:
        return list(s.scalars(select(model)))


def test_every_voice_webhook_answers_the_caller_while_postgresql_is_down(
    svc: Services,
    tw: TwilioSim,
    postgres_server: Service,
    caplog: pytest.LogCaptureFixture,
) -> None:
    phone = Phone(tw)
    phone.dial()
    phone.say("I'd like to book")
    assert phone.listening  # mid-conversation with the AI when the database goes
    call_sid = sid("CA")
    with service_stopped(postgres_server), caplog.at_level(logging.ERROR):
        # A new call: greeting path, no AI, straight to the team.
        ring = tw.call(call_sid)
        assert_caller_is_served(ring.status_code, ring.get_data(as_text=True))
        assert dialled(ring.get_data(as_text=True)) == [ESCALATION_UK]
        assert "<Gather" not in ring.get_data(as_text=True)
        assert "Recording" not in ring.get_data(as_text=True)  # nothing recorded unannounced

        # The call already talking to the AI: the next turn goes to a person, not silence.
        turn = tw.post(
            "/twilio/voice/turn",
            tw.voice_params(phone.call_sid, CallStatus="in-progress", SpeechResult="Tuesday"),
        )
        assert_caller_is_served(turn.status_code, turn.get_data(as_text=True))
        assert dialled(turn.get_data(as_text=True)) == [ESCALATION_UK]

        # After the team was tried: an apology, never a second ring.
        for path, extra in [
            ("/twilio/voice/dial/result", {"DialCallStatus": "no-answer"}),
            ("/twilio/voice/voicemail/choice?why=no-answer", {"Digits": "1"}),
        ]:
            answer = tw.post(path, tw.voice_params(call_sid, CallStatus="in-progress", **extra))
            body = answer.get_data(as_text=True)
            assert_caller_is_served(answer.status_code, body)
            assert dialled(body) == [] and "call again later" in " ".join(heard(body))
        done = tw.post(
            "/twilio/voice/dial/result",
            tw.voice_params(call_sid, CallStatus="in-progress", DialCallStatus="completed"),
        )
        assert heard(done.get_data(as_text=True)) == ["Thank you for calling. Goodbye."]

    failures = [r for r in caplog.records if r.getMessage() == "webhook failed; fallback answer"]
    assert len(failures) == 5 and {r.error for r in failures} == {"OperationalError"}
    assert PATIENT not in caplog.text and PATIENT[-10:] not in caplog.text


def test_a_closed_clinic_caller_hears_an_apology_while_postgresql_is_down(
    svc: Services, tw: TwilioSim, postgres_server: Service
) -> None:
    svc.clock = fixed(SUNDAY_NOON)
    with service_stopped(postgres_server):
        ring = tw.call(sid("CA"))
    body = ring.get_data(as_text=True)
    assert_caller_is_served(ring.status_code, body)
    assert dialled(body) == [] and "<Record" not in body
    assert heard(body) == [
        "Sorry, we are having technical problems and cannot take your call right now. "
        "Please call again later. Goodbye."
    ]


def test_callbacks_get_503_during_the_outage_and_their_redelivery_stores_each_once(
    svc: Services, tw: TwilioSim, postgres_server: Service
) -> None:
    call_sid, recording_sid, message_sid = sid("CA"), sid("RE"), sid("SM")
    status = tw.voice_params(call_sid, CallStatus="completed", CallDuration="42")
    recording = {
        **tw.voice_params(call_sid),
        "RecordingSid": recording_sid,
        "RecordingStatus": "completed",
        "RecordingDuration": "9",
    }
    deliveries = [
        ("/twilio/voice/status", status),
        ("/twilio/voice/recording/status?kind=voicemail", recording),
    ]
    with service_stopped(postgres_server):
        assert tw.call(call_sid).status_code == 200  # the caller was served (see above)
        for path, params in deliveries:
            assert tw.post(path, params).status_code == 503
        stop = tw.sms("STOP", message_sid=message_sid)
        assert stop.status_code == 503
        assert "<Message" not in stop.get_data(as_text=True)  # nothing recorded: no confirmation

    # Back: Twilio redelivers (twice, to be sure); each event lands once.
    for _ in range(2):
        for path, params in deliveries:
            assert tw.post(path, params).status_code == 200
    replies = [tw.sms("STOP", message_sid=message_sid).get_data(as_text=True) for _ in range(2)]
    assert ["<Message>" in r for r in replies] == [True, False]  # confirmed once

    (call,) = rows(svc, Call)
    assert (call.call_sid, call.clinic_id, call.cli) == (call_sid, "riverside-physio", PATIENT)
    assert (call.status, call.duration_seconds) == ("completed", 42)
    (rec,) = rows(svc, Recording)
    assert (rec.recording_sid, rec.status, rec.kind) == (recording_sid, "pending", "voicemail")
    assert len(rows(svc, ConsentEvent)) == 1 and rows(svc, Message) == []
    assert not may(svc, "riverside-physio", PATIENT, "ai_handling")


def test_once_postgresql_is_back_the_next_caller_reaches_the_ai_again(
    svc: Services, tw: TwilioSim, postgres_server: Service
) -> None:
    with service_stopped(postgres_server):
        assert dialled(tw.call(sid("CA")).get_data(as_text=True)) == [ESCALATION_UK]
    phone = Phone(tw, to=CLINIC_UK)
    phone.dial()
    assert phone.listening  # the pool's dead connections were replaced, no restart needed
    assert rows(svc, Call)[0].handled_by == "ai"
