"""`callgateway call`'s terminal phone plays Twilio's side of ConversationRelay: the webhooks
(through the Flask app), then a signed WebSocket to the relay under a real uvicorn, `setup`,
a prompt per line, `!` to interrupt, digits as `dtmf`, and the `<Connect>` action after
`end`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import requests
from sqlalchemy import select

from callgateway.adapters.clock import fixed
from callgateway.cli.terminal_phone import Call, PhoneError, Webhook
from callgateway.config import Config
from callgateway.db.models import CallTurn, WorkItem
from callgateway.wiring import Services
from devtools.services import free_port
from tests.support.booking import MONDAY_9AM
from tests.support.relay import RelayServer, relay_config, serving_relay
from tests.support.settings import BASE_URL
from tests.support.twilio import ACCOUNT_SID, CLINIC_EU, PATIENT, TOKEN, TwilioSim


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def svc(
    make_services: Callable[..., Services], sqlite_url: str, example_config: Config, port: int
) -> Services:
    # The relay's public URL is its loopback address here: the phone connects where the
    # TwiML says, as Twilio does.
    services = make_services(
        sqlite_url,
        relay_config(example_config, "spree-hausarzt"),
        relay_public_url=f"ws://127.0.0.1:{port}",
    )
    services.clock = fixed(MONDAY_9AM)
    return services


@pytest.fixture
def relay(svc: Services, port: int) -> Iterator[RelayServer]:
    with serving_relay(svc, port=port) as server:
        yield server


@dataclass
class InProcess(Webhook):
    """The terminal phone's webhooks into the Flask app, signed by TwilioSim."""

    tw: TwilioSim | None = None

    def post(self, url: str, params: dict[str, str]) -> requests.Response:
        assert self.tw is not None
        answer = self.tw.post(url.removeprefix(BASE_URL), params)
        if answer.status_code >= 400:
            raise PhoneError(f"the gateway answered {answer.status_code} to {url}")
        response = requests.Response()
        response.status_code = answer.status_code
        response._content = answer.get_data()
        return response


def call(tw: TwilioSim, lines: list[str], token: str = TOKEN) -> tuple[Call, list[str]]:
    heard: list[str] = []
    feed = iter(lines)
    phone = Call(
        hook=InProcess(BASE_URL, token, tw=tw),
        to=CLINIC_EU,
        from_=PATIENT,
        account_sid=ACCOUNT_SID,
        read=lambda: next(feed, None),
        write=heard.append,
        twilio_api_base="http://127.0.0.1:9",
    )
    return phone, heard


def agent_lines(svc: Services, call_sid: str) -> list[str]:
    with svc.db.session() as s:
        query = select(CallTurn.text).where(CallTurn.call_sid == call_sid, CallTurn.role == "agent")
        return list(s.scalars(query.order_by(CallTurn.seq)))


def test_the_terminal_phone_talks_over_the_relay_and_follows_the_action_after_end(
    tw: TwilioSim, svc: Services, relay: RelayServer
) -> None:
    phone, heard = call(tw, ["I'd like to book a consultation next Tuesday afternoon", "0", ""])
    phone.run()
    assert heard[0] == "Thank you for calling the family practice on the Spree."
    assert heard[1].startswith("How can I help you today?")  # the relay's welcome greeting
    offer = [h for h in heard if "Tuesday 24 November" in h]
    assert offer, heard  # the agent's tokens, printed as they came
    # 0 pressed: `end` with a handoff, then the <Connect> action put the caller through.
    assert any(h.startswith("[ringing") for h in heard), heard
    with svc.db.session() as s:
        item = s.scalars(
            select(WorkItem).where(
                WorkItem.call_sid == phone.call_sid, WorkItem.kind == "escalation"
            )
        ).one()
    assert item.reason == "dtmf-0"


def test_a_line_starting_with_bang_interrupts_and_the_transcript_keeps_what_was_heard(
    tw: TwilioSim, svc: Services, relay: RelayServer
) -> None:
    phone, heard = call(
        tw, ["I'd like to book a consultation next Tuesday afternoon", "!", "yes please"]
    )
    phone.run()
    assert any(h.startswith("[you speak over the agent") for h in heard), heard
    lines = agent_lines(svc, phone.call_sid)
    # Only the offer's first sentence was heard, and only it is in the transcript.
    assert lines[1].startswith("The first consultation I have is Tuesday 24 November")
    assert lines[1].endswith(".") and "Shall I book" not in lines[1], lines
    assert "is booked for" in lines[2]  # and the call went on


def test_a_handshake_signed_with_another_token_is_refused_in_one_line(
    tw: TwilioSim, svc: Services, relay: RelayServer
) -> None:
    phone, _ = call(tw, ["hello"])
    phone.hook = InProcess(BASE_URL, "not-the-auth-token-000000000000000", tw=tw)
    with pytest.raises(PhoneError, match="the relay answered 403 to the handshake"):
        phone.run()
