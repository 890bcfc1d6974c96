"""Redis stopped: the live call state, the consent cache and the job queue are gone.

The gate answers from the database, so consent is still honoured; a call that cannot keep
its conversation state goes to a person rather than to an AI that would forget every turn;
a recording whose transfer job cannot be queued waits as a `pending` row that the daily job
queues again once Redis is back (once, however often it runs).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import responses
from sqlalchemy import select

from callgateway.adapters.clock import fixed
from callgateway.db.models import Call, ConsentEvent, Recording, WorkItem
from callgateway.wiring import Services
from devtools.services import Service
from recordings import lifecycle
from tests.support.booking import MONDAY_9AM, Phone
from tests.support.faults import ESCALATION_UK, app_for, assert_caller_is_served, dialled
from tests.support.services import service_stopped
from tests.support.twilio import PATIENT, TwilioSim, sid


@pytest.fixture
def svc(services: Services) -> Services:
    services.clock = fixed(MONDAY_9AM)
    return services


@pytest.fixture
def tw(svc: Services) -> TwilioSim:
    return app_for(svc)


def one(svc: Services, model: type, **where: object) -> object:
    with svc.db.session() as s:
        return s.scalars(select(model).filter_by(**where)).one()


def test_a_call_while_redis_is_down_is_put_through_to_a_person_and_logged(
    svc: Services, tw: TwilioSim, redis_server: Service, twilio_api: responses.RequestsMock
) -> None:
    phone = Phone(tw)
    with service_stopped(redis_server):
        heard = phone.dial()
        assert_caller_is_served(200, phone.last)
    # The announcement played, then (no state to hold a conversation) the team.
    assert heard.startswith("Thank you for calling Riverside Physiotherapy. Calls are recorded")
    assert dialled(phone.last) == [ESCALATION_UK] and not phone.listening
    call = one(svc, Call, call_sid=phone.call_sid)
    assert (call.gate_decision, call.outcome, call.recorded) == ("allow", "escalated", True)
    item = one(svc, WorkItem, call_sid=phone.call_sid)
    assert (item.kind, item.reason, item.status) == ("escalation", "state-unavailable", "open")

    # Back: the next caller talks to the AI again, with no restart of the web process.
    again = Phone(tw)
    again.dial()
    assert again.listening


def test_a_conversation_under_way_when_redis_stops_goes_to_a_person_not_silence(
    svc: Services, tw: TwilioSim, redis_server: Service, twilio_api: responses.RequestsMock
) -> None:
    phone = Phone(tw)
    phone.dial()
    phone.say("I'd like to book an initial assessment")
    with service_stopped(redis_server):
        phone.say("next Tuesday afternoon")
        assert_caller_is_served(200, phone.last)
        assert dialled(phone.last) == [ESCALATION_UK]
    item = one(svc, WorkItem, call_sid=phone.call_sid)
    assert item.reason == "state-unavailable"


def test_a_stop_texted_while_redis_is_down_is_recorded_confirmed_once_and_obeyed(
    svc: Services, tw: TwilioSim, redis_server: Service, twilio_api: responses.RequestsMock
) -> None:
    assert svc.gate.may("riverside-physio", PATIENT, "ai_handling")  # cached as 'none' now
    message_sid = sid("SM")
    with service_stopped(redis_server):
        first = tw.sms("STOP", message_sid=message_sid).get_data(as_text=True)
        retry = tw.sms("STOP", message_sid=message_sid).get_data(as_text=True)
        assert "opted out" in first and "<Message" not in retry
        assert not svc.gate.may("riverside-physio", PATIENT, "automated_sms")  # from the database
        phone = Phone(tw)
        phone.dial()
        assert dialled(phone.last) == [ESCALATION_UK]
    # Back (empty): the cache refills from the ledger, never from what it held before.
    assert svc.gate.may("riverside-physio", PATIENT, "ai_handling").reason == "opted-out"
    with svc.db.session() as s:
        assert len(list(s.scalars(select(ConsentEvent)))) == 1


def test_a_recording_whose_job_could_not_be_queued_is_queued_once_when_redis_is_back(
    svc: Services, tw: TwilioSim, redis_server: Service, twilio_api: responses.RequestsMock
) -> None:
    phone = Phone(tw)
    phone.dial()
    recording_sid = sid("RE")
    callback = {
        **tw.voice_params(phone.call_sid),
        "RecordingSid": recording_sid,
        "RecordingStatus": "completed",
        "RecordingDuration": "12",
    }
    with service_stopped(redis_server):
        response = tw.post("/twilio/voice/recording/status?kind=recording", callback)
        # Not queued: Twilio is asked to deliver the callback again.
        assert response.status_code == 503
    rec = one(svc, Recording, recording_sid=recording_sid)
    assert (rec.status, rec.deleted_at_twilio) == ("pending", False)  # Twilio's copy stays
    assert svc.queue is not None and svc.queue.get_job_ids() == []  # restarted empty

    # The daily job (lifecycle.resume_stalled) finds it once it is old enough...
    svc.clock = fixed(MONDAY_9AM + timedelta(minutes=31))
    assert lifecycle.resume_stalled(svc.recordings) == 1
    assert svc.queue.get_job_ids() == [lifecycle.transfer_job_id(rec.id)]
    job = svc.queue.fetch_job(lifecycle.transfer_job_id(rec.id))
    assert job is not None and job.args == (rec.id,)
    # ...and running it again while that job waits adds nothing.
    assert lifecycle.resume_stalled(svc.recordings) == 0
    assert len(svc.queue.get_job_ids()) == 1


def test_a_recording_callback_that_cannot_be_queued_is_503_and_its_redelivery_queues_it(
    svc: Services, tw: TwilioSim, redis_server: Service, twilio_api: responses.RequestsMock
) -> None:
    phone = Phone(tw)
    phone.dial()
    recording_sid = sid("RE")
    callback = {
        **tw.voice_params(phone.call_sid),
        "RecordingSid": recording_sid,
        "RecordingStatus": "completed",
        "RecordingDuration": "12",
    }
    with service_stopped(redis_server):
        first = tw.post("/twilio/voice/recording/status?kind=recording", callback)
    assert first.status_code == 503
    # Twilio's redelivery, Redis back: queued now, without waiting for the daily job.
    again = tw.post("/twilio/voice/recording/status?kind=recording", callback)
    assert (again.status_code, again.get_data()) == (200, b"")
    rec = one(svc, Recording, recording_sid=recording_sid)
    assert svc.queue is not None
    assert svc.queue.get_job_ids() == [lifecycle.transfer_job_id(rec.id)]
    assert tw.post("/twilio/voice/recording/status?kind=recording", callback).status_code == 200
    assert len(svc.queue.get_job_ids()) == 1
