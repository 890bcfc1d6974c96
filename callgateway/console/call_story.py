"""A call's transcript as staff read it: what each side said, turn by turn, and what the
agent did in between (slots offered, a booking and its ref, a move, a cancellation, a
transfer to a person and why, an opt-out, an emergency), from the transcript rows' meta.

Pure: rows in, lines out. Times are shown on the clinic's own wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from callgateway.db.models import CallTurn

WHEN = "%a %d %b, %H:%M"
# Why a call went to a person, in words (the engine's `reason`).
TRANSFERS = {
    "caller-request": "the caller asked for a person",
    "dtmf-0": "the caller pressed 0",
    "emergency": "the caller said something urgent (emergency)",
    "opted-out-by-voice": "the caller opted out of the AI by voice",
    "opt-out-anonymous": "the caller asked to opt out (number withheld)",
    "not-understood": "the AI did not understand twice",
    "agent-error": "the AI failed",
    "agent-empty-reply": "the AI failed",
    "state-unavailable": "the call's state was lost",
}
ERRORS = {
    "unknown_type": "unknown appointment type",
    "anonymous_caller": "the number is withheld",
    "invalid_arguments": "the AI's request was malformed",
    "invalid_json": "the AI's request was malformed",
    "unknown_tool": "the AI asked for something it may not do",
}


@dataclass(frozen=True)
class Action:
    kind: (
        str  # offer | booked | moved | cancelled | transfer | opt-out | emergency | ended | failed
    )
    text: str
    ref: str | None = None


@dataclass
class Line:
    role: str  # caller | agent | system
    text: str
    at: datetime
    actions: list[Action] = field(default_factory=list)


def _when(value: str | None, tz: ZoneInfo) -> str:
    if not value:
        return "?"
    try:
        return datetime.fromisoformat(value).astimezone(tz).strftime(WHEN)
    except ValueError:
        return value


def tool_action(name: str, meta: dict[str, Any], tz: ZoneInfo) -> Action:
    result = meta.get("result") or {}
    if "error" in meta or result.get("ok") is False:
        code = meta.get("error") or result.get("error") or "error"
        return Action("failed", f"{name.replace('_', ' ')} failed: {ERRORS.get(code, code)}")
    if name == "find_slots":
        slots = [_when(s.get("start"), tz) for s in result.get("slots") or []]
        if not slots:
            return Action("offer", "Looked for free times: none suited")
        return Action("offer", "Offered " + "; ".join(slots))
    if name in ("book", "move", "cancel"):
        verb = {"book": "Booked", "move": "Moved to", "cancel": "Cancelled"}[name]
        kind = {"book": "booked", "move": "moved", "cancel": "cancelled"}[name]
        what = result.get("appointment_type") or "appointment"
        return Action(kind, f"{verb} {what}, {_when(result.get('start'), tz)}", result.get("ref"))
    if name == "transfer_to_person":
        return Action("transfer", "Put the caller through to a person")
    if name == "record_opt_out":
        return Action("opt-out", "Recorded the caller's opt-out")
    return Action("done", name.replace("_", " "))


def agent_actions(meta: dict[str, Any] | None) -> list[Action]:
    meta = meta or {}
    reason = meta.get("reason")
    found: list[Action] = []
    if reason == "emergency":
        found.append(Action("emergency", "Emergency: the caller was told to hang up and dial"))
    if reason in ("opted-out-by-voice", "opt-out-anonymous"):
        found.append(Action("opt-out", "The caller opted out by voice"))
    if meta.get("next") == "person":
        why = TRANSFERS.get(reason or "", reason or "")
        found.append(Action("transfer", "Transferred to a person" + (f": {why}" if why else "")))
    elif meta.get("next") == "hangup":
        found.append(Action("ended", "The AI ended the call"))
    return found


def story(turns: list[CallTurn], tz: ZoneInfo) -> list[Line]:
    """Said lines in order; each tool row becomes an action on the agent line after it (the
    reply that announced what the tool did)."""
    lines: list[Line] = []
    pending: list[Action] = []
    for turn in turns:
        if turn.role == "tool":
            pending.append(tool_action(turn.text, turn.meta or {}, tz))
            continue
        line = Line(turn.role, turn.text, turn.created_at)
        if turn.role == "agent":
            line.actions = [*pending, *agent_actions(turn.meta)]
            pending = []
        lines.append(line)
    if pending:
        lines.append(Line("system", "", turns[-1].created_at, pending))
    return lines


def refs(lines: list[Line]) -> list[str]:
    return [a.ref for line in lines for a in line.actions if a.ref]
