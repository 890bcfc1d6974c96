"""Whole calls over Twilio ConversationRelay (contract §8), on SQLite and PostgreSQL.

The webhooks go through the Flask app, signed like Twilio; the relay is the real ASGI app
under uvicorn on a loopback port, and the test is Twilio's side of the WebSocket (signed
handshake, `setup`, `prompt`, `dtmf`), with real Redis and the real database behind both.
Riverside Physiotherapy (records calls) and the Spree practice (does not) use the relay.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator

import pytest
import responses
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed, InvalidStatus

from callgateway.adapters.clock import fixed
from callgateway.config import Config
from callgateway.db.models import Call, CallTurn, WorkItem
from callgateway.wiring import Services
from tests.support.booking import (  # noqa: F401  (the aws and rest fixtures)
    MONDAY_9AM,
    booked,
    bucketed,
    fixture_aws,
    fixture_rest,
)
from tests.support.relay import (
    RelayPhone,
    RelayServer,
    open_socket,
    relay_config,
    serving_relay,
    setup_message,
)
from tests.support.settings import BASE_URL
from tests.support.twilio import CLINIC_EU, CLINIC_UK, PATIENT, PATIENT_2, TwilioSim, sid

RIVERSIDE_TEAM = "+442079460000"


@pytest.fixture
def svc(
    make_services: Callable[..., Services], db_url: str, example_config: Config, aws: str
) -> Services:
    config = relay_config(
        bucketed(example_config, aws),
        "riverside-physio",
        "spree-hausarzt",
        interruptible="speech",
        tts_provider="ElevenLabs",
        voice="UgBBYS2sOqTuMpoF3BR0",
        transcription_provider="Deepgram",
        languages=["en-GB", "de-DE"],
    )
    services = make_services(db_url, config, aws_endpoint_url=aws)
    services.clock = fixed(MONDAY_9AM)
    return services


@pytest.fixture
def relay(svc: Services) -> Iterator[RelayServer]:
    with serving_relay(svc) as server:
        yield server


def phone(tw: TwilioSim, relay: RelayServer, to: str = CLINIC_UK, from_: str = PATIENT):
    return RelayPhone(tw, relay, from_, to)


def call_row(svc: Services, call_sid: str) -> Call:
    with svc.db.session() as s:
        return s.scalars(select(Call).where(Call.call_sid == call_sid)).one()


def transcript(svc: Services, call_sid: str) -> list[tuple[str, str]]:
    with svc.db.session() as s:
        query = select(CallTurn).where(CallTurn.call_sid == call_sid).order_by(CallTurn.seq)
        return [(r.role, r.text) for r in s.scalars(query)]


def items(svc: Services, call_sid: str) -> list[WorkItem]:
    with svc.db.session() as s:
        return list(s.scalars(select(WorkItem).where(WorkItem.call_sid == call_sid)))


# -- the TwiML that opens the relay ------------------------------------------------------


def test_a_relay_clinic_greets_then_connects_the_caller_to_the_relay_with_its_settings(
    tw: TwilioSim, relay: RelayServer
) -> None:
    caller = phone(tw, relay, to=CLINIC_EU)
    root = ET.fromstring(caller.dial())
    assert [el.tag for el in root] == ["Say", "Connect"]
    assert root[0].text == "Thank you for calling the family practice on the Spree."
    connect = root[1]
    assert connect.get("action") == f"{BASE_URL}/twilio/voice/relay/done"
    [cr] = list(connect)
    assert cr.tag == "ConversationRelay"
    assert cr.get("url") == "wss://gateway.example.test/twilio/relay"
    assert cr.get("language") == "en-GB"
    assert cr.get("interruptible") == "speech"
    assert cr.get("dtmfDetection") == "true"
    assert cr.get("hints") == "Consultation, Health check"
    assert cr.get("ttsProvider") == "ElevenLabs"
    assert cr.get("voice") == "UgBBYS2sOqTuMpoF3BR0"
    assert cr.get("transcriptionProvider") == "Deepgram"
    assert cr.get("welcomeGreeting", "").startswith("How can I help you today?")
    assert [lang.get("code") for lang in cr.iter("Language")] == ["en-GB", "de-DE"]
    # Nothing personal travels in the TwiML: no <Parameter>, no number anywhere in it.
    assert not list(cr.iter("Parameter"))
    assert PATIENT not in caller.twiml and "<Gather" not in caller.twiml


def test_a_recording_relay_clinic_announces_and_starts_recording_before_the_relay_opens(
    tw: TwilioSim, relay: RelayServer, rest: responses.RequestsMock
) -> None:
    caller = phone(tw, relay)
    first = tw.call(caller.call_sid, PATIENT, CLINIC_UK).get_data(as_text=True)
    assert "<Connect" not in first and "<Redirect" in first
    assert first.index("Riverside Physiotherapy") < first.index("Calls are recorded")
    assert not [c for c in rest.calls if c.request.url.endswith("Recordings.json")]
    params = tw.voice_params(caller.call_sid, PATIENT, CLINIC_UK)
    then = tw.post("/twilio/voice/recording/start", params).get_data(as_text=True)
    # Recording was started (REST) by the webhook after the announcement, then the relay.
    assert [c.request.url.rsplit("/", 1)[-1] for c in rest.calls] == ["Recordings.json"]
    assert ET.fromstring(then).find("Connect/ConversationRelay") is not None


def test_a_clinic_without_relay_still_talks_through_gather(
    make_services: Callable[..., Services], sqlite_url: str, example_config: Config
) -> None:
    svc = make_services(sqlite_url, relay_config(example_config, "riverside-physio"))
    from callgateway.app import create_app

    tw = TwilioSim(create_app({"TESTING": True}, services=svc).test_client(), BASE_URL)
    body = tw.call(sid("CA"), PATIENT, CLINIC_EU).get_data(as_text=True)
    assert "<Gather" in body and "<Connect" not in body


def test_an_opted_out_caller_never_reaches_the_relay_and_cannot_open_a_session(
    tw: TwilioSim, svc: Services, relay: RelayServer
) -> None:
    svc.consent.record_opt_out("spree-hausarzt", PATIENT, "sms", sid("SM"))
    caller = phone(tw, relay, to=CLINIC_EU)
    body = caller.dial()
    assert "<Connect" not in body and "<Dial" in body
    assert call_row(svc, caller.call_sid).handled_by != "ai"
    # Twilio never opened a relay for this call; a socket that claims it gets nothing.
    heard = caller.connect().listen()
    assert heard.tokens == [] and heard.handoff == {"next": "person", "reason": "relay-refused"}
    assert not svc.redis.exists(f"relay:{caller.call_sid}")


# -- the handshake and setup ---------------------------------------------------------------


@pytest.mark.parametrize(
    "signature",
    [
        "",  # none
        "bm90IGEgc2lnbmF0dXJl",  # made up
        "sign-with-another-token",
        "sign-another-url",
    ],
)
def test_a_handshake_without_a_valid_signature_for_the_relay_url_is_refused_with_403(
    tw: TwilioSim, svc: Services, relay: RelayServer, signature: str
) -> None:
    from tests.support.twilio import sign

    if signature == "sign-with-another-token":
        signature = sign(relay.signed_url, {}, "another-auth-token-0000000000000")
    elif signature == "sign-another-url":
        signature = sign("wss://evil.example.test/twilio/relay", {})
    caller = phone(tw, relay, to=CLINIC_EU)
    caller.dial()
    before = svc.redis.get(f"call:{caller.call_sid}")
    with pytest.raises(InvalidStatus) as refused:
        open_socket(relay, signature=signature)
    assert refused.value.response.status_code == 403
    assert svc.redis.get(f"call:{caller.call_sid}") == before
    assert not svc.redis.keys("relay:*")


def test_a_setup_for_a_call_the_gateway_did_not_open_is_ended_and_closed(
    svc: Services, relay: RelayServer
) -> None:
    ws = open_socket(relay)
    ws.send(setup_message(sid("CA"), to=CLINIC_EU))
    end = json.loads(ws.recv(timeout=10))
    assert end == {
        "type": "end",
        "handoffData": json.dumps({"next": "person", "reason": "relay-refused"}),
    }
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=10)
    assert not svc.redis.keys("relay:*") and not svc.redis.keys("call:*")


def test_a_replayed_handshake_for_a_call_that_has_its_session_opens_nothing(
    tw: TwilioSim, svc: Services, relay: RelayServer
) -> None:
    caller = phone(tw, relay, to=CLINIC_EU)
    caller.dial()
    caller.connect()
    assert "which kind" in caller.say("I'd like to book an appointment").text.lower()
    state = svc.redis.get(f"call:{caller.call_sid}")
    # The same signed handshake and setup again (a replay, or a second socket).
    replay = open_socket(relay)
    replay.send(setup_message(caller.call_sid, PATIENT, CLINIC_EU))
    end = json.loads(replay.recv(timeout=10))
    assert json.loads(end["handoffData"]) == {"next": "person", "reason": "relay-refused"}
    assert svc.redis.get(f"call:{caller.call_sid}") == state  # the real session is untouched
    assert caller.say("a consultation").tokens  # and goes on
    caller.close()


# -- sessions ------------------------------------------------------------------------------


def test_a_caller_books_over_the_relay_in_sentence_sized_tokens_with_transcript_and_log(
    tw: TwilioSim, svc: Services, relay: RelayServer, rest: responses.RequestsMock
) -> None:
    caller = phone(tw, relay)
    caller.dial()
    caller.connect()
    offer = caller.say("I'd like to book an initial assessment next Tuesday afternoon")
    assert "Tuesday 24 November at midday" in offer.text and offer.end is None
    assert len(offer.tokens) > 1  # a sentence each, not one blob
    assert all(t.rstrip()[-1] in ".?!" for t in offer.tokens)
    done = caller.say("yes please")
    assert "is booked for Tuesday 24 November at midday" in done.text
    [appointment] = booked(svc)
    assert appointment.clinic_id == "riverside-physio"
    caller.close()
    lines = transcript(svc, caller.call_sid)
    assert lines[0][0] == "agent" and lines[0][1].startswith("How can I help you today?")
    assert ("caller", "I'd like to book an initial assessment next Tuesday afternoon") in lines
    assert ("agent", offer.text) in lines and ("agent", done.text) in lines
    row = call_row(svc, caller.call_sid)
    assert (row.handled_by, row.outcome, row.recorded) == ("ai", "booked", True)
    assert row.retention_until is not None
    with svc.db.session() as s:
        kept = s.scalars(select(CallTurn.retention_until).where(CallTurn.call_sid == row.call_sid))
        assert all(k is not None for k in kept)


def test_asking_for_a_person_ends_the_session_and_the_action_puts_them_through(
    tw: TwilioSim, svc: Services, relay: RelayServer, rest: responses.RequestsMock
) -> None:
    caller = phone(tw, relay)
    caller.dial()
    caller.connect()
    heard = caller.say("can I speak to a person please")
    assert heard.handoff == {"next": "person", "reason": "caller-request"}
    assert not svc.redis.exists(f"call:{caller.call_sid}")  # the AI part is over
    body = caller.done(heard.handoff)
    assert [n.text for n in ET.fromstring(body).iter("Number")] == [RIVERSIDE_TEAM]
    [item] = items(svc, caller.call_sid)
    assert (item.kind, item.reason) == ("escalation", "caller-request")
    # Twilio retries the action: the same answer, no second item.
    assert caller.done(heard.handoff) == body and len(items(svc, caller.call_sid)) == 1


def test_dtmf_zero_ends_the_session_with_a_handoff(
    tw: TwilioSim, svc: Services, relay: RelayServer, rest: responses.RequestsMock
) -> None:
    caller = phone(tw, relay)
    caller.dial()
    caller.connect()
    heard = caller.press("0")
    assert heard.tokens == [] and heard.handoff == {"next": "person", "reason": "dtmf-0"}
    assert "<Dial" in caller.done(heard.handoff)


def test_a_dropped_socket_gets_a_person_and_never_a_second_ai_session(
    tw: TwilioSim, svc: Services, relay: RelayServer
) -> None:
    caller = phone(tw, relay, to=CLINIC_EU)
    caller.dial()
    caller.connect()
    caller.say("I'd like to book an appointment")
    caller.close()  # the socket drops; Twilio posts the action with its error
    body = caller.done(None, SessionStatus="failed", ErrorCode="64105")
    assert "<Dial" in body and "<Connect" not in body
    [item] = items(svc, caller.call_sid)
    assert item.reason == "relay-error"
    # The conversation's live state went with it: no session can open for this call again.
    assert not svc.redis.exists(f"call:{caller.call_sid}")
    again = open_socket(relay)
    again.send(setup_message(caller.call_sid, PATIENT, CLINIC_EU))
    assert json.loads(json.loads(again.recv(timeout=10))["handoffData"])["next"] == "person"


def test_the_relay_action_must_be_signed(tw: TwilioSim, svc: Services) -> None:
    params = tw.voice_params(sid("CA"), HandoffData='{"next": "hangup", "reason": "x"}')
    assert tw.post("/twilio/voice/relay/done", params, signature="forged").status_code == 403


def test_a_goodbye_over_the_relay_hangs_up_at_the_action(
    tw: TwilioSim, svc: Services, relay: RelayServer
) -> None:
    caller = phone(tw, relay, to=CLINIC_EU, from_=PATIENT_2)
    caller.dial()
    body = caller.done({"next": "hangup", "reason": "goodbye"})
    assert [el.tag for el in ET.fromstring(body)] == ["Hangup"]


def test_stop_texted_mid_session_ends_the_ai_at_the_next_prompt(
    tw: TwilioSim, svc: Services, relay: RelayServer, rest: responses.RequestsMock
) -> None:
    caller = phone(tw, relay, to=CLINIC_EU)
    caller.dial()
    caller.connect()
    assert caller.say("I'd like to book an appointment").end is None
    assert tw.sms("STOP", from_=PATIENT, to=CLINIC_EU).status_code == 200
    heard = caller.say("a consultation please")
    assert heard.tokens == [] and heard.handoff == {"next": "person", "reason": "opted-out"}
    assert not svc.redis.exists(f"call:{caller.call_sid}")
    assert "<Dial" in caller.done(heard.handoff)


def test_garbage_on_the_socket_is_ignored_and_the_session_goes_on(
    tw: TwilioSim, svc: Services, relay: RelayServer
) -> None:
    caller = phone(tw, relay, to=CLINIC_EU)
    caller.dial()
    caller.connect()
    assert caller.ws is not None
    for junk in ("not json", "[1, 2]", '{"type": "telepathy"}', '{"type": "dtmf", "digit": "12"}'):
        caller.ws.send(junk)
    caller.send({"type": "prompt", "voicePrompt": "I'd like to", "last": False})  # partial
    caller.send({"type": "error", "description": "Invalid message received: text"})
    heard = caller.say("x" * 5000 + " I'd like to book an appointment")
    assert heard.end is None and heard.tokens  # one reply, to the one final prompt
    with svc.db.session() as s:
        said = s.scalars(
            select(CallTurn.text).where(
                CallTurn.call_sid == caller.call_sid, CallTurn.role == "caller"
            )
        ).all()
    assert len(said) == 1 and len(said[0]) <= 1000  # bounded, as on the Gather path
    caller.close()


def test_a_signed_socket_that_never_sends_setup_is_closed(
    svc: Services, relay: RelayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from callgateway.relay import session

    monkeypatch.setattr(session, "SETUP_SECONDS", 0.5)
    ws = open_socket(relay)
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=10)  # closed by the relay, nothing sent
    assert not svc.redis.keys("relay:*")
