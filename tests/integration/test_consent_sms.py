"""Inbound SMS keywords (CONTRACT §4) through the signed /twilio/sms webhook, on SQLite and
PostgreSQL with real Redis: what the patient gets back, and what the ledger holds."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from sqlalchemy import select

from callgateway.adapters.clock import fixed
from callgateway.app import create_app
from callgateway.config import parse_config
from callgateway.db.models import ConsentEvent, Message
from callgateway.wiring import Services
from devtools.services import free_port
from tests.support.settings import BASE_URL, EXAMPLE_CONFIG
from tests.support.twilio import CLINIC_EU, CLINIC_UK, PATIENT, PATIENT_2, TwilioSim, sid

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # a Wednesday morning
OPT_OUT = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"]
OPT_IN = ["START", "YES", "UNSTOP"]
HELP = ["HELP", "INFO"]


@pytest.fixture
def svc(make_services: Callable[..., Services], db_url: str) -> Services:
    services = make_services(db_url)
    services.clock = fixed(NOW)
    return services


def sim(services: Services) -> TwilioSim:
    return TwilioSim(create_app({"TESTING": True}, services=services).test_client(), BASE_URL)


@pytest.fixture
def tw(svc: Services) -> TwilioSim:
    return sim(svc)


def replies(response: object) -> list[str]:
    """The <Message> bodies of a TwiML answer (each one is an SMS Twilio sends)."""
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert response.mimetype == "text/xml"  # type: ignore[attr-defined]
    root = ET.fromstring(response.get_data(as_text=True))  # type: ignore[attr-defined]
    assert root.tag == "Response"
    return [(m.text or "").strip() for m in root.iter("Message")]


def events(services: Services, phone: str = PATIENT) -> list[ConsentEvent]:
    with services.db.session() as s:
        return list(
            s.scalars(select(ConsentEvent).where(ConsentEvent.phone == phone).order_by("id"))
        )


def messages(services: Services) -> list[Message]:
    with services.db.session() as s:
        return list(s.scalars(select(Message).order_by(Message.id)))


@pytest.mark.parametrize("word", OPT_OUT)
def test_every_opt_out_word_records_an_event_and_confirms_once(
    tw: TwilioSim, svc: Services, word: str
) -> None:
    message_sid = sid("SM")
    (reply,) = replies(tw.sms(f" {word.lower()}\n", message_sid=message_sid))
    assert "Riverside Physiotherapy" in reply
    assert "Reply START to opt back in" in reply
    (event,) = events(svc)
    assert (event.clinic_id, event.state, event.channel) == ("riverside-physio", "opted_out", "sms")
    assert event.source_id == message_sid
    assert event.created_at == NOW
    assert event.data_category == "consent"
    assert event.retention_until == NOW.date() + timedelta(days=2190)
    assert not svc.gate.may("riverside-physio", PATIENT, "automated_sms")
    assert messages(svc) == []  # a keyword is consent, not a message for staff


@pytest.mark.parametrize("word", OPT_IN)
def test_every_opt_in_word_restores_consent_and_confirms(
    tw: TwilioSim, svc: Services, word: str
) -> None:
    replies(tw.sms("STOP"))
    (reply,) = replies(tw.sms(word.title()))
    assert "Riverside Physiotherapy" in reply and "Reply STOP to opt out" in reply
    assert [e.state for e in events(svc)] == ["opted_out", "opted_in"]
    decision = svc.gate.may("riverside-physio", PATIENT, "reminder_sms")
    assert decision.allowed and decision.reason == "consented"


@pytest.mark.parametrize("word", HELP)
def test_help_words_get_the_clinic_name_and_how_to_opt_out(
    tw: TwilioSim, svc: Services, word: str
) -> None:
    (reply,) = replies(tw.sms(word.lower()))
    assert "Riverside Physiotherapy" in reply
    assert "Reply STOP to opt out" in reply
    assert events(svc) == []
    (row,) = messages(svc)
    assert (row.kind, row.handled) == ("help", True)  # nothing for staff to do


def test_stop_reply_is_sent_once_when_twilio_retries(tw: TwilioSim, svc: Services) -> None:
    message_sid = sid("SM")
    assert len(replies(tw.sms("STOP", message_sid=message_sid))) == 1
    assert replies(tw.sms("STOP", message_sid=message_sid)) == []
    assert replies(tw.sms("STOP", message_sid=message_sid)) == []
    assert len(events(svc)) == 1


def test_retried_start_and_help_are_answered_once(tw: TwilioSim, svc: Services) -> None:
    start, help_ = sid("SM"), sid("SM")
    assert len(replies(tw.sms("START", message_sid=start))) == 1
    assert replies(tw.sms("START", message_sid=start)) == []
    assert len(replies(tw.sms("HELP", message_sid=help_))) == 1
    assert replies(tw.sms("HELP", message_sid=help_)) == []
    assert len(events(svc)) == 1 and len(messages(svc)) == 1


def test_a_second_stop_with_its_own_sid_is_a_second_event_and_confirmation(
    tw: TwilioSim, svc: Services
) -> None:
    assert len(replies(tw.sms("STOP"))) == 1
    assert len(replies(tw.sms("stop"))) == 1
    assert [e.state for e in events(svc)] == ["opted_out", "opted_out"]


def test_start_when_already_opted_in_is_recorded_and_confirmed(
    tw: TwilioSim, svc: Services
) -> None:
    assert len(replies(tw.sms("START"))) == 1
    assert len(replies(tw.sms("START"))) == 1
    assert [e.state for e in events(svc)] == ["opted_in", "opted_in"]


def test_twilio_opt_out_replies_mean_no_reply_from_us_but_the_event_is_kept(
    make_services: Callable[..., Services], db_url: str
) -> None:
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data["clinics"][0]["sms"] = {"twilio_opt_out_replies": True}
    services = make_services(db_url, config=parse_config(data))
    tw = sim(services)
    assert replies(tw.sms("STOP")) == []
    assert replies(tw.sms("HELP")) == []
    assert [e.state for e in events(services)] == ["opted_out"]
    assert not services.gate.may("riverside-physio", PATIENT, "ai_handling")
    assert replies(tw.sms("START")) == []
    assert [e.state for e in events(services)] == ["opted_out", "opted_in"]


@pytest.mark.parametrize(
    # "Stop." is an opt-out (issue 16: punctuation around a keyword is how people write it).
    "body",
    ["STOP please", "Can I move my appointment?", "\u0421\u0422\u041e\u0420"],
)
def test_other_text_is_kept_for_staff_without_a_reply(
    tw: TwilioSim, svc: Services, body: str
) -> None:
    message_sid = sid("SM")
    assert replies(tw.sms(body, message_sid=message_sid)) == []
    assert replies(tw.sms(body, message_sid=message_sid)) == []  # retried: still one row
    (row,) = messages(svc)
    assert (row.message_sid, row.body, row.kind, row.handled) == (message_sid, body, "text", False)
    assert (row.clinic_id, row.phone, row.direction) == ("riverside-physio", PATIENT, "in")
    assert row.data_category == "message"
    assert row.retention_until == NOW.date() + timedelta(days=365)
    assert events(svc) == []
    assert svc.gate.may("riverside-physio", PATIENT, "automated_sms").reason == "no-objection"


@pytest.mark.parametrize("sender", ["Anonymous", "", "+266696687", "12345", "not-a-number"])
def test_sms_from_a_withheld_or_unusable_number_stores_nothing(
    tw: TwilioSim, svc: Services, sender: str
) -> None:
    assert replies(tw.sms("STOP", from_=sender)) == []
    assert replies(tw.sms("hello, my name is Jo", from_=sender)) == []
    assert messages(svc) == [] and events(svc, sender) == []


def test_sms_to_a_number_no_clinic_claims_stores_nothing(tw: TwilioSim, svc: Services) -> None:
    assert replies(tw.sms("STOP", to="+442079460123")) == []
    assert replies(tw.sms("hello", to="+442079460123")) == []
    assert messages(svc) == [] and events(svc) == []


def test_stop_at_one_clinic_does_not_opt_out_at_another(tw: TwilioSim, svc: Services) -> None:
    replies(tw.sms("STOP", to=CLINIC_UK))
    assert not svc.gate.may("riverside-physio", PATIENT, "ai_handling")
    at_b = svc.gate.may("spree-hausarzt", PATIENT, "ai_handling")
    assert at_b.allowed and at_b.state == "none"
    (reply,) = replies(tw.sms("HELP", to=CLINIC_EU))
    assert "Hausarztpraxis an der Spree" in reply
    assert svc.gate.may("riverside-physio", PATIENT_2, "reminder_call").allowed


def test_stop_counts_for_the_very_next_webhook_even_with_a_warm_cache(
    tw: TwilioSim, svc: Services
) -> None:
    assert svc.gate.may("riverside-physio", PATIENT, "ai_handling").allowed  # cache now warm
    replies(tw.sms("STOP"))
    assert svc.gate.may("riverside-physio", PATIENT, "ai_handling").reason == "opted-out"
    replies(tw.sms("START"))
    assert svc.gate.may("riverside-physio", PATIENT, "ai_handling").allowed


def test_an_mms_stop_is_a_stop(tw: TwilioSim, svc: Services) -> None:
    message_sid = sid("MM")
    params = {
        "AccountSid": "AC" + "0" * 32,
        "MessageSid": message_sid,
        "From": PATIENT,
        "To": CLINIC_UK,
        "Body": "Stop",
        "NumMedia": "1",
    }
    assert len(replies(tw.post("/twilio/sms", params))) == 1
    assert [e.source_id for e in events(svc)] == [message_sid]


def test_malformed_message_sid_gets_empty_twiml_and_stores_nothing(
    tw: TwilioSim, svc: Services
) -> None:
    params = {"MessageSid": "nope", "From": PATIENT, "To": CLINIC_UK, "Body": "STOP"}
    assert replies(tw.post("/twilio/sms", params)) == []
    assert events(svc) == [] and messages(svc) == []


def test_database_down_confirms_nothing_and_answers_503_not_500(
    make_services: Callable[..., Services],
) -> None:
    services = make_services(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none")
    response = sim(services).sms("STOP")
    assert response.status_code == 503
    assert ET.fromstring(response.get_data(as_text=True)).findall("Message") == []
