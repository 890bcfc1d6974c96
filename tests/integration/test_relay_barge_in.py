"""Barge-in over ConversationRelay: when the caller speaks over the agent, the reply stops at
once, and the transcript and the conversation keep only what the caller heard (Twilio's
`utteranceUntilInterrupt`), so the next turn reasons about the truth."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest
import redis
from sqlalchemy import select

from callgateway.adapters.clock import fixed
from callgateway.config import Config
from callgateway.db.models import CallTurn
from callgateway.wiring import Services
from tests.support.booking import MONDAY_9AM
from tests.support.relay import RelayPhone, RelayServer, relay_config, serving_relay
from tests.support.twilio import CLINIC_EU, PATIENT, TwilioSim


@pytest.fixture
def svc(make_services: Callable[..., Services], db_url: str, example_config: Config) -> Services:
    services = make_services(db_url, relay_config(example_config, "spree-hausarzt"))
    services.clock = fixed(MONDAY_9AM)
    return services


@pytest.fixture
def relay(svc: Services) -> Iterator[RelayServer]:
    with serving_relay(svc) as server:
        yield server


def agent_lines(svc: Services, call_sid: str) -> list[CallTurn]:
    with svc.db.session() as s:
        query = (
            select(CallTurn)
            .where(CallTurn.call_sid == call_sid, CallTurn.role == "agent")
            .order_by(CallTurn.seq)
        )
        return list(s.scalars(query))


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.05)


def test_an_interruption_keeps_only_what_the_caller_heard_in_transcript_and_conversation(
    tw: TwilioSim, svc: Services, relay: RelayServer
) -> None:
    caller = RelayPhone(tw, relay, PATIENT, CLINIC_EU)
    caller.dial()
    caller.connect()
    offer = caller.say("I'd like to book a consultation next Tuesday afternoon")
    assert len(offer.tokens) > 1, offer.tokens
    # Twilio was still speaking: the caller spoke over the second sentence.
    heard = offer.tokens[0] + offer.tokens[1].split()[0]
    caller.interrupt(heard)
    wait_for(lambda: agent_lines(svc, caller.call_sid)[-1].text == heard.strip())
    line = agent_lines(svc, caller.call_sid)[-1]
    assert line.meta and line.meta.get("interrupted") is True
    assert offer.text not in [t.text for t in agent_lines(svc, caller.call_sid)]
    state = json.loads(svc.redis.get(f"call:{caller.call_sid}"))
    assert state["last_prompt"] == heard.strip()  # a reprompt repeats what they heard
    # The conversation goes on from there.
    assert caller.say("sorry, what was that?").tokens
    caller.close()


def test_an_interruption_while_the_reply_is_on_its_way_stops_it_before_any_token(
    tw: TwilioSim, svc: Services, relay: RelayServer, redis_url: str
) -> None:
    caller = RelayPhone(tw, relay, PATIENT, CLINIC_EU)
    caller.dial()
    caller.connect()
    # Redis holds writes for a moment: the turn is computed but cannot yet be written, so the
    # reply is still on its way when the caller speaks over the agent.
    other = redis.Redis.from_url(redis_url)
    other.execute_command("CLIENT", "PAUSE", "400", "WRITE")
    caller.send({"type": "prompt", "voicePrompt": "I'd like to book an appointment", "last": True})
    time.sleep(0.1)
    caller.interrupt("")
    with pytest.raises(TimeoutError):
        caller.listen(timeout=1.5)  # not one token of the reply was sent
    wait_for(lambda: agent_lines(svc, caller.call_sid)[-1].text == "")
    lines = agent_lines(svc, caller.call_sid)
    assert lines[-1].meta and lines[-1].meta.get("interrupted") is True
    assert [line.text for line in lines[:-1]] == [lines[0].text]  # only the greeting before
    other.close()
    caller.close()


def test_an_interruption_of_the_welcome_greeting_keeps_what_was_heard_of_it(
    tw: TwilioSim, svc: Services, relay: RelayServer
) -> None:
    caller = RelayPhone(tw, relay, PATIENT, CLINIC_EU)
    caller.dial()
    caller.connect()
    caller.interrupt("How can I help you today?")
    wait_for(lambda: agent_lines(svc, caller.call_sid)[0].text == "How can I help you today?")
    assert caller.say("I'd like to book an appointment").tokens
    caller.close()
