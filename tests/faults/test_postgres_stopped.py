"""PostgreSQL stopped: every voice webhook still answers the caller, without the AI.

Consent cannot be read without the database, so the caller is treated as opted out and
nobody is handed to the AI (fail closed): a caller who has not yet tried the team is put
through to it while the clinic is open; when it is closed, or nobody answers, the caller
can leave a voicemail, which is found at Twilio once the database is back. Callbacks and
inbound SMS get a 503 (nothing was stored, nothing is confirmed) so that Twilio's retry
policy redelivers them; once the database is back the redelivered callbacks store exactly
one row each.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import responses
from rq import Queue
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from callgateway.adapters.clock import fixed
from callgateway.calls import fallback
from callgateway.db.models import Call, ConsentEvent, Message, Recording, WorkItem
from callgateway.wiring import Services
from devtools.services import Service
from recordings import lifecycle
from tests.support.booking import MONDAY_9AM, Phone
from tests.support.faults import ESCALATION_UK, app_for, assert_caller_is_served, dialled, heard
from tests.support.services import service_stopped
from tests.support.settings import BASE_URL
from tests.support.twilio import CLINIC_UK, PATIENT, REST_API, TwilioSim, sid

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

        # After the team was tried: a voicemail, never a second ring.
        for path, extra in [
            ("/twilio/voice/dial/result", {"DialCallStatus": "no-answer"}),
            ("/twilio/voice/voicemail/choice?why=no-answer", {"Digits": "1"}),
        ]:
            answer = tw.post(path, tw.voice_params(call_sid, CallStatus="in-progress", **extra))
            body = answer.get_data(as_text=True)
            assert_caller_is_served(answer.status_code, body)
            assert dialled(body) == [] and takes_a_message(body)
        done = tw.post(
            "/twilio/voice/dial/result",
            tw.voice_params(call_sid, CallStatus="in-progress", DialCallStatus="completed"),
        )
        assert heard(done.get_data(as_text=True)) == ["Thank you for calling. Goodbye."]

    failures = [r for r in caplog.records if r.getMessage() == "webhook failed; fallback answer"]
    assert len(failures) == 5 and {r.error for r in failures} == {"OperationalError"}
    assert PATIENT not in caplog.text and PATIENT[-10:] not in caplog.text


def takes_a_message(body: str) -> bool:
    """A voicemail <Record> whose callbacks are the database-free ones."""
    record = ET.fromstring(body).find("Record")
    if record is None:
        return False
    assert record.get("action") == BASE_URL + fallback.AFTER_MESSAGE_PATH
    assert record.get("recordingStatusCallback", "").endswith("/recording/status?kind=voicemail")
    return "leave a message" in " ".join(heard(body))


def booked_looks(svc: Services) -> list[str]:
    return list(ScheduledJobRegistry(queue=Queue("default", connection=svc.redis)).get_job_ids())


def test_the_fallbacks_dial_is_followed_by_a_voicemail_when_nobody_answers(
    svc: Services, tw: TwilioSim, postgres_server: Service
) -> None:
    call_sid = sid("CA")
    with service_stopped(postgres_server):
        ring = tw.call(call_sid).get_data(as_text=True)
        dial = ET.fromstring(ring).find("Dial")
        assert dial is not None and dial.get("action") == BASE_URL + fallback.AFTER_DIAL_PATH
        after = tw.post(
            fallback.AFTER_DIAL_PATH,
            tw.voice_params(call_sid, CallStatus="in-progress", DialCallStatus="no-answer"),
        ).get_data(as_text=True)
        assert takes_a_message(after)
        assert "nobody from the team is free" in " ".join(heard(after))
        talked = tw.post(
            fallback.AFTER_DIAL_PATH,
            tw.voice_params(call_sid, CallStatus="in-progress", DialCallStatus="completed"),
        ).get_data(as_text=True)
        assert heard(talked) == [fallback.GOODBYE] and "<Record" not in talked
        left = tw.post(fallback.AFTER_MESSAGE_PATH, tw.voice_params(call_sid))
        assert heard(left.get_data(as_text=True)) == [fallback.MESSAGE_TAKEN]
    assert booked_looks(svc) == [lifecycle.find_job_id(call_sid)]


def test_a_voicemail_left_while_postgresql_is_down_reaches_the_staff_once_it_is_back(
    svc: Services,
    tw: TwilioSim,
    postgres_server: Service,
    twilio_api: responses.RequestsMock,
) -> None:
    svc.clock = fixed(SUNDAY_NOON)  # closed: no one to put the caller through to
    call_sid, recording_sid = sid("CA"), sid("RE")
    recording = {
        **tw.voice_params(call_sid),
        "RecordingSid": recording_sid,
        "RecordingStatus": "completed",
        "RecordingDuration": "14",
    }
    with service_stopped(postgres_server):
        ring = tw.call(call_sid)
        body = ring.get_data(as_text=True)
        assert_caller_is_served(ring.status_code, body)
        assert dialled(body) == [] and takes_a_message(body)
        # The message's own callback finds the database still down: Twilio gives up.
        path = "/twilio/voice/recording/status?kind=voicemail"
        assert tw.post(path, recording).status_code == 503
    assert booked_looks(svc) == [lifecycle.find_job_id(call_sid)]
    assert rows(svc, Recording) == []

    # The booked look, once the database is back: Twilio's list of the call's recordings.
    twilio_api.get(
        f"{REST_API}/Calls/{call_sid}/Recordings.json",
        json={
            "recordings": [
                {"sid": recording_sid, "call_sid": call_sid, "status": "completed",
                 "source": "RecordVerb", "duration": "14"},
                {"sid": sid("RE"), "call_sid": call_sid, "status": "absent",
                 "source": "RecordVerb", "duration": "0"},
            ]
        },
    )  # fmt: skip
    twilio_api.get(
        f"{REST_API}/Calls/{call_sid}.json",
        json={"sid": call_sid, "to": CLINIC_UK, "from": PATIENT, "status": "completed"},
    )
    desk = svc.recordings
    assert lifecycle.find_call_recordings(desk, call_sid) == 1
    assert lifecycle.find_call_recordings(desk, call_sid) == 0  # a retried job adds nothing
    (rec,) = rows(svc, Recording)
    assert (rec.recording_sid, rec.kind, rec.clinic_id, rec.phone, rec.region) == (
        recording_sid, "voicemail", "riverside-physio", PATIENT, "uk",
    )  # fmt: skip
    (item,) = rows(svc, WorkItem)
    assert (item.kind, item.status, item.clinic_id) == ("voicemail", "open", "riverside-physio")


def test_with_redis_down_too_no_message_is_taken_that_nobody_could_find(
    svc: Services, tw: TwilioSim, postgres_server: Service, redis_server: Service
) -> None:
    svc.clock = fixed(SUNDAY_NOON)
    with service_stopped(postgres_server), service_stopped(redis_server):
        ring = tw.call(sid("CA"))
    body = ring.get_data(as_text=True)
    assert_caller_is_served(ring.status_code, body)
    assert dialled(body) == [] and "<Record" not in body
    assert heard(body) == [fallback.CALL_AGAIN]


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
    assert not svc.gate.may("riverside-physio", PATIENT, "ai_handling")


def test_once_postgresql_is_back_the_next_caller_reaches_the_ai_again(
    svc: Services, tw: TwilioSim, postgres_server: Service
) -> None:
    with service_stopped(postgres_server):
        assert dialled(tw.call(sid("CA")).get_data(as_text=True)) == [ESCALATION_UK]
    phone = Phone(tw, to=CLINIC_UK)
    phone.dial()
    assert phone.listening  # the pool's dead connections were replaced, no restart needed
    assert rows(svc, Call)[0].handled_by == "ai"
