"""The OpenAI tool-calling agent (official SDK; `OPENAI_BASE_URL` may point at any
OpenAI-compatible server a clinic runs itself).

What the model gets is only what the turn needs: the clinic's name, hours and appointment
types, today's date, and this call's words. Never the caller's number, never an earlier
call. Tools run through `Tools`, which validates every argument before anything is read
or written. A slow or failing API (the per-turn timeout covers all rounds of a turn) ends
in a spoken apology and a person, never silence.

`stream()` streams every request (`stream=True`): the spoken words are passed on as they
arrive (a sentence at most per chunk) and tool calls are put together from their deltas
before they are validated and run; a barge-in (`convo.cancelled`) closes the stream at
once. `respond()` (the Gather path, which speaks only once the reply is whole) runs the
same rounds over whole answers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import Generator, Iterator, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from openai import OpenAI, OpenAIError
from openai.types.chat import ChatCompletion

from callgateway import metrics
from callgateway.agent.protocol import Chunk, Conversation, Heard, Reply, final, sentences
from callgateway.booking.dates import parse_date, say_date, say_time
from callgateway.config import DAYS, Clinic
from callgateway.config import OpenAIAgent as OpenAIAgentConfig

if TYPE_CHECKING:
    from callgateway.wiring import Services

log = logging.getLogger(__name__)

APOLOGY = "I'm sorry, I'm having trouble with our booking system right now."
MAX_ROUNDS = 4  # model calls per caller turn (tool use, then an answer)
MAX_HISTORY = 40  # messages kept in the call state

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "find_slots",
            "description": (
                "Find free appointment times. Pass the caller's own words for when they "
                "want to come (e.g. 'next Tuesday afternoon', 'tomorrow at 3'), or an empty "
                "string for the next free ones. Returns up to three slots to offer."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "appointment_type": {"type": "string", "description": "type id"},
                    "when": {"type": "string"},
                },
                "required": ["appointment_type", "when"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "book",
            "description": (
                "Book a slot that find_slots returned in this call, after reading it back "
                "and the caller saying yes."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "appointment_type": {"type": "string"},
                    "start": {"type": "string", "description": "the slot's ISO 8601 start"},
                    "caller_confirmed": {"type": "boolean"},
                },
                "required": ["appointment_type", "start", "caller_confirmed"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "move",
            "description": (
                "Move the caller's appointment. appointment_date is the date (YYYY-MM-DD) "
                "of their current appointment as the caller said it; new_start is a slot "
                "find_slots returned. Only after the caller said yes."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "appointment_date": {"type": "string"},
                    "new_start": {"type": "string"},
                    "caller_confirmed": {"type": "boolean"},
                },
                "required": ["appointment_date", "new_start", "caller_confirmed"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "cancel",
            "description": (
                "Cancel the caller's appointment on appointment_date (YYYY-MM-DD, as the "
                "caller said it), only after the caller said yes."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "appointment_date": {"type": "string"},
                    "caller_confirmed": {"type": "boolean"},
                },
                "required": ["appointment_date", "caller_confirmed"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "transfer_to_person",
            "description": "Put the caller through to a member of the clinic's team.",
            "parameters": {
                "type": "object",
                "properties": {"reason": {"type": "string"}},
                "required": ["reason"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "record_opt_out",
            "description": (
                "The caller does not want automated calls or messages from the clinic."
            ),
            "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
        },
    },
]


def _config(clinic: Clinic) -> OpenAIAgentConfig:
    if isinstance(clinic.agent, OpenAIAgentConfig):
        return clinic.agent
    return OpenAIAgentConfig(kind="openai")


class AgentUnavailable(RuntimeError):
    """No usable API (no key and no base URL, or the API failed this turn)."""


def _client(services: Services, timeout: float) -> OpenAI:
    settings = services.settings
    if not settings.openai_api_key and not settings.openai_base_url:
        raise AgentUnavailable("neither OPENAI_API_KEY nor OPENAI_BASE_URL is set")
    key = f"openai.client:{settings.openai_base_url}:{timeout}"
    client = services.adapters.get(key)
    if client is None:
        client = OpenAI(
            # A self-hosted server may need no key; the SDK insists on one.
            api_key=settings.openai_api_key or "unused",
            base_url=settings.openai_base_url,
            timeout=timeout,
            max_retries=0,  # one turn, one deadline: no hidden retries past it
        )
        services.adapters[key] = client
    return client


def system_prompt(convo: Conversation) -> str:
    clinic, lang = convo.clinic, convo.clinic.language
    local = convo.now.astimezone(clinic.tz)
    hours = []
    for i, day in enumerate(DAYS):
        ranges = clinic.opening_hours(i)
        if ranges:
            spoken = ", ".join(f"{say_time(a, lang)}-{say_time(b, lang)}" for a, b in ranges)
            hours.append(f"{day} {spoken}")
    types = "; ".join(f"{t.id} = {t.name} ({t.minutes} min)" for t in clinic.appointment_types)
    caller = (
        "The caller's number is withheld: they may ask about availability, but to book, "
        "move or cancel offer to transfer them to a person."
        if convo.anonymous
        else "The caller's own appointments are found by the tools; never ask for a number."
    )
    return (
        f"You are the phone receptionist of {clinic.name}. Speak briefly and naturally "
        f"({lang}); one or two sentences per reply, no lists, no markdown. Today is "
        f"{say_date(local.date(), lang)}, {local.strftime('%Y-%m-%d')}, time {local:%H:%M} "
        f"({clinic.timezone}). Opening hours: {'; '.join(hours) or 'not set'}. Appointment "
        f"types: {types}. Use find_slots to look up times; offer what it returns. Before "
        "book, move or cancel, read the details back and get a clear yes. To move or "
        "cancel, first ask the caller for the date of their current appointment. Give no "
        "medical advice; for anything you cannot do, use transfer_to_person. "
        f"{caller}"
    )


def _deltas(response: Any) -> Iterator[tuple[str | None, Sequence[Any]]]:
    """(content, tool-call parts) as they come: each chunk's delta of a stream, or a whole
    completion as one delta (its tool calls numbered like a stream's)."""
    if isinstance(response, ChatCompletion):
        message = response.choices[0].message
        calls = message.tool_calls or ()
        yield (
            message.content,
            [
                SimpleNamespace(index=i, id=call.id, function=getattr(call, "function", None))
                for i, call in enumerate(calls)
            ],
        )
        return
    for chunk in response:
        if chunk.choices:  # a usage-only chunk has none
            delta = chunk.choices[0].delta
            yield delta.content, delta.tool_calls or ()


def _add_tool_delta(calls: dict[int, dict[str, Any]], part: Any) -> None:
    """One tool-call delta into the call it continues (by `index`): the first carries the
    id and the name, the rest carry fragments of the JSON arguments."""
    call = calls.setdefault(part.index, {"id": "", "name": "", "arguments": []})
    if part.id:
        call["id"] = part.id
    if part.function is not None:
        if part.function.name:
            call["name"] += part.function.name
        if part.function.arguments:
            call["arguments"].append(part.function.arguments)


def _checked_call(call: dict[str, Any]) -> dict[str, Any]:
    """An assembled tool call as the history keeps it; a call without an id or a name is
    a broken stream (the turn fails to an apology and a person)."""
    if not call["id"] or not call["name"]:
        raise ValueError("incomplete tool call in the stream")
    return {
        "id": call["id"],
        "type": "function",
        "function": {"name": call["name"], "arguments": "".join(call["arguments"])},
    }


class OpenAIAgent:
    def __init__(self, model: str, timeout: float) -> None:
        self.model = model
        self.timeout = timeout

    @classmethod
    def for_clinic(cls, services: Services, clinic: Clinic) -> OpenAIAgent:
        cfg = _config(clinic)
        return cls(cfg.model, cfg.timeout_seconds)

    def respond(self, convo: Conversation, heard: Heard) -> Reply:
        """The whole reply, for a channel that says nothing before it has all of it (the
        Gather path): each round is one answer, not streamed. The same rounds, tools and
        checks as `stream`; reading one answer instead of a chunk per token saves ~40% of
        the agent's CPU per turn (bench.llm)."""
        return final(self._answer(convo, heard, streamed=False))

    def stream(self, convo: Conversation, heard: Heard) -> Iterator[Chunk]:
        return self._answer(convo, heard, streamed=True)

    def _answer(self, convo: Conversation, heard: Heard, streamed: bool) -> Iterator[Chunk]:
        spoken: list[str] = []
        try:
            reply = yield from self._rounds(convo, heard, spoken, streamed)
        except (OpenAIError, AgentUnavailable, TimeoutError, ValueError, KeyError) as exc:
            log.warning(
                "openai agent failed; caller goes to a person",
                extra={"clinic": convo.clinic.id, "error": type(exc).__name__},
            )
            said = "".join(spoken)
            apology = (" " if said and not said[-1].isspace() else "") + APOLOGY
            yield apology
            reply = Reply((said + apology).strip(), next="person", reason="agent-unavailable")
        yield reply

    def _rounds(
        self, convo: Conversation, heard: Heard, spoken: list[str], streamed: bool
    ) -> Generator[str, None, Reply]:
        """The turn's rounds (tool use, then an answer), one request each. What it yields
        is appended to `spoken`, so a failure half-way knows what was said."""
        deadline = time.monotonic() + self.timeout
        client = _client(convo.services, self.timeout)
        said = parse_date(heard.speech, convo.clinic.tz, convo.now)
        if said is not None:
            convo.tools.heard_date(said)  # the voice confirmation move/cancel check against
        history: list[dict[str, Any]] = convo.state.setdefault("messages", [])
        history.append({"role": "user", "content": heard.speech})
        outcome = None
        for _round in range(MAX_ROUNDS):
            if convo.cancelled():
                return self._interrupted(convo, spoken, outcome)
            remaining = deadline - time.monotonic()
            if remaining <= 0.05:
                raise TimeoutError("turn deadline passed")
            text: list[str] = []
            calls: dict[int, dict[str, Any]] = {}
            # The SDK's timeout bounds the connection and each read; the turn's deadline
            # is checked again at every chunk, so a trickling stream cannot outlast it.
            asked = time.perf_counter()
            try:
                response = client.chat.completions.create(
                    model=self.model,
                    messages=[{"role": "system", "content": system_prompt(convo)}, *history],
                    tools=TOOLS,
                    tool_choice="auto",
                    temperature=0.2,
                    timeout=remaining,
                    stream=streamed,
                )
            except Exception:
                metrics.LLM_SECONDS.labels("error").observe(time.perf_counter() - asked)
                raise
            metrics.LLM_SECONDS.labels("ok").observe(time.perf_counter() - asked)
            with contextlib.closing(response) if streamed else contextlib.nullcontext():
                for content, parts in _deltas(response):
                    if convo.cancelled():  # barge-in: leaving the `with` closes the stream
                        if text:
                            history.append({"role": "assistant", "content": "".join(text)})
                        return self._interrupted(convo, spoken, outcome)
                    if time.monotonic() > deadline:
                        raise TimeoutError("turn deadline passed mid-stream")
                    for part in parts:
                        _add_tool_delta(calls, part)
                    if content:
                        if not text and spoken and not spoken[-1][-1:].isspace():
                            spoken.append(" ")  # a second round's words after the first's
                            yield " "
                        text.append(content)
                        for piece in sentences(content):
                            spoken.append(piece)
                            yield piece
            content = "".join(text).strip() or None
            if calls:
                tool_calls = [_checked_call(calls[i]) for i in sorted(calls)]
                history.append({"role": "assistant", "content": content, "tool_calls": tool_calls})
                for call in tool_calls:
                    name, arguments = call["function"]["name"], call["function"]["arguments"]
                    result = self._run_tool(convo, name, arguments)
                    if result.get("ok") and name in ("book", "move", "cancel"):
                        outcome = {"book": "booked", "move": "moved", "cancel": "cancelled"}[name]
                    history.append(
                        {"role": "tool", "tool_call_id": call["id"], "content": json.dumps(result)}
                    )
                if convo.state.get("transfer"):
                    reason = str(convo.state.pop("transfer"))
                    self._trim(convo)
                    return Reply(
                        "".join(spoken).strip(),
                        next="person",
                        reason=reason,
                        outcome="opted-out" if reason == "opted-out-by-voice" else outcome,
                    )
                continue
            if not content:
                raise ValueError("empty reply from the model")
            history.append({"role": "assistant", "content": content})
            self._trim(convo)
            said_all = "".join(spoken).strip()
            ends = re.search(r"\b(goodbye|bye now)\b", content.lower()) is not None
            return Reply(said_all, next="hangup" if ends else "listen", outcome=outcome)
        raise TimeoutError("too many tool rounds in one turn")

    def _interrupted(self, convo: Conversation, spoken: list[str], outcome: str | None) -> Reply:
        """The caller barged in: what was sent so far (the channel then says what was
        heard of it); a tool that ran still counts, a pending transfer still happens."""
        self._trim(convo)
        transfer = convo.state.pop("transfer", None)
        if transfer:
            reason = str(transfer)
            return Reply(
                "".join(spoken).strip(),
                next="person",
                reason=reason,
                outcome="opted-out" if reason == "opted-out-by-voice" else outcome,
                interrupted=True,
            )
        return Reply("".join(spoken).strip(), outcome=outcome, interrupted=True)

    def _run_tool(self, convo: Conversation, name: str, arguments: str) -> dict[str, Any]:
        try:
            args = json.loads(arguments or "{}")
        except json.JSONDecodeError:
            args = None
        if not isinstance(args, dict):
            convo.log("tool", name, {"error": "invalid_json"})
            return {"ok": False, "error": "invalid_json"}
        return convo.tools.call(name, args)

    def _trim(self, convo: Conversation) -> None:
        """Keep the history bounded, cutting only before a caller's message."""
        history = convo.state.get("messages", [])
        while len(history) > MAX_HISTORY:
            cut = next((i for i, m in enumerate(history[1:], 1) if m["role"] == "user"), None)
            if cut is None:
                break
            del history[:cut]
