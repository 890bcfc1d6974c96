"""The rules agent's understanding: intents, dates in the clinic's time, and its steps
(with tools that keep appointments in memory, so nothing here needs a server)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from callgateway.agent import intents
from callgateway.agent.protocol import Conversation, Heard
from callgateway.agent.rules import RulesAgent
from callgateway.booking.dates import parse_date, parse_when, say_time
from callgateway.config import Clinic, load_config
from tests.support.settings import EXAMPLE_CONFIG

LONDON = ZoneInfo("Europe/London")
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("I'd like to book an appointment", "book"),
        ("can I make an appointment for my knee", "book"),
        ("I need to reschedule", "move"),
        ("can I change my appointment", "move"),
        ("I can't make it on Tuesday", "cancel"),
        ("please cancel my booking", "cancel"),
        ("do you have anything free next week", "availability"),
        ("what time are you open on tuesday", "hours"),
        ("the weather is nice", None),
    ],
)
def test_intents(said: str, expected: str | None) -> None:
    assert intents.intent(said) == expected


@pytest.mark.parametrize(
    ("said", "expected"),
    [("yes please", "yes"), ("yeah that's fine", "yes"), ("no", "no"), ("yes, no, wait", "no"),
     ("hmm", None), ("nope", "no"), ("sure", "yes")],
)  # fmt: skip
def test_yes_no(said: str, expected: str | None) -> None:
    assert intents.yes_no(said) == expected


@pytest.mark.parametrize(
    "said",
    ["stop calling me", "Please opt me out", "unsubscribe", "don't contact me again",
     "Do not call me"],
)  # fmt: skip
def test_voice_opt_out_phrases(said: str) -> None:
    assert intents.wants_opt_out(said)


@pytest.mark.parametrize(
    "said", ["can I speak to a person", "receptionist please", "a real human", "front desk"]
)
def test_person_phrases(said: str) -> None:
    assert intents.wants_person(said)


def test_emergency_phrases_match_whole_words_case_and_apostrophes() -> None:
    phrases = ["chest pain", "can't breathe", "suicidal"]
    assert intents.is_emergency("I have CHEST PAIN", phrases)
    assert intents.is_emergency("I can\u2019t breathe", phrases)
    assert not intents.is_emergency("chestnut painting class", phrases)


def test_emergency_phrases_follow_the_list_given() -> None:
    # Patterns are compiled once per phrase list: a changed list (config reload) counts.
    assert intents.is_emergency("my chest hurts", ["chest hurts"])
    assert not intents.is_emergency("my chest hurts", ["stroke"])
    assert not intents.is_emergency("my chest hurts", [])
    assert not intents.is_emergency("my chest hurts", ["", "stroke"])
    assert intents.is_emergency("a Stroke", (p for p in ["STROKE"]))


def test_appointment_types_are_each_clinics_own() -> None:
    clinics = load_config(EXAMPLE_CONFIG).clinics
    uk = next(c for c in clinics if c.id == "riverside-physio")
    de = next(c for c in clinics if c.id == "spree-hausarzt")
    for _ in range(2):  # the second round uses the names worked out in the first
        assert (intents.appointment_type("a follow up", uk) or uk).id == "follow-up"
        assert intents.appointment_type("an assessment", uk) == uk.appointment_types[0]
        assert intents.appointment_type("a follow up", de) is None
        assert (intents.appointment_type("a health check", de) or de).id == "checkup"
        assert (intents.appointment_type("consult", de) or de).id == "consult"
    massage = uk.appointment_types[0].model_copy(update={"name": "Sports massage"})
    renamed = uk.model_copy(update={"appointment_types": [massage]})
    assert intents.appointment_type("a massage", renamed) == renamed.appointment_types[0]
    assert intents.appointment_type("an assessment", renamed) is None


def test_normalising_is_the_same_every_time() -> None:
    said = "Can I book a Follow-up, next TUESDAY, please?!"
    expected = "can i book a follow up next tuesday please"
    assert intents.normalise(said) == intents.normalise(said) == expected


@pytest.mark.parametrize(
    ("said", "first", "last", "window"),
    [
        ("next Tuesday afternoon", date(2026, 11, 24), date(2026, 11, 24), (time(12), time(17))),
        ("tomorrow at 3", date(2026, 11, 24), date(2026, 11, 24), time(15)),
        ("Wednesday at 10", date(2026, 11, 25), date(2026, 11, 25), time(10)),
        ("half past two on Friday", date(2026, 11, 27), date(2026, 11, 27), time(14, 30)),
        ("next week", date(2026, 11, 30), date(2026, 12, 6), None),
        ("Wednesday next week", date(2026, 12, 2), date(2026, 12, 2), None),
        ("the first of December", date(2026, 12, 1), date(2026, 12, 1), None),
        ("on the 14th", date(2026, 12, 14), date(2026, 12, 14), None),
        ("Tuesday the 1st", date(2026, 12, 1), date(2026, 12, 1), None),
        ("the day after tomorrow", date(2026, 11, 25), date(2026, 11, 25), None),
        ("after 3 tomorrow", date(2026, 11, 24), date(2026, 11, 24), (time(15), None)),
        ("29th of March at 10am", date(2027, 3, 29), date(2027, 3, 29), time(10)),
        ("it's the 23rd of November", date(2026, 11, 23), date(2026, 11, 23), None),  # today
    ],
)
def test_spoken_times_resolve_in_the_clinic_timezone(
    said: str, first: date, last: date, window: object
) -> None:
    when = parse_when(said, LONDON, MONDAY)
    assert when is not None
    assert (when.first_day, when.last_day) == (first, last)
    if isinstance(window, time):
        assert when.at == window
    elif isinstance(window, tuple):
        assert (when.earliest, when.latest) == window


def test_next_free_is_a_window_from_today() -> None:
    when = parse_when("the next free appointment", LONDON, MONDAY)
    assert when is not None and when.first_day == date(2026, 11, 23) and not when.named_day


@pytest.mark.parametrize("said", ["may I book an appointment", "yes", "the first one", "hello"])
def test_words_that_are_not_times_are_not_times(said: str) -> None:
    assert parse_when(said, LONDON, MONDAY) is None


def test_the_local_date_decides_near_midnight() -> None:
    # 23:30 UTC on Monday is already Tuesday in Sydney.
    late = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)
    assert parse_date("tomorrow", ZoneInfo("Australia/Sydney"), late) == date(2026, 11, 25)
    assert parse_date("tomorrow", LONDON, late) == date(2026, 11, 24)


def test_times_are_spoken_like_a_receptionist() -> None:
    assert [say_time(time(h, m)) for h, m in [(9, 0), (12, 0), (14, 30), (0, 15)]] == [
        "9 am", "midday", "2:30 pm", "12:15 am",
    ]  # fmt: skip


# --- The agent's steps, with in-memory tools -------------------------------------------


class MemoryTools:
    """The subset of `Tools` the rules agent uses, over a list of slots in memory."""

    def __init__(self, clinic: Clinic, state: dict[str, Any], caller: str) -> None:
        self.clinic, self.state, self.caller = clinic, state, caller
        self.writes: list[str] = []

    def appointment_type(self, type_id: str | None) -> Any:
        return self.clinic.appointment_type(type_id or self.clinic.default_appointment_type or "")

    def search(self, kind: Any, when: Any) -> dict[str, Any]:
        start = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
        self.state["offers"] = [{"start": start.isoformat(), "type_id": kind.id}]
        return {
            "ok": True,
            "slots": [{"start": start.isoformat(), "spoken": "Tuesday 24 November at midday"}],
        }

    def book(self, args: Any) -> dict[str, Any]:
        self.writes.append(f"book {args.start.isoformat()}")
        return {"ok": True, "ref": "ACD347", "appointment_type": "Initial assessment",
                "spoken": "Tuesday 24 November at midday", "status": "booked"}  # fmt: skip

    def has_upcoming(self) -> bool:
        return False


def talk(lines: list[str], caller: str = "+447700900123") -> tuple[list[str], MemoryTools]:
    clinic = load_config(EXAMPLE_CONFIG).clinics[0]
    state: dict[str, Any] = {"stage": "start"}
    tools = MemoryTools(clinic, state, caller)
    convo = Conversation(None, clinic, "CA1", caller, state, MONDAY, tools)  # type: ignore[arg-type]
    agent = RulesAgent()
    return [agent.respond(convo, Heard(line, 0.9)).say for line in lines], tools


def test_nothing_is_written_before_the_caller_says_yes() -> None:
    replies, tools = talk(["book an initial assessment next Tuesday afternoon"])
    assert replies[0].endswith("Shall I book that?") and tools.writes == []
    replies, tools = talk(["book an initial assessment next Tuesday afternoon", "yes"])
    assert tools.writes == ["book 2026-11-24T12:00:00+00:00"]
    assert "Your reference is A C D 3 4 7." in replies[1]


def test_no_means_no_booking_and_a_new_question() -> None:
    replies, tools = talk(["book an initial assessment next Tuesday", "no"])
    assert replies[1] == "No problem. What other day or time would suit you?"
    assert tools.writes == []


def test_garbage_is_answered_with_what_the_line_can_do() -> None:
    replies, _ = talk(["\u2603\u2603 asdf qwerty ;DROP TABLE"])
    assert replies[0].startswith("You can book, move or cancel an appointment")


def test_goodbye_hangs_up() -> None:
    clinic = load_config(EXAMPLE_CONFIG).clinics[0]
    state: dict[str, Any] = {"stage": "anything_else"}
    convo = Conversation(
        None, clinic, "CA1", "+447700900123", state, MONDAY, MemoryTools(clinic, state, "")
    )  # type: ignore[arg-type]
    reply = RulesAgent().respond(convo, Heard("no thanks, bye", 0.9))
    assert reply.next == "hangup" and reply.say.endswith("Goodbye.")


def test_a_withheld_number_is_offered_a_person_to_book() -> None:
    replies, tools = talk(["book an initial assessment next Tuesday", "yes"], caller="anonymous")
    assert "a member of our team needs to make the booking" in replies[0]
    assert tools.writes == []


def test_move_without_appointments_offers_a_person() -> None:
    replies, _ = talk(["I need to move my appointment"])
    assert replies[0].startswith("I can't find an upcoming appointment")
