"""A call that has ended does nothing more: every webhook of it, re-posted with the same
signed bodies after its status callback said completed, answers a hang-up and starts no
second conversation, booking, text or recording. The recording-start step delivered many
times at once starts one recording.

Real Redis and the database (SQLite and PostgreSQL); Twilio's REST API is `responses`.
"""

from __future__ import annotations

import threading
from typing import Any

import responses
from werkzeug.test import TestResponse

from callgateway.booking import outbox
from callgateway.calls import state as live_state
from callgateway.db.models import Call, CallTurn
from callgateway.wiring import Services
from consent import cache as consent_cache
from tests.support.booking import (  # noqa: F401  (the aws, svc and rest fixtures)
    Phone,
    booked,
    fixture_aws,
    fixture_rest,
    fixture_svc,
    rows,
)
from tests.support.twilio import CLINIC_EU, PATIENT, TwilioSim

HANG_UP = '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup /></Response>'


class Recorder(TwilioSim):
    """Twilio, keeping every webhook it sent so that a test can send them all again."""

    sent: list[tuple[str, dict[str, str]]]

    def post(self, path: str, params: dict[str, str], **kw: Any) -> TestResponse:
        if not hasattr(self, "sent"):
            self.sent = []
        self.sent.append((path, dict(params)))
        return super().post(path, params, **kw)


def _recorder(tw: TwilioSim) -> Recorder:
    return Recorder(tw.client, tw.base_url, tw.token)


def _calls_to(rest: responses.RequestsMock, resource: str) -> int:
    return len([c for c in rest.calls if c.request.url.endswith(resource)])


def _transcript(svc: Services, call_sid: str) -> int:
    return len([t for t in rows(svc, CallTurn) if t.call_sid == call_sid])


def test_a_whole_booked_call_replayed_after_it_ended_does_nothing(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    twilio = _recorder(tw)
    phone = Phone(twilio)
    phone.dial()
    phone.say("I'd like to book an initial assessment next Tuesday afternoon")
    assert "is booked for" in phone.say("yes")
    phone.hang_up()
    outbox.sweep(svc)
    lines = _transcript(svc, phone.call_sid)
    assert (len(booked(svc)), _calls_to(rest, "Recordings.json")) == (1, 1)
    assert _calls_to(rest, "Messages.json") == 1

    for path, form in list(twilio.sent):
        again = tw.post(path, form)
        assert again.status_code == 200
        if path.endswith("/voice/status"):
            continue
        assert again.get_data(as_text=True) == HANG_UP, path
    outbox.sweep(svc)

    assert len(booked(svc)) == 1
    assert _calls_to(rest, "Recordings.json") == 1
    assert _calls_to(rest, "Messages.json") == 1
    assert _transcript(svc, phone.call_sid) == lines
    assert svc.redis.get(live_state.key(phone.call_sid)) is None
    (call,) = rows(svc, Call)
    assert call.status == "completed" and call.outcome == "booked"


def test_an_ai_call_replayed_after_it_ended_opens_no_second_conversation(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    """The clinic that does not record opens the AI from the incoming-call webhook, in one
    Redis script when the caller's consent is cached, the long way when it is not."""
    phone = Phone(tw, to=CLINIC_EU)
    phone.dial()
    assert phone.listening
    url, form = phone.turn("hello")
    tw.post(url, form)
    phone.hang_up()
    lines = _transcript(svc, phone.call_sid)
    incoming = tw.voice_params(phone.call_sid, PATIENT, CLINIC_EU)
    cached = consent_cache.key(svc.settings.subject_salt, "spree-hausarzt", PATIENT)
    assert svc.redis.get(cached) is not None  # the one-trip path
    assert tw.post("/twilio/voice", incoming).get_data(as_text=True) == HANG_UP
    svc.redis.delete(cached)  # the long way
    assert tw.post("/twilio/voice", incoming).get_data(as_text=True) == HANG_UP
    assert tw.post(url, form).get_data(as_text=True) == HANG_UP
    assert svc.redis.get(live_state.key(phone.call_sid)) is None
    assert _transcript(svc, phone.call_sid) == lines


def test_an_ended_call_past_its_redis_mark_is_still_refused_by_its_status(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    twilio = _recorder(tw)
    phone = Phone(twilio)
    phone.dial()
    phone.hang_up()
    svc.redis.flushdb()  # the ended mark and the step answers expired long ago
    for path, form in twilio.sent[:2]:  # the incoming call, the recording start
        assert tw.post(path, form).get_data(as_text=True) == HANG_UP
    assert _calls_to(rest, "Recordings.json") == 1


def test_recording_start_delivered_twenty_times_at_once_starts_one_recording(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    phone = Phone(tw)
    call = tw.call(phone.call_sid).get_data(as_text=True)
    assert "/twilio/voice/recording/start" in call
    form = tw.voice_params(phone.call_sid)
    start = threading.Barrier(20)
    answers: list[str] = [""] * 20

    def one(i: int) -> None:
        own = TwilioSim(tw.client.application.test_client(), tw.base_url, tw.token)
        start.wait()
        answers[i] = own.post("/twilio/voice/recording/start", form).get_data(as_text=True)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _calls_to(rest, "Recordings.json") == 1
    assert len(set(answers)) == 1 and "<Gather" in answers[0]
    (row,) = rows(svc, Call)
    assert row.recorded is True
