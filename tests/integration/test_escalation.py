"""Escalation into the call: who gets `<Dial>`ed, how, and when voicemail is offered instead."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import timedelta

import pytest
import responses
from sqlalchemy import select
from twilio.twiml.voice_response import VoiceResponse

from callgateway.adapters.clock import fixed
from callgateway.calls import escalation
from callgateway.calls import log as call_log
from callgateway.config import Config
from callgateway.config.retention import retention_until
from callgateway.db.models import Call, WorkItem
from callgateway.wiring import Services
from consent import ledger
from tests.support.opening_hours import CLOSED, OPEN
from tests.support.settings import BASE_URL
from tests.support.twilio import ACCOUNT_SID, CLINIC_EU, CLINIC_UK, PATIENT, TwilioSim, sid

RECORDINGS_API = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}"


@pytest.fixture
def at_open(services: Services) -> Services:
    services.clock = fixed(OPEN)
    return services


def opt_out(services: Services, clinic_id: str, phone: str = PATIENT) -> None:
    now = services.clock()
    with services.db.session() as session:
        ledger.append(
            session,
            ledger.NewEvent(
                clinic_id,
                phone,
                ledger.OPTED_OUT,
                "sms",
                sid("SM"),
                now,
                (now + timedelta(days=30)).date(),
            ),
        )


def verbs(body: str) -> list[ET.Element]:
    return list(ET.fromstring(body))


def items(services: Services, kind: str | None = None) -> list[WorkItem]:
    with services.db.session() as session:
        stmt = select(WorkItem).order_by(WorkItem.id)
        if kind:
            stmt = stmt.where(WorkItem.kind == kind)
        return list(session.scalars(stmt))


def row(services: Services, call_sid: str) -> Call:
    with services.db.session() as session:
        found = call_log.find_call(session, call_sid)
    assert found is not None
    return found


def reach_the_gate(twilio: TwilioSim, call_sid: str, to: str = CLINIC_UK) -> str:
    """Play the call up to the gate; for a recording clinic, past the announcement."""
    body = twilio.call(call_sid, to=to).get_data(as_text=True)
    if "/twilio/voice/recording/start" not in body:
        return body
    params = twilio.voice_params(call_sid, to=to, CallStatus="in-progress")
    return twilio.post("/twilio/voice/recording/start", params).get_data(as_text=True)


def test_opted_out_caller_is_dialled_through_from_the_clinic_number(
    at_open: Services, twilio: TwilioSim
) -> None:
    opt_out(at_open, "spree-hausarzt")
    call_sid = sid("CA")
    body = reach_the_gate(twilio, call_sid, to=CLINIC_EU)
    say_texts = [v.text for v in verbs(body) if v.tag == "Say"]
    assert say_texts[0] == "Thank you for calling the family practice on the Spree."
    assert escalation.CONNECTING in say_texts
    (dial,) = [v for v in verbs(body) if v.tag == "Dial"]
    assert dial.get("callerId") == CLINIC_EU
    assert dial.get("timeout") == "25"
    assert dial.get("action") == BASE_URL + "/twilio/voice/dial/result"
    assert dial.get("method") == "POST"
    assert [n.text for n in dial] == ["+493098765432"]
    # This clinic does not record: neither the call nor the person's leg.
    assert dial.get("record") is None
    (item,) = items(at_open)
    assert (item.kind, item.reason, item.status, item.phone) == (
        "escalation",
        "opted-out",
        "open",
        PATIENT,
    )
    assert item.clinic_id == "spree-hausarzt"
    clinic = at_open.directory.by_id("spree-hausarzt")
    assert item.retention_until == retention_until(at_open.config, clinic, "call-metadata", OPEN)
    logged = row(at_open, call_sid)
    assert (logged.outcome, logged.gate_decision, logged.gate_reason) == (
        "escalated",
        "deny",
        "opted-out",
    )


def test_recording_clinic_records_the_persons_leg_only_after_the_announcement(
    at_open: Services, twilio: TwilioSim
) -> None:
    opt_out(at_open, "riverside-physio")
    call_sid = sid("CA")
    first = twilio.call(call_sid).get_data(as_text=True)
    assert "<Dial" not in first  # the announcement plays before anything is connected
    with responses.RequestsMock() as api:
        # The call recording could not be started: the Dial leg is recorded instead.
        api.post(f"{RECORDINGS_API}/Calls/{call_sid}/Recordings.json", status=503, json={})
        params = twilio.voice_params(call_sid, CallStatus="in-progress")
        body = twilio.post("/twilio/voice/recording/start", params).get_data(as_text=True)
    (dial,) = [v for v in verbs(body) if v.tag == "Dial"]
    assert dial.get("record") == "record-from-answer-dual"
    assert dial.get("recordingStatusCallback") == (
        BASE_URL + "/twilio/voice/recording/status?kind=recording"
    )
    assert dial.get("callerId") == CLINIC_UK
    assert dial.get("timeout") == "20"


def test_a_call_already_recorded_whole_does_not_record_the_dial_leg_twice(
    at_open: Services, twilio: TwilioSim
) -> None:
    opt_out(at_open, "riverside-physio")
    call_sid = sid("CA")
    twilio.call(call_sid)
    with responses.RequestsMock() as api:
        api.post(
            f"{RECORDINGS_API}/Calls/{call_sid}/Recordings.json",
            status=201,
            json={"sid": sid("RE"), "status": "in-progress"},
        )
        params = twilio.voice_params(call_sid, CallStatus="in-progress")
        body = twilio.post("/twilio/voice/recording/start", params).get_data(as_text=True)
    (dial,) = [v for v in verbs(body) if v.tag == "Dial"]
    assert dial.get("record") is None
    assert row(at_open, call_sid).recorded is True


def call_row(
    services: Services, twilio: TwilioSim, to: str = CLINIC_EU, cli: str = PATIENT
) -> Call:
    call_sid = sid("CA")
    twilio.call(call_sid, from_=cli, to=to)
    return row(services, call_sid)


@pytest.mark.parametrize(
    "reason", ["asked-for-person", "dtmf-0", "agent-error", "not-understood", "voice-opt-out"]
)
def test_every_reason_to_step_aside_dials_the_team_and_keeps_the_reason(
    at_open: Services, twilio: TwilioSim, reason: str
) -> None:
    call = call_row(at_open, twilio)
    clinic = at_open.directory.by_id("spree-hausarzt")
    assert clinic is not None
    resp = VoiceResponse()
    escalation.to_person(at_open, call, clinic, resp, reason)
    (dial,) = [v for v in verbs(str(resp)) if v.tag == "Dial"]
    assert [n.text for n in dial] == clinic.escalation.numbers
    (item,) = items(at_open, "escalation")
    assert item.reason == reason
    assert row(at_open, call.call_sid).handled_by == "none"


def test_escalating_twice_in_one_call_opens_one_item(at_open: Services, twilio: TwilioSim) -> None:
    call = call_row(at_open, twilio)
    clinic = at_open.directory.by_id("spree-hausarzt")
    assert clinic is not None
    escalation.to_person(at_open, call, clinic, VoiceResponse(), "asked-for-person")
    escalation.to_person(at_open, call, clinic, VoiceResponse(), "dtmf-0")
    assert [i.reason for i in items(at_open)] == ["asked-for-person"]


def clinic_config(config: Config, clinic_id: str, **changes: object) -> Config:
    clinics = [c.model_copy(update=changes) if c.id == clinic_id else c for c in config.clinics]
    return config.model_copy(update={"clinics": clinics})


def test_every_escalation_number_rings_and_the_dialled_clinic_number_is_shown(
    make_services: Callable[..., Services], sqlite_url: str, example_config: Config
) -> None:
    spree = example_config.clinics[1]
    escalation_cfg = spree.escalation.model_copy(
        update={"numbers": ["+493098765432", "+493098765433"], "ring_seconds": 30}
    )
    config = clinic_config(
        example_config,
        "spree-hausarzt",
        numbers=[CLINIC_EU, "+493012345679"],
        escalation=escalation_cfg,
    )
    svc = make_services(sqlite_url, config=config)
    svc.clock = fixed(OPEN)
    clinic = svc.directory.by_id("spree-hausarzt")
    assert clinic is not None
    call = Call(call_sid=sid("CA"), cli=PATIENT, called="+493012345679", recorded=False)
    resp = VoiceResponse()
    escalation.to_person(svc, call, clinic, resp, "asked-for-person")
    (dial,) = [v for v in verbs(str(resp)) if v.tag == "Dial"]
    assert dial.get("callerId") == "+493012345679"
    assert dial.get("timeout") == "30"
    assert [n.text for n in dial] == ["+493098765432", "+493098765433"]


def test_closed_clinic_offers_a_callback_then_voicemail_and_rings_nobody(
    services: Services, twilio: TwilioSim
) -> None:
    services.clock = fixed(CLOSED)
    call = call_row(services, twilio)
    clinic = services.directory.by_id("spree-hausarzt")
    assert clinic is not None
    resp = VoiceResponse()
    escalation.to_person(services, call, clinic, resp, "asked-for-person")
    found = verbs(str(resp))
    assert [v.tag for v in found] == ["Say", "Gather", "Say", "Record"]
    assert found[0].text == escalation.CLOSED
    gather = found[1]
    assert (gather.get("input"), gather.get("numDigits")) == ("dtmf", "1")
    assert gather.get("action") == BASE_URL + "/twilio/voice/voicemail/choice?why=closed"
    assert gather[0].text == escalation.OFFER_CALLBACK
    record = found[3]
    assert record.get("maxLength") == str(clinic.voicemail_max_seconds)
    assert record.get("action") == BASE_URL + "/twilio/voice/voicemail/done"
    assert record.get("recordingStatusCallback") == (
        BASE_URL + "/twilio/voice/recording/status?kind=voicemail"
    )
    assert items(services) == []
    logged = row(services, call.call_sid)
    assert (logged.outcome, logged.handled_by) == ("voicemail", "voicemail")


def test_clinic_without_escalation_numbers_goes_to_voicemail_while_open(
    make_services: Callable[..., Services], sqlite_url: str, example_config: Config
) -> None:
    spree = example_config.clinics[1]
    config = clinic_config(
        example_config,
        "spree-hausarzt",
        escalation=spree.escalation.model_copy(update={"numbers": []}),
        voicemail_max_seconds=60,
    )
    svc = make_services(sqlite_url, config=config)
    svc.clock = fixed(OPEN)
    clinic = svc.directory.by_id("spree-hausarzt")
    assert clinic is not None
    call = Call(call_sid=sid("CA"), cli=PATIENT, called=CLINIC_EU, recorded=False)
    resp = VoiceResponse()
    escalation.to_person(svc, call, clinic, resp, "asked-for-person")
    found = verbs(str(resp))
    assert "Dial" not in [v.tag for v in found]
    assert escalation.CLOSED not in [v.text for v in found]
    assert found[0].get("action", "").endswith("/voicemail/choice?why=unstaffed")
    assert found[-1].get("maxLength") == "60"


def test_anonymous_caller_is_asked_for_a_number_and_offered_no_callback(
    services: Services, twilio: TwilioSim
) -> None:
    services.clock = fixed(CLOSED)
    call = call_row(services, twilio, cli="Anonymous")
    clinic = services.directory.by_id("spree-hausarzt")
    assert clinic is not None
    resp = VoiceResponse()
    escalation.voicemail(services, call, clinic, resp)
    found = verbs(str(resp))
    assert [v.tag for v in found] == ["Say", "Record"]
    assert found[0].text == escalation.VOICEMAIL_ANONYMOUS
