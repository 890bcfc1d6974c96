"""A turn happens once: Twilio's retries and concurrent copies of a Gather result answer
the same TwiML and book, text, escalate, opt out and write transcript lines only once.

Real Redis and the database (SQLite and PostgreSQL); Twilio's REST API is `responses`;
concurrent copies are real threads, each with its own test client of one app.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import responses

from callgateway.booking import outbox
from callgateway.calls import engine
from callgateway.db.models import CallTurn, ConsentEvent, WorkItem
from callgateway.wiring import Services
from tests.support.booking import (  # noqa: F401  (the aws, svc and rest fixtures)
    TURN,
    Phone,
    booked,
    fixture_aws,
    fixture_rest,
    fixture_svc,
    rows,
)
from tests.support.settings import BASE_URL
from tests.support.twilio import TwilioSim


def _texts(rest: responses.RequestsMock) -> int:
    return len([c for c in rest.calls if c.request.url.endswith("Messages.json")])


def _transcript(svc: Services, call_sid: str) -> list[tuple[str, str]]:
    return [(t.role, t.text) for t in rows(svc, CallTurn) if t.call_sid == call_sid]


def _offered(tw: TwilioSim) -> Phone:
    phone = Phone(tw)
    phone.dial()
    heard = phone.say("I'd like to book an initial assessment next Tuesday afternoon")
    assert "Tuesday 24 November at midday" in heard
    return phone


def _at_once(tw: TwilioSim, copies: int, post: Callable[[TwilioSim], str]) -> list[str]:
    """`copies` threads, each with its own client, released together."""
    start = threading.Barrier(copies)
    answers: list[str] = [""] * copies

    def one(i: int) -> None:
        own = TwilioSim(tw.client.application.test_client(), tw.base_url, tw.token)
        start.wait()
        answers[i] = post(own)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(copies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def test_each_gather_names_its_turn_in_the_action_url(
    tw: TwilioSim, rest: responses.RequestsMock
) -> None:
    phone = Phone(tw)
    phone.dial()
    assert phone.action == f"{BASE_URL}{TURN}?step=1"
    phone.say("I'd like to book an initial assessment next Tuesday afternoon")
    assert phone.action == f"{BASE_URL}{TURN}?step=2"
    phone.say("")  # silence is a turn too
    assert phone.action == f"{BASE_URL}{TURN}?step=3"


def test_twilio_retrying_the_yes_turn_gets_the_same_twiml_and_books_and_texts_once(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    phone = _offered(tw)
    url, form = phone.turn("yes please")
    first = tw.post(url, form).get_data(as_text=True)
    lines = _transcript(svc, phone.call_sid)
    for _ in range(3):
        again = tw.post(url, form)
        assert again.status_code == 200
        assert again.get_data(as_text=True) == first
    assert "is booked for Tuesday 24 November at midday" in first
    assert len(booked(svc)) == 1
    outbox.sweep(svc)
    assert _texts(rest) == 1
    assert _transcript(svc, phone.call_sid) == lines


def test_ten_concurrent_copies_of_the_yes_turn_book_once_and_all_hear_the_booking(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    phone = _offered(tw)
    url, form = phone.turn("yes")
    answers = _at_once(tw, 10, lambda own: own.post(url, form).get_data(as_text=True))
    assert len(set(answers)) == 1
    assert "is booked for Tuesday 24 November at midday" in answers[0]
    assert len(booked(svc)) == 1
    outbox.sweep(svc)
    assert _texts(rest) == 1
    callers = [text for role, text in _transcript(svc, phone.call_sid) if role == "caller"]
    assert callers.count("yes") == 1


def test_a_replayed_earlier_turn_changes_nothing_later_in_the_call(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    phone = _offered(tw)
    phone.say("yes")
    (appointment,) = booked(svc)
    # The first question's answer, re-posted after the booking: the old answer, no new offer.
    first_url = f"{BASE_URL}{TURN}?step=1"
    first_form = phone.tw.voice_params(
        phone.call_sid,
        CallStatus="in-progress",
        SpeechResult="I'd like to book an initial assessment next Tuesday afternoon",
        Confidence="0.92",
    )
    replay = tw.post(first_url, first_form).get_data(as_text=True)
    assert "Shall I book that?" in replay and 'step=2"' in replay
    assert [a.id for a in booked(svc)] == [appointment.id]


def test_an_opt_out_turn_sent_twice_at_once_records_one_event_and_one_escalation(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    phone = Phone(tw)
    phone.dial()
    url, form = phone.turn("please opt me out")
    answers = _at_once(tw, 5, lambda own: own.post(url, form).get_data(as_text=True))
    assert len(set(answers)) == 1 and "<Dial" in answers[0]
    assert len(rows(svc, ConsentEvent)) == 1
    assert len([w for w in rows(svc, WorkItem) if w.call_sid == phone.call_sid]) == 1


def test_an_unnumbered_turn_retried_by_twilio_is_answered_once(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    """A Gather made before turns were numbered posts to the bare path: a retry of it
    carries the same body, and is answered from the first."""
    phone = _offered(tw)
    form = tw.voice_params(
        phone.call_sid, CallStatus="in-progress", SpeechResult="yes", Confidence="0.9"
    )
    answers = _at_once(tw, 4, lambda own: own.post(TURN, form).get_data(as_text=True))
    assert len(set(answers)) == 1
    assert len(booked(svc)) == 1


def test_a_turn_whose_first_copy_failed_is_run_by_the_retry(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    phone = _offered(tw)
    url, form = phone.turn("yes")
    real = engine.take_turn

    def broken(*_args: object) -> engine.TurnResult:
        raise RuntimeError("the first copy died mid-turn")

    monkeypatch.setattr(engine, "take_turn", broken)
    assert tw.post(url, form).status_code == 200  # the app's own fallback TwiML
    monkeypatch.setattr(engine, "take_turn", real)
    heard = tw.post(url, form).get_data(as_text=True)
    assert "is booked for Tuesday 24 November at midday" in heard
    assert len(booked(svc)) == 1
