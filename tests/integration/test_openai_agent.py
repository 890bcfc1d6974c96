"""The OpenAI agent against a local stub of the Chat Completions API.

The stub speaks the real wire format (the official SDK parses every answer), records each
request body, and answers from a script: tool calls, text, errors or a stall. Calls go
through the signed webhooks like any other call.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from callgateway.adapters.clock import fixed
from callgateway.app import create_app
from callgateway.config import Config
from callgateway.db.models import Appointment, CallTurn
from callgateway.wiring import Services
from tests.support.booking import MONDAY_9AM, Phone, fixture_rest  # noqa: F401  (rest)
from tests.support.openai_api import MODEL, openai_config, send, text, tool_call
from tests.support.settings import BASE_URL
from tests.support.twilio import PATIENT, TwilioSim

pytestmark = pytest.mark.usefixtures("rest")  # Twilio REST faked for every call


@dataclass
class Stub:
    """Scripted answers, one per request; each is (status, body) or a number (seconds to
    stall before answering 200 with an empty completion)."""

    script: list[Any] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def stub() -> Iterator[Stub]:
    state = Stub()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append(body)
            state.headers.append({k.lower(): v for k, v in self.headers.items()})
            step = state.script.pop(0) if state.script else (500, {"error": {"message": "x"}})
            if isinstance(step, (int, float)) and not isinstance(step, bool):
                time.sleep(step)
                step = text("too late")
            status, payload = step
            send(self, status, payload, streamed=bool(body.get("stream")))

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def make_svc(
    make_services: Callable[..., Services], sqlite_url: str, example_config: Config, stub: Stub
) -> Callable[..., Services]:
    def make(timeout: float = 2.0, **settings: Any) -> Services:
        overrides = {"openai_base_url": stub.url, "openai_api_key": "sk-test-key", **settings}
        svc = make_services(sqlite_url, openai_config(example_config, timeout), **overrides)
        svc.clock = fixed(MONDAY_9AM)
        return svc

    return make


@pytest.fixture
def svc(make_svc: Callable[..., Services]) -> Services:
    return make_svc()


def appointments(svc: Services) -> list[Appointment]:
    with svc.db.session() as s:
        return list(s.scalars(select(Appointment)))


def test_a_booking_by_tool_calls_sends_exact_payloads_and_writes_once_confirmed(
    tw: TwilioSim, svc: Services, stub: Stub
) -> None:
    phone = Phone(tw)
    phone.dial()
    stub.script = [
        tool_call("find_slots", {"appointment_type": "initial", "when": "next Tuesday afternoon"}),
        text("I have Tuesday 24 November at midday, 1 pm or 2 pm. Which would suit you?"),
    ]
    heard = phone.say("I'd like an initial assessment next Tuesday afternoon")
    assert heard == "I have Tuesday 24 November at midday, 1 pm or 2 pm. Which would suit you?"
    first, second = stub.requests
    assert stub.headers[0]["authorization"] == "Bearer sk-test-key"
    assert first["model"] == MODEL and first["tool_choice"] == "auto"
    assert [t["function"]["name"] for t in first["tools"]] == [
        "find_slots", "book", "move", "cancel", "transfer_to_person", "record_opt_out",
    ]  # fmt: skip
    assert first["messages"][0]["role"] == "system"
    assert "Riverside Physiotherapy" in first["messages"][0]["content"]
    assert first["messages"][1:] == [
        {"role": "user", "content": "I'd like an initial assessment next Tuesday afternoon"}
    ]
    assert second["messages"][2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {
                    "name": "find_slots",
                    "arguments": json.dumps(
                        {"appointment_type": "initial", "when": "next Tuesday afternoon"}
                    ),
                },
            }
        ],
    }
    tool_msg = second["messages"][3]
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == "call_1"
    slots = json.loads(tool_msg["content"])["slots"]
    assert [s["start"] for s in slots] == [
        "2026-11-24T12:00:00+00:00", "2026-11-24T13:00:00+00:00", "2026-11-24T14:00:00+00:00",
    ]  # fmt: skip
    # Least data: the number is in no request, and no earlier call's words either.
    assert PATIENT not in json.dumps(stub.requests) and PATIENT[1:] not in json.dumps(stub.requests)

    stub.script = [
        tool_call(
            "book",
            {"appointment_type": "initial", "start": "2026-11-24T13:00:00+00:00",
             "caller_confirmed": True},
            "call_2",
        ),
        text("Booked: Tuesday 24 November at 1 pm. Anything else?"),
    ]  # fmt: skip
    assert phone.say("1 pm please, yes book it") == (
        "Booked: Tuesday 24 November at 1 pm. Anything else?"
    )
    (appointment,) = appointments(svc)
    assert appointment.starts_at == datetime(2026, 11, 24, 13, 0, tzinfo=UTC)
    assert appointment.phone == PATIENT
    booked_result = json.loads(stub.requests[-1]["messages"][-1]["content"])
    assert booked_result["ok"] is True and booked_result["ref"] == appointment.ref


def test_a_second_call_starts_with_no_memory_of_the_first(tw: TwilioSim, stub: Stub) -> None:
    first = Phone(tw)
    first.dial()
    stub.script = [text("Hello! How can I help?")]
    first.say("my name is Ada and I have a sore knee")
    second = Phone(tw)
    second.dial()
    stub.script = [text("How can I help?")]
    second.say("hello")
    assert "Ada" not in json.dumps(stub.requests[-1]["messages"])
    assert stub.requests[-1]["messages"][1:] == [{"role": "user", "content": "hello"}]


def test_invalid_tool_arguments_write_nothing_and_are_reported_to_the_model(
    tw: TwilioSim, svc: Services, stub: Stub
) -> None:
    phone = Phone(tw)
    phone.dial()
    stub.script = [
        tool_call("book", {"appointment_type": "initial", "start": "tomorrow-ish",
                           "caller_confirmed": True}),
        tool_call("book", '{"appointment_type": "initial", "start": ', "call_2"),
        tool_call("book", {"appointment_type": "initial", "start": "2026-11-24T13:00:00+00:00",
                           "caller_confirmed": True}, "call_3"),
        text("Let me check the times first."),
    ]  # fmt: skip
    assert phone.say("book me in for tomorrow") == "Let me check the times first."
    results = [
        json.loads(m["content"]) for m in stub.requests[-1]["messages"] if m["role"] == "tool"
    ]
    assert results == [
        {"ok": False, "error": "invalid_arguments", "fields": ["start"]},
        {"ok": False, "error": "invalid_json"},
        {"ok": False, "error": "not_offered"},  # valid, but never offered in this call
    ]
    assert appointments(svc) == []


def test_cancel_needs_the_date_said_by_the_caller_in_this_call(
    tw: TwilioSim, svc: Services, stub: Stub
) -> None:
    phone = Phone(tw)
    phone.dial()
    stub.script = [
        tool_call("find_slots", {"appointment_type": "initial", "when": "Tuesday at 2pm"}),
        tool_call("book", {"appointment_type": "initial", "start": "2026-11-24T14:00:00+00:00",
                           "caller_confirmed": True}, "call_2"),
        text("Booked."),
    ]  # fmt: skip
    phone.say("book an initial assessment Tuesday at 2pm, yes I confirm")
    assert len(appointments(svc)) == 1
    again = Phone(tw)
    again.dial()
    cancel = {"appointment_date": "2026-11-24", "caller_confirmed": True}
    stub.script = [tool_call("cancel", cancel), text("What's the date of the appointment?")]
    again.say("cancel my appointment please")
    result = json.loads(stub.requests[-1]["messages"][-1]["content"])
    assert result == {"ok": False, "error": "date_not_said"}
    stub.script = [tool_call("cancel", cancel, "call_9"), text("It's cancelled. Goodbye.")]
    assert again.say("it's on Tuesday the 24th") == "It's cancelled. Goodbye."
    assert again.last.rstrip().endswith("<Hangup /></Response>")
    assert [a.status for a in appointments(svc)] == ["cancelled"]


@pytest.mark.parametrize(
    "answer",
    [
        (500, {"error": {"message": "boom", "type": "server_error", "code": None}}),
        (429, {"error": {"message": "slow down", "type": "requests", "code": "rate_limit"}}),
        (401, {"error": {"message": "bad key", "type": "invalid_request_error", "code": None}}),
        (200, {"not": "a completion"}),
    ],
    ids=["500", "429", "401", "garbage"],
)
def test_api_errors_become_a_spoken_apology_and_a_person(
    tw: TwilioSim, stub: Stub, answer: tuple
) -> None:
    phone = Phone(tw)
    phone.dial()
    stub.script = [answer]
    heard = phone.say("I'd like to book")
    assert heard.startswith("I'm sorry, I'm having trouble with our booking system right now.")
    assert phone.dialled_person
    assert len(stub.requests) == 1  # no hidden retries


def test_a_slow_model_hits_the_per_turn_timeout_and_the_caller_hears_an_apology(
    make_svc: Callable[..., Services], stub: Stub
) -> None:
    svc = make_svc(timeout=0.5)
    tw = TwilioSim(create_app({"TESTING": True}, services=svc).test_client(), BASE_URL)
    phone = Phone(tw)
    phone.dial()
    stub.script = [3.0]
    started = time.monotonic()
    heard = phone.say("I'd like to book")
    assert time.monotonic() - started < 2.0
    assert heard.startswith("I'm sorry, I'm having trouble")
    assert phone.dialled_person


def test_an_unreachable_server_is_an_apology_not_silence(make_svc: Callable[..., Services]) -> None:
    svc = make_svc(openai_base_url="http://127.0.0.1:9/v1")
    tw = TwilioSim(create_app({"TESTING": True}, services=svc).test_client(), BASE_URL)
    phone = Phone(tw)
    phone.dial()
    assert phone.say("hello").startswith("I'm sorry, I'm having trouble")
    assert phone.dialled_person


def test_transfer_and_opt_out_tools_hand_the_call_to_a_person(
    tw: TwilioSim, svc: Services, stub: Stub
) -> None:
    phone = Phone(tw)
    phone.dial()
    stub.script = [tool_call("transfer_to_person", {"reason": "billing question"})]
    phone.say("I have a question about my invoice")
    assert phone.dialled_person
    with svc.db.session() as s:
        tools = [t.text for t in s.scalars(select(CallTurn).where(CallTurn.role == "tool"))]
    assert tools == ["transfer_to_person"]


def test_emergency_words_never_reach_the_model(tw: TwilioSim, stub: Stub) -> None:
    phone = Phone(tw)
    phone.dial()
    assert "dial 999" in phone.say("I think I'm having a heart attack")
    assert stub.requests == []
