"""The one interface every booking agent speaks, and the values that cross it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from callgateway.config import Clinic

if TYPE_CHECKING:
    from callgateway.agent.tools import Tools
    from callgateway.wiring import Services

Next = Literal["listen", "person", "hangup"]


@dataclass(frozen=True)
class Heard:
    """One caller turn as Twilio reported it."""

    speech: str = ""
    confidence: float | None = None
    digits: str = ""

    @property
    def silent(self) -> bool:
        return not self.speech.strip() and not self.digits


@dataclass
class Reply:
    """What the agent says, and what happens next."""

    say: str
    next: Next = "listen"
    reason: str | None = None  # why a person is needed (escalation reason)
    outcome: str | None = None  # call-log outcome this turn settled (booked, moved…)
    understood: bool = True  # False: a reprompt (counts towards "twice, then a person")
    interrupted: bool = False  # the caller barged in: `say` is what was sent before that


@dataclass
class Conversation:
    """Everything an agent may use in one turn. `state` is saved to Redis after the turn."""

    services: Services
    clinic: Clinic
    call_sid: str
    caller: str  # E.164 or 'anonymous'; tools use it, no model ever sees it
    state: dict[str, Any]
    now: datetime
    tools: Tools
    events: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)
    # The channel's barge-in signal: a streaming agent checks it between chunks and, once
    # it is true, stops reading the model at once and ends with an `interrupted` Reply.
    cancelled: Callable[[], bool] = field(default=lambda: False)

    @property
    def anonymous(self) -> bool:
        return self.caller == "anonymous"

    def log(self, role: str, text: str, meta: dict[str, Any] | None = None) -> None:
        """A transcript row for this turn (written with the turn, `transcript` retention)."""
        self.events.append((role, text, meta))


Chunk = str | Reply


class Agent(Protocol):
    def respond(self, convo: Conversation, heard: Heard) -> Reply:
        """Answer one caller turn. May call `convo.tools`; must not raise for bad input."""
        ...

    def stream(self, convo: Conversation, heard: Heard) -> Iterator[Chunk]:
        """The same answer as it is produced: text chunks to speak (a sentence at most
        each, in order), then exactly one final `Reply`, whose `say` is the chunks joined
        (stripped). Same effects and rules as `respond`."""
        ...


def final(chunks: Iterator[Chunk]) -> Reply:
    """The Reply that ends a stream (what `respond` returns for an agent that streams)."""
    for item in chunks:
        if isinstance(item, Reply):
            return item
    raise RuntimeError("an agent's stream ended without a Reply")


def as_stream(reply: Reply) -> Iterator[Chunk]:
    """A whole Reply as a stream: its words as one chunk (none when it says nothing), then
    the Reply itself."""
    if reply.say:
        yield reply.say
    yield reply


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def sentences(text: str) -> list[str]:
    """`text` cut after each sentence end, keeping every character: pieces of a delta that
    each stay within one sentence ("Fine. And you" -> ["Fine. ", "And you"])."""
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        pieces.append(text[start : match.end()])
        start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def keep_only_heard(state: dict[str, Any], heard_text: str) -> None:
    """After a barge-in: make the conversation state say only what the caller heard of the
    agent's last answer, so the next turn reasons about the truth. The agents keep their
    words in two places: `last_prompt` (what silence repeats) and, for a model, `messages`
    (the chat history, whose answers since the caller's last message are cut down)."""
    heard_text = heard_text.strip()
    if heard_text:
        state["last_prompt"] = heard_text
    else:
        state.pop("last_prompt", None)
    history = state.get("messages")
    if not isinstance(history, list) or not history:
        return
    last_user = max((i for i, m in enumerate(history) if m.get("role") == "user"), default=-1)
    answer = history[last_user + 1 :]
    for message in answer:  # tool rounds keep their calls; their words were not all heard
        if message.get("role") == "assistant" and message.get("tool_calls"):
            message["content"] = None
    tail = history[-1] if answer else None
    if tail is not None and tail.get("role") == "assistant" and not tail.get("tool_calls"):
        if heard_text:
            tail["content"] = heard_text
        else:
            history.pop()
    elif heard_text:
        history.append({"role": "assistant", "content": heard_text})


__all__ = [
    "Agent",
    "Chunk",
    "Conversation",
    "Heard",
    "Next",
    "Reply",
    "as_stream",
    "final",
    "keep_only_heard",
    "sentences",
]
