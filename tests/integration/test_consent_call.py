"""An opted-out caller never reaches the AI: greeting, the recording announcement when the
clinic records, then a person (<Dial> to the escalation numbers) or, when the clinic is
closed, voicemail. The gate's decision and reason are in the call log."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import responses
from sqlalchemy import select, text

from callgateway.adapters.clock import fixed
from callgateway.app import create_app
from callgateway.config.settings import DEV_ACCOUNT_SID
from callgateway.db.models import Call
from callgateway.wiring import Services
from consent import cache as consent_cache
from tests.support.settings import BASE_URL
from tests.support.twilio import CLINIC_EU, PATIENT, PATIENT_2, TwilioSim, sid

OPEN = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # Wednesday 10:00 in London
CLOSED = datetime(2026, 3, 8, 10, 0, tzinfo=UTC)  # Sunday
RECORDINGS = "https://api.twilio.com/2010-04-01/Accounts/{account}/Calls/{call}/Recordings.json"


@pytest.fixture
def svc(make_services: Callable[..., Services], db_url: str) -> Services:
    services = make_services(db_url)
    services.clock = fixed(OPEN)
    return services


@pytest.fixture
def twilio_rest() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def call_row(services: Services, call_sid: str) -> Call:
    with services.db.session() as s:
        return s.scalars(select(Call).where(Call.call_sid == call_sid)).one()


def answer_after_announcement(
    tw: TwilioSim, rest: responses.RequestsMock, call_sid: str, caller: str = PATIENT
) -> tuple[str, str]:
    """Play the UK clinic's first answer and the webhook its <Redirect> leads to."""
    rest.post(
        RECORDINGS.format(account=DEV_ACCOUNT_SID, call=call_sid),
        json={"sid": sid("RE"), "status": "in-progress"},
        status=201,
    )
    first = tw.call(call_sid, from_=caller).get_data(as_text=True)
    redirect = ET.fromstring(first).find("Redirect")
    assert redirect is not None and redirect.text == f"{BASE_URL}/twilio/voice/recording/start"
    then = tw.post(redirect.text, tw.voice_params(call_sid, from_=caller, CallStatus="in-progress"))
    return first, then.get_data(as_text=True)


def gathers_speech(twiml: str) -> bool:
    return any("speech" in (g.get("input") or "") for g in ET.fromstring(twiml).iter("Gather"))


def test_opted_out_caller_hears_greeting_and_announcement_then_is_put_through_to_a_person(
    tw: TwilioSim, svc: Services, twilio_rest: responses.RequestsMock
) -> None:
    svc.consent.record_opt_out("riverside-physio", PATIENT, "sms", sid("SM"))
    call_sid = sid("CA")
    first, then = answer_after_announcement(tw, twilio_rest, call_sid)
    assert first.index("Thank you for calling Riverside") < first.index("Calls are recorded")
    dial = ET.fromstring(then).find("Dial")
    assert dial is not None
    assert [n.text for n in dial.iter("Number")] == ["+442079460000"]
    assert not gathers_speech(then)
    row = call_row(svc, call_sid)
    assert (row.gate_decision, row.gate_reason) == ("deny", "opted-out")
    assert row.handled_by != "ai"


def test_opted_out_caller_when_the_clinic_is_closed_gets_voicemail_not_the_ai(
    tw: TwilioSim, svc: Services, twilio_rest: responses.RequestsMock
) -> None:
    svc.clock = fixed(CLOSED)
    svc.consent.record_opt_out("riverside-physio", PATIENT, "voice", sid("CA") + ":opt_out")
    call_sid = sid("CA")
    _, then = answer_after_announcement(tw, twilio_rest, call_sid)
    root = ET.fromstring(then)
    assert root.find("Dial") is None
    assert root.find("Record") is not None
    assert "closed" in then
    assert not gathers_speech(then)
    row = call_row(svc, call_sid)
    assert (row.gate_decision, row.gate_reason, row.handled_by) == (
        "deny",
        "opted-out",
        "voicemail",
    )


def test_opted_out_caller_at_a_clinic_without_recording_is_dialled_straight_away(
    tw: TwilioSim, svc: Services
) -> None:
    svc.clock = fixed(datetime(2026, 3, 4, 9, 0, tzinfo=UTC))  # 10:00 in Berlin
    tw.sms("STOP", to=CLINIC_EU)
    call_sid = sid("CA")
    body = tw.call(call_sid, to=CLINIC_EU).get_data(as_text=True)
    assert "family practice on the Spree" in body
    dial = ET.fromstring(body).find("Dial")
    assert dial is not None and [n.text for n in dial.iter("Number")] == ["+493098765432"]
    assert (call_row(svc, call_sid).gate_reason) == "opted-out"


def test_a_stop_at_another_clinic_leaves_this_clinics_call_to_the_ai(
    tw: TwilioSim, svc: Services, twilio_rest: responses.RequestsMock
) -> None:
    tw.sms("STOP", to=CLINIC_EU)
    call_sid = sid("CA")
    answer_after_announcement(tw, twilio_rest, call_sid)
    row = call_row(svc, call_sid)
    assert (row.gate_decision, row.gate_reason) == ("allow", "no-objection")


def test_start_gives_the_caller_back_to_the_ai(
    tw: TwilioSim, svc: Services, twilio_rest: responses.RequestsMock
) -> None:
    tw.sms("STOP", from_=PATIENT_2)
    tw.sms("START", from_=PATIENT_2)
    call_sid = sid("CA")
    _, then = answer_after_announcement(tw, twilio_rest, call_sid, caller=PATIENT_2)
    assert ET.fromstring(then).find("Dial") is None
    row = call_row(svc, call_sid)
    assert (row.gate_decision, row.gate_reason) == ("allow", "consented")


def test_an_unreadable_ledger_sends_the_caller_to_a_person_not_the_ai(
    make_services: Callable[..., Services], sqlite_url: str
) -> None:
    services = make_services(sqlite_url)
    services.clock = fixed(datetime(2026, 3, 4, 9, 0, tzinfo=UTC))
    with services.db.session() as s:  # the ledger breaks; the rest of the database works
        s.execute(text("ALTER TABLE consent_events RENAME TO consent_events_gone"))
    tw = TwilioSim(create_app({"TESTING": True}, services=services).test_client(), BASE_URL)
    call_sid = sid("CA")
    body = tw.call(call_sid, to=CLINIC_EU).get_data(as_text=True)
    assert ET.fromstring(body).find("Dial") is not None
    row = call_row(services, call_sid)
    assert (row.gate_decision, row.gate_reason) == ("deny", "consent-unavailable")


# The AI path at a clinic that does not record decides from the consent cache in the same
# Redis call that opens the conversation; a caller the cache has never seen is read from
# the ledger and then cached. Both must log the same decision.


def _berlin_open(svc: Services) -> None:
    svc.clock = fixed(datetime(2026, 3, 4, 9, 0, tzinfo=UTC))  # 10:00 in Berlin


@pytest.mark.parametrize("cached", [True, False], ids=["cached", "uncached"])
def test_an_opted_in_caller_reaches_the_ai_with_the_reason_logged_cached_or_not(
    tw: TwilioSim, svc: Services, cached: bool
) -> None:
    _berlin_open(svc)
    tw.sms("STOP", to=CLINIC_EU, from_=PATIENT_2)
    tw.sms("START", to=CLINIC_EU, from_=PATIENT_2)
    if not cached:
        assert svc.gate.forget("spree-hausarzt", PATIENT_2)
    call_sid = sid("CA")
    body = tw.call(call_sid, to=CLINIC_EU, from_=PATIENT_2).get_data(as_text=True)
    assert gathers_speech(body) and ET.fromstring(body).find("Dial") is None
    row = call_row(svc, call_sid)
    assert (row.gate_decision, row.gate_reason, row.handled_by) == ("allow", "consented", "ai")
    assert (
        consent_cache.get(svc.redis, svc.settings.subject_salt, "spree-hausarzt", PATIENT_2)
        == "opted_in"
    )


def test_an_uncached_opted_out_caller_is_read_from_the_ledger_and_put_through(
    tw: TwilioSim, svc: Services
) -> None:
    _berlin_open(svc)
    tw.sms("STOP", to=CLINIC_EU)
    assert svc.gate.forget("spree-hausarzt", PATIENT)
    call_sid = sid("CA")
    body = tw.call(call_sid, to=CLINIC_EU).get_data(as_text=True)
    assert ET.fromstring(body).find("Dial") is not None and not gathers_speech(body)
    assert call_row(svc, call_sid).gate_reason == "opted-out"
    # Cached now: the next call is decided without the ledger, the same way.
    assert (
        consent_cache.get(svc.redis, svc.settings.subject_salt, "spree-hausarzt", PATIENT)
        == "opted_out"
    )


@pytest.mark.parametrize("cached", [True, False], ids=["cached", "uncached"])
def test_a_stop_between_turns_sends_the_next_turn_to_a_person_cached_or_not(
    tw: TwilioSim, svc: Services, cached: bool
) -> None:
    # Each turn reads the caller's consent with the live state, in one Redis round trip;
    # a miss goes to the ledger. Either way the STOP wins on the very next turn.
    _berlin_open(svc)
    call_sid = sid("CA")
    assert gathers_speech(tw.call(call_sid, to=CLINIC_EU).get_data(as_text=True))
    tw.sms("STOP", to=CLINIC_EU)
    if not cached:
        assert svc.gate.forget("spree-hausarzt", PATIENT)
    turn = tw.voice_params(call_sid, to=CLINIC_EU, SpeechResult="I'd like to book")
    body = tw.post("/twilio/voice/turn", turn).get_data(as_text=True)
    assert ET.fromstring(body).find("Dial") is not None and not gathers_speech(body)
