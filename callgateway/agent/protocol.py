"""The one interface every booking agent speaks, and the values that cross it."""

from __future__ import annotations

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

    @property
    def anonymous(self) -> bool:
        return self.caller == "anonymous"

    def log(self, role: str, text: str, meta: dict[str, Any] | None = None) -> None:
        """A transcript row for this turn (written with the turn, `transcript` retention)."""
        self.events.append((role, text, meta))


class Agent(Protocol):
    def respond(self, convo: Conversation, heard: Heard) -> Reply:
        """Answer one caller turn. May call `convo.tools`; must not raise for bad input."""
        ...


__all__ = ["Agent", "Conversation", "Heard", "Next", "Reply"]
