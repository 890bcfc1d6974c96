"""The agents' streaming side of the protocol: chunks a sentence at most, the rules agent's
answer as one chunk then its Reply, and a barge-in cutting the state down to what was heard.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from callgateway.agent.protocol import Conversation, Heard, Reply, keep_only_heard, sentences
from callgateway.agent.rules import RulesAgent
from callgateway.config import load_config
from tests.support.settings import EXAMPLE_CONFIG

MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_a_delta_with_two_sentences_is_cut_after_the_first_and_nothing_is_lost() -> None:
    assert sentences("Fine. And you") == ["Fine. ", "And you"]
    assert sentences(" midday?  Or 1 pm! Yes") == [" midday?  ", "Or 1 pm! ", "Yes"]
    assert sentences(" token") == [" token"]
    assert sentences("") == []


def test_the_rules_agent_streams_one_chunk_then_the_same_reply_as_respond() -> None:
    clinic = load_config(EXAMPLE_CONFIG).clinics[0]

    def convo() -> Conversation:
        state: dict[str, Any] = {"stage": "start"}
        return Conversation(None, clinic, "CA1", "+447700900123", state, MONDAY, None)  # type: ignore[arg-type]

    heard = Heard("what are your opening hours?", 0.9)
    items = list(RulesAgent().stream(convo(), heard))
    whole = RulesAgent().respond(convo(), heard)
    assert len(items) == 2 and isinstance(items[1], Reply)
    assert items[0] == whole.say == items[1].say
    assert (items[1].next, items[1].outcome) == (whole.next, whole.outcome)


def test_a_barge_in_leaves_the_model_only_the_words_the_caller_heard() -> None:
    state: dict[str, Any] = {
        "last_prompt": "I have Tuesday at midday, 1 pm or 2 pm. Which suits you?",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hello, how can I help?"},
            {"role": "user", "content": "any time Tuesday?"},
            {"role": "assistant", "content": "Let me look.", "tool_calls": [{"id": "c1"}]},
            {"role": "tool", "tool_call_id": "c1", "content": "{}"},
            {"role": "assistant", "content": "I have Tuesday at midday, 1 pm or 2 pm."},
        ],
    }
    keep_only_heard(state, "Let me look. I have Tuesday")
    assert state["last_prompt"] == "Let me look. I have Tuesday"
    assert state["messages"][1]["content"] == "Hello, how can I help?"  # an earlier turn
    assert state["messages"][3]["content"] is None
    assert state["messages"][-1] == {"role": "assistant", "content": "Let me look. I have Tuesday"}


def test_a_barge_in_before_any_word_was_heard_drops_the_answer() -> None:
    state: dict[str, Any] = {
        "last_prompt": "Hello?",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hello, how can I help?"},
        ],
    }
    keep_only_heard(state, "  ")
    assert "last_prompt" not in state
    assert state["messages"] == [{"role": "user", "content": "hi"}]


def test_a_barge_in_during_tool_use_adds_what_was_heard_after_the_results() -> None:
    state: dict[str, Any] = {
        "messages": [
            {"role": "user", "content": "book me"},
            {"role": "assistant", "content": "One moment.", "tool_calls": [{"id": "c1"}]},
            {"role": "tool", "tool_call_id": "c1", "content": "{}"},
        ]
    }
    keep_only_heard(state, "One moment.")
    assert state["messages"][1]["content"] is None
    assert state["messages"][-1] == {"role": "assistant", "content": "One moment."}
