"""The OpenAI endpoint slow past the turn deadline, or erroring, across a whole call.

tests/integration/test_openai_agent.py proves the single turn (each error class, a stall,
an unreachable server: an apology and a person, one request, no hidden retry). Here: the
deadline is the turn's, across its rounds (a slow tool call, then a stall), what the call
leaves stored, and that once the API answers again the next caller books through the AI.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from callgateway.db.models import Appointment, Call, CallTurn, WorkItem
from callgateway.wiring import Services
from tests.support.booking import MONDAY_9AM, Phone
from tests.support.faults import ESCALATION_UK, app_for, assert_caller_is_served, dialled
from tests.support.openai_api import openai_config, send, text, tool_call

APOLOGY = "I'm sorry, I'm having trouble with our booking system right now."
pytestmark = pytest.mark.usefixtures("twilio_api")


class Api:
    """Chat Completions on loopback, answering from `script`: each step is (status, body),
    optionally wrapped as (seconds, step) to answer that late. An empty script is a 500."""

    def __init__(self) -> None:
        self.script: list[Any] = []
        self.requests: list[dict[str, Any]] = []
        self.url = ""


@pytest.fixture
def api() -> Iterator[Api]:
    state = Api()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append(body)
            step = state.script.pop(0) if state.script else (500, {"error": {"message": "x"}})
            if isinstance(step[0], float):
                time.sleep(step[0])
                step = step[1]
            status, payload = step
            # A client that gave up (its deadline) is the point: `send` says so, no more.
            send(self, status, payload, streamed=bool(body.get("stream")))

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def svc(make_services: Callable[..., Services], sqlite_url: str, example_config, api: Api):
    services = make_services(
        sqlite_url,
        openai_config(example_config, timeout=2.0),
        openai_base_url=api.url,
        openai_api_key="sk-test-key",
    )
    services.clock = lambda: MONDAY_9AM
    return services


def rows(svc: Services, model: type, **where: object) -> list:
    with svc.db.session() as s:
        return list(s.scalars(select(model).filter_by(**where)))


def test_the_turn_deadline_covers_every_round_and_the_call_is_logged_as_a_person(
    svc: Services, api: Api
) -> None:
    phone = Phone(app_for(svc))
    phone.dial()
    # The first turn of a process imports the SDK and the date parser: warm, not timed.
    api.script = [text("Hello, how can I help?")]
    assert phone.say("hello") == "Hello, how can I help?"
    # Round 1 takes most of the turn (a slow tool call); round 2 stalls. A deadline per
    # round would keep the caller waiting 1 + 2 s; the turn's deadline ends it at 2 s.
    api.script = [
        (1.0, tool_call("find_slots", {"appointment_type": "initial", "when": "next Tuesday"})),
        (6.0, text("too late")),
    ]
    started = time.monotonic()
    heard = phone.say("I'd like an initial assessment next Tuesday")
    assert time.monotonic() - started < 2.6
    assert heard.startswith(APOLOGY)
    assert_caller_is_served(200, phone.last)
    assert dialled(phone.last) == [ESCALATION_UK]
    assert len(api.requests) == 3  # hello, round 1, round 2: no retry after the deadline

    (call,) = rows(svc, Call)
    assert (call.handled_by, call.outcome) == ("none", "escalated")  # a person next
    (item,) = rows(svc, WorkItem, call_sid=phone.call_sid)
    assert (item.kind, item.reason, item.status) == ("escalation", "agent-unavailable", "open")
    turns = [(t.role, t.text) for t in rows(svc, CallTurn, call_sid=phone.call_sid)]
    assert ("caller", "I'd like an initial assessment next Tuesday") in turns
    assert turns[-1][0] == "agent" and turns[-1][1].startswith(APOLOGY)
    assert rows(svc, Appointment) == []  # nothing half-booked


def test_once_the_api_answers_again_the_next_caller_books_through_the_ai(
    svc: Services, api: Api
) -> None:
    tw = app_for(svc)
    down = Phone(tw)
    down.dial()
    api.script = [(503, {"error": {"message": "overloaded", "type": "server_error"}})]
    assert down.say("book me in please").startswith(APOLOGY)

    up = Phone(tw)
    up.dial()
    api.script = [
        tool_call("find_slots", {"appointment_type": "initial", "when": "next Tuesday afternoon"}),
        text("I have Tuesday 24 November at 1 pm. Shall I book it?"),
    ]
    assert up.say("an initial assessment next Tuesday afternoon") == (
        "I have Tuesday 24 November at 1 pm. Shall I book it?"
    )
    api.script = [
        tool_call(
            "book",
            {"appointment_type": "initial", "start": "2026-11-24T13:00:00+00:00",
             "caller_confirmed": True},
            "call_2",
        ),
        text("Booked: Tuesday 24 November at 1 pm. Anything else?"),
    ]  # fmt: skip
    assert up.say("yes please").startswith("Booked: Tuesday 24 November at 1 pm")
    (appointment,) = rows(svc, Appointment)
    assert appointment.status == "booked"
    assert [c.handled_by for c in rows(svc, Call, call_sid=up.call_sid)] == ["ai"]
