"""Opt-outs as patients write and say them: "STOP." by text, "stop" or "remove me from your
list" by voice, are honoured; "I don't want to opt out" is not an opt-out, and an opt-in is
only ever the bare word. Signed webhooks, real Redis and database.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import responses
from sqlalchemy import select

from callgateway.db.models import ConsentEvent, Message
from callgateway.wiring import Services
from tests.support.booking import (  # noqa: F401  (the aws, svc and rest fixtures)
    Phone,
    fixture_aws,
    fixture_rest,
    fixture_svc,
)
from tests.support.twilio import PATIENT, TwilioSim

CLINIC = "riverside-physio"


def _events(svc: Services) -> list[ConsentEvent]:
    with svc.db.session() as s:
        return list(s.scalars(select(ConsentEvent).order_by(ConsentEvent.id)))


def _replies(tw: TwilioSim, body: str) -> list[str]:
    response = tw.sms(body)
    assert response.status_code == 200
    root = ET.fromstring(response.get_data(as_text=True))
    return [(m.text or "").strip() for m in root.iter("Message")]


@pytest.mark.parametrize("body", ["STOP.", "Stop!", "OPT-OUT", "opt out", "Unsubscribe 🙏"])
def test_an_opt_out_text_with_punctuation_opts_out_and_is_confirmed_once(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock, body: str
) -> None:
    (reply,) = _replies(tw, body)
    assert "Reply START to opt back in" in reply
    (event,) = _events(svc)
    assert (event.state, event.channel) == ("opted_out", "sms")
    assert not svc.gate.may(CLINIC, PATIENT, "automated_sms")
    with svc.db.session() as s:  # not kept as a staff text
        assert [m.body for m in s.scalars(select(Message)) if m.direction == "in"] == []


def test_an_opt_in_with_punctuation_does_not_revive_messages(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    _replies(tw, "STOP")
    assert _replies(tw, "Yes!") == []
    assert [e.state for e in _events(svc)] == ["opted_out"]
    assert not svc.gate.may(CLINIC, PATIENT, "automated_sms")


@pytest.mark.parametrize(
    "said", ["stop", "Stop.", "remove me from your list", "I don't want any more calls"]
)
def test_a_voice_opt_out_in_other_words_is_recorded_and_goes_to_a_person(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock, said: str
) -> None:
    phone = Phone(tw)
    phone.dial()
    heard = phone.say(said)
    assert "I've noted that you don't want automated calls or messages" in heard
    assert phone.dialled_person
    (event,) = _events(svc)
    assert (event.state, event.channel) == ("opted_out", "voice")


@pytest.mark.parametrize(
    "said", ["I don't want to opt out", "please don't remove me from your list"]
)
def test_a_negated_opt_out_by_voice_opts_nobody_out(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock, said: str
) -> None:
    phone = Phone(tw)
    phone.dial()
    heard = phone.say(said)
    assert "I've noted" not in heard
    assert _events(svc) == []
    assert svc.gate.may(CLINIC, PATIENT, "ai_handling")
