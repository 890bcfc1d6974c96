"""After the `<Dial>`: a person answered, or nobody did and the caller chooses what next."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import func, select
from twilio.twiml.voice_response import VoiceResponse

from callgateway.adapters.clock import fixed
from callgateway.calls import escalation
from callgateway.calls import log as call_log
from callgateway.db.models import Call, WorkItem
from callgateway.wiring import Services
from tests.support.opening_hours import CLOSED, OPEN
from tests.support.settings import BASE_URL
from tests.support.twilio import CLINIC_EU, PATIENT, TwilioSim, sid


def escalated_call(services: Services, twilio: TwilioSim, cli: str = PATIENT) -> str:
    """A call at the Spree practice (no recording) that has been put through to a person."""
    services.clock = fixed(OPEN)
    call_sid = sid("CA")
    twilio.call(call_sid, from_=cli, to=CLINIC_EU)
    with services.db.session() as session:
        call = call_log.find_call(session, call_sid)
    clinic = services.directory.by_id("spree-hausarzt")
    assert call is not None and clinic is not None
    escalation.to_person(services, call, clinic, VoiceResponse(), "asked-for-person")
    return call_sid


def post(twilio: TwilioSim, path: str, call_sid: str, cli: str = PATIENT, **extra: str):  # type: ignore[no-untyped-def]
    params = twilio.voice_params(call_sid, from_=cli, to=CLINIC_EU, CallStatus="in-progress")
    params.update(extra)
    return twilio.post(path, params)


def verbs(body: str) -> list[ET.Element]:
    return list(ET.fromstring(body))


def logged(services: Services, call_sid: str) -> Call:
    with services.db.session() as session:
        call = call_log.find_call(session, call_sid)
    assert call is not None
    return call


def work(services: Services) -> list[tuple[str, str, str | None]]:
    with services.db.session() as session:
        rows = session.scalars(select(WorkItem).order_by(WorkItem.id))
        return [(w.kind, w.status, w.reason) for w in rows]


@pytest.mark.parametrize("status", ["completed", "answered"])
def test_answered_dial_logs_the_call_as_handled_by_a_person(
    services: Services, twilio: TwilioSim, status: str
) -> None:
    call_sid = escalated_call(services, twilio)
    response = post(
        twilio, "/twilio/voice/dial/result", call_sid, DialCallStatus=status, DialCallDuration="42"
    )
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert [v.tag for v in verbs(response.get_data(as_text=True))] == ["Say", "Hangup"]
    call = logged(services, call_sid)
    assert (call.outcome, call.handled_by) == ("human", "human")
    assert work(services) == [("escalation", "done", "asked-for-person")]


@pytest.mark.parametrize("status", ["busy", "no-answer", "failed"])
def test_unanswered_dial_offers_a_callback_then_voicemail(
    services: Services, twilio: TwilioSim, status: str
) -> None:
    call_sid = escalated_call(services, twilio)
    body = post(twilio, "/twilio/voice/dial/result", call_sid, DialCallStatus=status).get_data(
        as_text=True
    )
    found = verbs(body)
    assert [v.tag for v in found] == ["Say", "Gather", "Say", "Record"]
    assert found[0].text == escalation.NOBODY_FREE
    assert found[1].get("action") == f"{BASE_URL}/twilio/voice/voicemail/choice?why={status}"
    record = found[3]
    assert record.get("maxLength") == "120"
    assert record.get("recordingStatusCallback") == (
        BASE_URL + "/twilio/voice/recording/status?kind=voicemail"
    )
    call = logged(services, call_sid)
    assert (call.outcome, call.handled_by) == ("voicemail", "voicemail")
    # Still open: the caller wanted a person and has not got one yet.
    assert work(services) == [("escalation", "open", "asked-for-person")]


def test_pressing_1_requests_a_callback_once_even_when_twilio_retries(
    services: Services, twilio: TwilioSim
) -> None:
    call_sid = escalated_call(services, twilio)
    path = "/twilio/voice/voicemail/choice?why=no-answer"
    first = post(twilio, path, call_sid, Digits="1").get_data(as_text=True)
    second = post(twilio, path, call_sid, Digits="1").get_data(as_text=True)
    assert first == second
    assert [v.tag for v in verbs(first)] == ["Say", "Hangup"]
    assert verbs(first)[0].text == escalation.CALLBACK_BOOKED
    assert work(services) == [
        ("escalation", "done", "asked-for-person"),
        ("callback", "open", "no-answer"),
    ]
    with services.db.session() as session:
        phone = session.scalars(select(WorkItem.phone).where(WorkItem.kind == "callback")).one()
    assert phone == PATIENT
    call = logged(services, call_sid)
    assert (call.outcome, call.handled_by) == ("callback-requested", "none")


@pytest.mark.parametrize("digits", ["", "2", "#"])
def test_any_other_key_at_the_menu_goes_on_to_the_recording(
    services: Services, twilio: TwilioSim, digits: str
) -> None:
    call_sid = escalated_call(services, twilio)
    body = post(
        twilio, "/twilio/voice/voicemail/choice?why=busy", call_sid, Digits=digits
    ).get_data(as_text=True)
    assert [v.tag for v in verbs(body)] == ["Say", "Record"]
    assert work(services) == [("escalation", "open", "asked-for-person")]


def test_an_anonymous_caller_pressing_1_leaves_a_voicemail_instead(
    services: Services, twilio: TwilioSim
) -> None:
    call_sid = escalated_call(services, twilio, cli="Anonymous")
    body = post(
        twilio, "/twilio/voice/voicemail/choice?why=busy", call_sid, "Anonymous", Digits="1"
    ).get_data(as_text=True)
    assert [v.tag for v in verbs(body)] == ["Say", "Record"]
    assert [k for k, _, _ in work(services)] == ["escalation"]


def test_an_unknown_reason_in_the_menu_url_is_not_stored(
    services: Services, twilio: TwilioSim
) -> None:
    call_sid = escalated_call(services, twilio)
    post(twilio, "/twilio/voice/voicemail/choice?why=<script>", call_sid, Digits="1")
    assert ("callback", "open", "unstaffed") in work(services)


def test_voicemail_done_thanks_the_caller_and_hands_the_work_to_the_voicemail(
    services: Services, twilio: TwilioSim
) -> None:
    call_sid = escalated_call(services, twilio)
    body = post(
        twilio,
        "/twilio/voice/voicemail/done",
        call_sid,
        RecordingSid=sid("RE"),
        RecordingDuration="7",
        RecordingUrl="https://api.twilio.com/x",
    ).get_data(as_text=True)
    found = verbs(body)
    assert [v.tag for v in found] == ["Say", "Hangup"]
    assert found[0].text == escalation.VOICEMAIL_THANKS
    assert work(services) == [("escalation", "done", "asked-for-person")]


def test_an_empty_recording_leaves_the_escalation_open(
    services: Services, twilio: TwilioSim
) -> None:
    call_sid = escalated_call(services, twilio)
    post(twilio, "/twilio/voice/voicemail/done", call_sid, RecordingDuration="0")
    assert work(services) == [("escalation", "open", "asked-for-person")]
    # Voicemail was offered, not used: the call log says nobody handled the call.
    call = logged(services, call_sid)
    assert (call.outcome, call.handled_by) == ("no-message", "none")


def test_a_left_voicemail_is_logged_as_handled_by_voicemail(
    services: Services, twilio: TwilioSim
) -> None:
    call_sid = escalated_call(services, twilio)
    post(twilio, "/twilio/voice/dial/result", call_sid, DialCallStatus="no-answer")
    post(
        twilio, "/twilio/voice/voicemail/done", call_sid,
        RecordingSid=sid("RE"), RecordingDuration="12",
    )  # fmt: skip
    call = logged(services, call_sid)
    assert (call.outcome, call.handled_by) == ("voicemail", "voicemail")


def test_a_caller_hanging_up_while_it_rings_is_a_missed_call(
    services: Services, twilio: TwilioSim
) -> None:
    call_sid = escalated_call(services, twilio)
    body = post(twilio, "/twilio/voice/dial/result", call_sid, DialCallStatus="canceled").get_data(
        as_text=True
    )
    assert [v.tag for v in verbs(body)] == ["Hangup"]
    call = logged(services, call_sid)
    assert (call.outcome, call.handled_by) == ("missed", "none")
    assert work(services) == [("escalation", "open", "asked-for-person")]


def test_a_closed_clinic_callback_keeps_why_for_staff(
    services: Services, twilio: TwilioSim
) -> None:
    services.clock = fixed(CLOSED)
    call_sid = sid("CA")
    twilio.call(call_sid, to=CLINIC_EU)
    post(twilio, "/twilio/voice/voicemail/choice?why=closed", call_sid, Digits="1")
    assert work(services) == [("callback", "open", "closed")]


@pytest.mark.parametrize(
    "path",
    ["/twilio/voice/dial/result", "/twilio/voice/voicemail/choice", "/twilio/voice/voicemail/done"],
)
def test_webhooks_for_an_unknown_call_answer_twiml_and_write_nothing(
    services: Services, twilio: TwilioSim, path: str
) -> None:
    response = post(twilio, path, sid("CA"), DialCallStatus="no-answer", Digits="1")
    assert response.status_code == 200
    assert verbs(response.get_data(as_text=True))[-1].tag == "Hangup"
    assert work(services) == []


@pytest.mark.parametrize(
    "path",
    ["/twilio/voice/dial/result", "/twilio/voice/voicemail/choice", "/twilio/voice/voicemail/done"],
)
def test_malformed_call_sid_gets_twiml_not_an_error(twilio: TwilioSim, path: str) -> None:
    response = post(twilio, path, "CA-not-a-sid", DialCallStatus="completed")
    assert response.status_code == 200
    assert verbs(response.get_data(as_text=True))[-1].tag == "Hangup"


def test_an_unsigned_dial_result_is_refused_and_changes_nothing(
    services: Services, twilio: TwilioSim
) -> None:
    call_sid = escalated_call(services, twilio)
    params = twilio.voice_params(call_sid, to=CLINIC_EU, DialCallStatus="completed")
    response = twilio.post("/twilio/voice/dial/result", params, signature="bogus")
    assert response.status_code == 403
    assert logged(services, call_sid).handled_by == "none"
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(WorkItem)) == 1


def claim_escalation(services: Services) -> None:
    with services.db.session() as session:
        session.execute(
            WorkItem.__table__.update()  # type: ignore[attr-defined]
            .where(WorkItem.kind == "escalation")
            .values(status="claimed")
        )


def test_an_answered_dial_closes_the_escalation_even_when_someone_claimed_it(
    services: Services, twilio: TwilioSim
) -> None:
    call_sid = escalated_call(services, twilio)
    claim_escalation(services)
    post(twilio, "/twilio/voice/dial/result", call_sid, DialCallStatus="completed")
    assert work(services) == [("escalation", "done", "asked-for-person")]


def test_a_callback_leaves_a_claimed_escalation_to_the_person_on_it(
    services: Services, twilio: TwilioSim
) -> None:
    call_sid = escalated_call(services, twilio)
    claim_escalation(services)
    post(twilio, "/twilio/voice/voicemail/choice?why=busy", call_sid, Digits="1")
    assert work(services) == [
        ("escalation", "claimed", "asked-for-person"),
        ("callback", "open", "busy"),
    ]
