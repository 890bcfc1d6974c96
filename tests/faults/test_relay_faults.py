"""ConversationRelay when a service fails mid-session: fail closed, to a person.

Redis stopped (the conversation's live state and the consent cache gone) or PostgreSQL
stopped (the agent cannot look up a slot): the session ends with a handoff, and the
`<Connect>` action puts the caller through to the team. Never silence, never the AI without
its state or its gate.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator

import pytest

from callgateway.adapters.clock import fixed
from callgateway.config import Config
from callgateway.wiring import Services
from devtools.services import Service
from tests.support.booking import MONDAY_9AM
from tests.support.faults import app_for
from tests.support.relay import RelayPhone, RelayServer, relay_config, serving_relay
from tests.support.services import service_stopped
from tests.support.twilio import CLINIC_EU, PATIENT, TwilioSim

TEAM_EU = "+493098765432"  # the Spree practice's escalation number (config/example.yaml)


@pytest.fixture
def svc(make_services: Callable[..., Services], pg_url: str, example_config: Config) -> Services:
    services = make_services(pg_url, relay_config(example_config, "spree-hausarzt"))
    services.clock = fixed(MONDAY_9AM)
    return services


@pytest.fixture
def tw(svc: Services) -> TwilioSim:
    return app_for(svc)


@pytest.fixture
def relay(svc: Services) -> Iterator[RelayServer]:
    with serving_relay(svc) as server:
        yield server


def opened(tw: TwilioSim, relay: RelayServer) -> RelayPhone:
    caller = RelayPhone(tw, relay, PATIENT, CLINIC_EU)
    caller.dial()
    assert caller.relay_element is not None
    return caller


def test_redis_stopping_mid_session_ends_it_with_a_handoff_to_a_person(
    tw: TwilioSim, svc: Services, relay: RelayServer, redis_server: Service
) -> None:
    caller = opened(tw, relay).connect()
    assert caller.say("I'd like to book an appointment").end is None
    with service_stopped(redis_server):
        heard = caller.say("a consultation please")
    assert heard.handoff == {"next": "person", "reason": "state-unavailable"}
    body = caller.done(heard.handoff)
    assert [n.text for n in ET.fromstring(body).iter("Number")] == [TEAM_EU]
    caller.close()


def test_a_setup_while_redis_is_down_is_ended_with_a_handoff_and_writes_nothing(
    tw: TwilioSim, svc: Services, relay: RelayServer, redis_server: Service
) -> None:
    caller = opened(tw, relay)
    with service_stopped(redis_server):
        heard = caller.connect().listen()
    assert heard.tokens == []
    assert heard.handoff == {"next": "person", "reason": "state-unavailable"}
    assert not svc.redis.exists(f"relay:{caller.call_sid}")


def test_postgresql_stopping_mid_session_ends_it_with_a_handoff_never_silence(
    tw: TwilioSim, svc: Services, relay: RelayServer, postgres_server: Service
) -> None:
    caller = opened(tw, relay).connect()
    assert caller.say("I'd like to book an appointment").end is None
    with service_stopped(postgres_server):
        heard = caller.say("a consultation next Tuesday afternoon")
    assert heard.text  # an apology, spoken
    assert heard.handoff is not None and heard.handoff["next"] == "person"
    assert "<Dial" in caller.done(heard.handoff)
    caller.close()
