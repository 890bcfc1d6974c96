"""Turns streamed: the engine's `stream_turn` over the `openai` agent, against a stub of the
Chat Completions API on loopback that streams server-sent events shaped like the real API's
(content a token at a time, tool calls in deltas, `finish_reason`, `data: [DONE]`).

A streaming channel (ConversationRelay) speaks the chunks as they come and cancels on a
barge-in; the Gather path takes the whole reply. Both go through the same engine.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select

from callgateway.adapters.clock import fixed
from callgateway.agent.protocol import Heard
from callgateway.app import create_app
from callgateway.calls import engine
from callgateway.calls import state as live_state
from callgateway.calls.engine import TurnResult
from callgateway.config import Config
from callgateway.db.models import Appointment, Call, CallTurn
from callgateway.wiring import Services
from tests.support.booking import MONDAY_9AM, Phone, fixture_rest  # noqa: F401  (rest)
from tests.support.openai_api import Stub, openai_config, serve_stub, text, tool_call
from tests.support.settings import BASE_URL
from tests.support.twilio import TwilioSim

pytestmark = pytest.mark.usefixtures("rest")

APOLOGY = "I'm sorry, I'm having trouble with our booking system right now."
LONG = (
    "I have Tuesday 24 November at midday, 1 pm or 2 pm. Which would suit you best? "
    "We also have Wednesday morning if that is easier for you, and Thursday after lunch."
)


@pytest.fixture
def stub() -> Iterator[Stub]:
    with serve_stub() as running:
        yield running


@pytest.fixture
def make_svc(
    make_services: Callable[..., Services], sqlite_url: str, example_config: Config, stub: Stub
) -> Callable[..., Services]:
    def make(timeout: float = 2.0) -> Services:
        svc = make_services(
            sqlite_url,
            openai_config(example_config, timeout),
            openai_base_url=stub.url,
            openai_api_key="sk-test-key",
        )
        svc.clock = fixed(MONDAY_9AM)
        return svc

    return make


@pytest.fixture
def svc(make_svc: Callable[..., Services]) -> Services:
    return make_svc()


def stream(
    svc: Services, phone: Phone, speech: str, cancelled: threading.Event | None = None
) -> tuple[list[tuple[float, str]], TurnResult]:
    """Run one streamed turn; the chunks with the time each arrived, and the result."""
    chunks: list[tuple[float, str]] = []
    turn = engine.Turn(phone.call_sid, Heard(speech, 0.92))
    for item in engine.stream_turn(svc, turn, cancelled):
        if isinstance(item, TurnResult):
            return chunks, item
        chunks.append((time.monotonic(), item))
    raise AssertionError("no TurnResult")


def transcript(svc: Services, call_sid: str) -> list[tuple[str, str, dict | None]]:
    with svc.db.session() as s:
        rows = s.scalars(select(CallTurn).where(CallTurn.call_sid == call_sid).order_by("seq"))
        return [(t.role, t.text, t.meta) for t in rows]


def test_a_streamed_booking_puts_tool_calls_together_from_their_deltas_and_books_once(
    tw: TwilioSim, svc: Services, stub: Stub
) -> None:
    phone = Phone(tw)
    phone.dial()
    stub.script = [
        tool_call("find_slots", {"appointment_type": "initial", "when": "next Tuesday afternoon"}),
        text("I have Tuesday 24 November at midday, 1 pm or 2 pm. Which would suit you?"),
    ]
    chunks, result = stream(svc, phone, "I'd like an initial assessment next Tuesday afternoon")
    offer = "I have Tuesday 24 November at midday, 1 pm or 2 pm. Which would suit you?"
    assert "".join(c for _, c in chunks) == offer == result.reply.say
    # The tool call came in fragments; the model is shown its own call back whole.
    assert stub.requests[1]["messages"][2]["tool_calls"] == [
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
    ]
    slots = json.loads(stub.requests[1]["messages"][3]["content"])["slots"]
    assert slots[1]["start"] == "2026-11-24T13:00:00+00:00"

    stub.script = [
        tool_call("book", {"appointment_type": "initial", "start": "2026-11-24T13:00:00+00:00",
                           "caller_confirmed": True}, "call_2"),
        text("You're booked for Tuesday at 1 pm. Goodbye."),
    ]  # fmt: skip
    chunks, result = stream(svc, phone, "1 pm please, yes that's right")
    assert "".join(c for _, c in chunks) == "You're booked for Tuesday at 1 pm. Goodbye."
    assert (result.reply.next, result.reply.outcome) == ("hangup", "booked")
    assert all(r["stream"] is True for r in stub.requests)
    assert (stub.finished, stub.cut_short) == (4, 0)
    with svc.db.session() as s:
        (appointment,) = s.scalars(select(Appointment))
        assert appointment.starts_at.isoformat().startswith("2026-11-24T13:00")
        call = s.scalars(select(Call).where(Call.call_sid == phone.call_sid)).one()
        assert (call.outcome, call.handled_by) == ("booked", "ai")


def test_the_gather_path_books_the_same_way_with_whole_answers(
    tw: TwilioSim, svc: Services, stub: Stub
) -> None:
    """<Gather> speaks only once the reply is whole, so it asks for whole answers: the same
    rounds, tools and outcome, without a chunk per token to read."""
    phone = Phone(tw)
    phone.dial()
    stub.script = [
        tool_call("find_slots", {"appointment_type": "initial", "when": "next Tuesday afternoon"}),
        text("I have Tuesday 24 November at midday, 1 pm or 2 pm. Which would suit you?"),
    ]
    heard = phone.say("I'd like an initial assessment next Tuesday afternoon")
    assert heard == "I have Tuesday 24 November at midday, 1 pm or 2 pm. Which would suit you?"
    assert phone.listening
    stub.script = [
        tool_call("book", {"appointment_type": "initial", "start": "2026-11-24T13:00:00+00:00",
                           "caller_confirmed": True}, "call_2"),
        text("You're booked for Tuesday at 1 pm. Goodbye."),
    ]  # fmt: skip
    assert phone.say("1 pm please, yes that's right") == (
        "You're booked for Tuesday at 1 pm. Goodbye."
    )
    assert not any(r.get("stream") for r in stub.requests)
    with svc.db.session() as s:
        (appointment,) = s.scalars(select(Appointment))
        assert appointment.starts_at.isoformat().startswith("2026-11-24T13:00")
        call = s.scalars(select(Call).where(Call.call_sid == phone.call_sid)).one()
        assert (call.outcome, call.handled_by) == ("booked", "ai")


def test_stream_turn_passes_the_tokens_on_in_order_as_they_arrive(
    tw: TwilioSim, svc: Services, stub: Stub
) -> None:
    phone = Phone(tw)
    phone.dial()
    stub.interval = 0.03
    stub.script = [text(LONG)]
    started = time.monotonic()
    chunks, result = stream(svc, phone, "when are you free?")
    words = [c for _, c in chunks]
    assert "".join(words) == LONG
    assert len(words) == len(LONG.split())  # a token at a time, none held back
    # The first words reached the channel while the model was still writing the rest.
    first, last = chunks[0][0] - started, chunks[-1][0] - started
    assert last - first > 0.5
    assert (result.reply.say, result.reply.next) == (LONG, "listen")
    agent_lines = [t for t in transcript(svc, phone.call_sid) if t[0] == "agent"]
    assert agent_lines[-1][1] == LONG


def test_a_barge_in_closes_the_model_stream_and_keeps_only_what_was_heard(
    tw: TwilioSim, svc: Services, stub: Stub
) -> None:
    phone = Phone(tw)
    phone.dial()
    stub.interval = 0.05
    stub.script = [text(LONG)]
    barge = threading.Event()
    chunks: list[str] = []
    turn = engine.Turn(phone.call_sid, Heard("when are you free?", 0.92))
    result = None
    for item in engine.stream_turn(svc, turn, barge):
        if isinstance(item, TurnResult):
            result = item
            break
        chunks.append(item)
        if len(chunks) == 5:
            stopped = time.monotonic()
            barge.set()  # Twilio's `interrupt`: the caller spoke over the reply
    assert result is not None
    assert time.monotonic() - stopped < 0.3  # at once, not after the model's last token
    assert len(chunks) == 5  # nothing more was passed on after the barge-in
    assert result.reply.interrupted and result.reply.next == "listen"
    deadline = time.monotonic() + 5
    while stub.cut_short == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (stub.cut_short, stub.finished) == (1, 0)  # the stub saw the connection closed

    heard = "I have Tuesday 24"
    engine.interrupted(svc, phone.call_sid, heard)
    lines = transcript(svc, phone.call_sid)
    assert lines[-2][:2] == ("caller", "when are you free?")
    assert lines[-1] == ("agent", heard, {"interrupted": True})
    state = live_state.load(svc.redis, phone.call_sid)
    assert state["messages"][-1] == {"role": "assistant", "content": heard}
    assert state["last_prompt"] == heard

    # The next turn reasons about the truth: the model is told only what was heard.
    stub.interval = 0.0
    stub.script = [text("Tuesday at midday, then?")]
    _, after = stream(svc, phone, "midday sounds good")
    assert after.reply.say == "Tuesday at midday, then?"
    sent = stub.requests[-1]["messages"]
    assert sent[-3:] == [
        {"role": "user", "content": "when are you free?"},
        {"role": "assistant", "content": heard},
        {"role": "user", "content": "midday sounds good"},
    ]
    assert "Wednesday" not in json.dumps(sent)


def test_a_barge_in_after_the_reply_was_written_corrects_it_too(
    tw: TwilioSim, svc: Services, stub: Stub
) -> None:
    phone = Phone(tw)
    phone.dial()
    stub.script = [text(LONG)]
    _, result = stream(svc, phone, "when are you free?")
    assert not result.reply.interrupted  # the model finished; Twilio was still speaking
    engine.interrupted(svc, phone.call_sid, "I have Tuesday 24 November at midday,")
    assert transcript(svc, phone.call_sid)[-1] == (
        "agent",
        "I have Tuesday 24 November at midday,",
        {"interrupted": True},
    )
    messages = live_state.load(svc.redis, phone.call_sid)["messages"]
    assert messages[-1]["content"] == "I have Tuesday 24 November at midday,"


def test_an_erroring_model_gives_an_apology_and_a_person_in_the_stream(
    tw: TwilioSim, svc: Services, stub: Stub
) -> None:
    phone = Phone(tw)
    phone.dial()
    stub.script = [(500, {"error": {"message": "boom", "type": "server_error", "code": None}})]
    chunks, result = stream(svc, phone, "I'd like to book")
    assert [c for _, c in chunks] == [APOLOGY]
    assert (result.reply.next, result.reply.reason) == ("person", "agent-unavailable")
    assert transcript(svc, phone.call_sid)[-1][:2] == ("agent", APOLOGY)


def test_a_stream_that_stalls_mid_reply_ends_in_an_apology_by_the_turn_deadline(
    make_svc: Callable[..., Services], stub: Stub
) -> None:
    svc = make_svc(timeout=0.8)
    phone = Phone(TwilioSim(create_app({"TESTING": True}, services=svc).test_client(), BASE_URL))
    phone.dial()
    stub.script = [text("Hello, how can I help?")]
    stream(svc, phone, "hello")  # warm: the first turn of a process imports the SDK
    stub.interval = 3.0  # the first token comes, then the model stalls
    stub.script = [text("Let me see what we have on Tuesday.")]
    started = time.monotonic()
    chunks, result = stream(svc, phone, "anything on Tuesday?")
    assert time.monotonic() - started < 1.6
    words = [c for _, c in chunks]
    assert words[0] == "Let" and words[-1] == " " + APOLOGY  # never silence
    assert (result.reply.next, result.reply.reason) == ("person", "agent-unavailable")


def test_a_slow_first_token_past_the_deadline_is_an_apology_not_silence(
    make_svc: Callable[..., Services], stub: Stub
) -> None:
    svc = make_svc(timeout=0.5)
    phone = Phone(TwilioSim(create_app({"TESTING": True}, services=svc).test_client(), BASE_URL))
    phone.dial()
    stub.first_token = 3.0
    stub.script = [text("too late")]
    started = time.monotonic()
    chunks, result = stream(svc, phone, "I'd like to book")
    assert time.monotonic() - started < 1.5
    assert [c for _, c in chunks] == [APOLOGY]
    assert result.reply.next == "person"


def test_safety_replies_come_as_one_chunk_and_never_reach_the_model(
    tw: TwilioSim, svc: Services, stub: Stub
) -> None:
    phone = Phone(tw)
    phone.dial()
    chunks, result = stream(svc, phone, "I think I'm having a heart attack")
    assert len(chunks) == 1 and "dial 999" in chunks[0][1]
    assert chunks[0][1] == result.reply.say
    turn = engine.Turn(phone.call_sid, Heard(digits="0"))
    items = list(engine.stream_turn(svc, turn))
    assert len(items) == 1 and isinstance(items[0], TurnResult)  # nothing to say: a person
    assert (items[0].reply.next, items[0].reply.reason) == ("person", "dtmf-0")
    assert stub.requests == []


def test_a_barge_in_before_the_first_word_says_nothing_and_closes_the_stream(
    tw: TwilioSim, svc: Services, stub: Stub
) -> None:
    phone = Phone(tw)
    phone.dial()
    stub.script = [text("Hello, how can I help?")]
    stream(svc, phone, "hello")  # warm: the first turn of a process imports the SDK
    stub.first_token, stub.interval = 0.4, 0.05
    stub.script = [text(LONG)]
    barge = threading.Event()
    threading.Timer(0.15, barge.set).start()  # while the model is still thinking
    chunks, result = stream(svc, phone, "when are you free?", barge)
    assert len(stub.requests) == 2  # it was asked, and had not said a word yet
    assert chunks == []
    assert result.reply.interrupted and result.reply.next == "listen"
    deadline = time.monotonic() + 5
    while stub.cut_short == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (stub.cut_short, stub.finished) == (1, 1)  # the warm turn's stream ran to its end
    engine.interrupted(svc, phone.call_sid, "")
    assert transcript(svc, phone.call_sid)[-1] == ("agent", "", {"interrupted": True})
    messages = live_state.load(svc.redis, phone.call_sid)["messages"]
    assert messages[-1] == {"role": "user", "content": "when are you free?"}
