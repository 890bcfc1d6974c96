"""One call's ConversationRelay socket: `setup`, then the caller's turns, until `end`.

Twilio sends `setup` (which call), `prompt` (what the caller said, `last` when the
utterance is complete), `dtmf` (a key), `interrupt` (the caller spoke over the agent:
`utteranceUntilInterrupt` is what they heard) and `error`. We send the agent's reply as
`text` tokens, a sentence each, the final one with `last: true`, and `end` with
`handoffData` when a person (or goodbye) takes over; Twilio then posts the `<Connect>`
action (`calls.relay.done`).

Every turn goes through the engine (`engine.stream_turn`: the gate, the safety checks, the
agent, the transcript), run in a thread pool (a small one for quick turns, a larger one for
turns that wait on a model): nothing blocking runs on the event loop, so one slow turn
never holds another session. A session's work is serial (a turn, or the
amendment an interruption makes, starts when the one before it is done) while its socket
keeps reading, so an interruption stops the reply at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from callgateway.agent.protocol import Heard
from callgateway.agent.rules import OPENING
from callgateway.calls import engine
from callgateway.calls import relay as channel
from callgateway.phone import InvalidNumber, caller_id, parse_e164
from callgateway.relay.speech import sentences

if TYPE_CHECKING:
    from callgateway.wiring import Services

log = logging.getLogger(__name__)

T = TypeVar("T")
Blocking = Callable[..., Awaitable[Any]]  # runs fn(*args) in the thread pool

SETUP_SECONDS = 10.0  # Twilio sends setup at once; a socket that doesn't is closed
END_GRACE_SECONDS = 5.0  # after `end`, Twilio closes the socket; else we do
_CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
_DIGIT = re.compile(r"^[0-9*#]$")
MAX_PROMPT = 1000  # characters of one utterance kept, as on the Gather path


@dataclass
class _Reply:
    """The reply being given: interrupted by the caller, and what they heard of it."""

    interrupted: bool = False
    heard: str = ""
    finished: bool = False  # every token sent (or stopped): an interruption now comes late
    cancel: threading.Event = field(default_factory=threading.Event)  # stops the stream


class Session:
    def __init__(
        self, ws: WebSocket, services: Services, blocking: Blocking, waiting: Blocking
    ) -> None:
        self.ws = ws
        self.services = services
        self.blocking = blocking  # quick work: a rules turn, the claim, an amendment
        self.waiting = waiting  # a turn that waits on a model
        self.call_sid = ""
        self.turn_runner = blocking
        self.cli = ""
        self.called = ""
        self.turns = 0
        self.ended = False
        self.reply: _Reply | None = None
        # The agent's last line that the caller may still be hearing: the welcome greeting
        # (the opening question) until the first reply.
        self.last_said = OPENING
        self._work: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None

    # -- the socket ---------------------------------------------------------------------

    async def run(self) -> None:
        try:
            first = await asyncio.wait_for(self._receive(), SETUP_SECONDS)
            if not await self._setup(first):
                return
            while True:
                message = await self._receive()
                if message is not None:
                    self._dispatch(message)
        except (WebSocketDisconnect, TimeoutError):
            pass
        finally:
            if self._work is not None:
                # What was started finishes (a turn's transcript, an amendment); its tokens
                # go nowhere once the socket is gone.
                with contextlib.suppress(Exception):
                    await self._work
            if self._closer is not None:
                self._closer.cancel()
            await self._close()  # no setup in time, or Twilio went first: ours is a no-op
            log.info(
                "relay session closed",
                extra={"call_sid": self.call_sid or None, "turns": self.turns},
            )

    async def _receive(self) -> dict[str, Any] | None:
        raw = await self.ws.receive_text()
        try:
            message = json.loads(raw)
        except ValueError:
            log.warning("relay message is not JSON; ignored", extra={"call_sid": self.call_sid})
            return None
        return message if isinstance(message, dict) else None

    async def _send(self, message: dict[str, Any]) -> bool:
        if self.ws.application_state != WebSocketState.CONNECTED:
            return False
        try:
            await self.ws.send_text(json.dumps(message))
        except (WebSocketDisconnect, RuntimeError, OSError):
            return False
        return True

    async def _close(self) -> None:
        if self.ws.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, OSError):
                await self.ws.close()

    # -- setup: which call, and may it have a session -------------------------------------

    async def _setup(self, message: dict[str, Any] | None) -> bool:
        message = message or {}
        call_sid = str(message.get("callSid") or "")
        ours = message.get("accountSid") == self.services.settings.twilio_account_sid
        if message.get("type") != "setup" or not ours or not _CALL_SID.match(call_sid):
            log.warning("relay setup refused: not a setup for our account")
            await self._refuse("relay-refused")
            return False
        claim = await self.blocking(channel.claim, self.services, call_sid)
        if claim != "ok":
            # No live state (never opened, opted out, over) or a session already held: a
            # replayed handshake opens nothing. Redis down: we can't hold a conversation.
            reason = "state-unavailable" if claim == "unavailable" else "relay-refused"
            log.warning("relay setup refused", extra={"call_sid": call_sid, "claim": claim})
            await self._refuse(reason)
            return False
        self.call_sid = call_sid
        self.cli = caller_id(str(message.get("from") or ""))
        try:
            self.called = parse_e164(str(message.get("to") or ""))
        except InvalidNumber:
            self.called = ""
        clinic = self.services.directory.by_number(self.called) if self.called else None
        if clinic is None or clinic.agent_kind != "rules":
            self.turn_runner = self.waiting
        log.info("relay session open", extra={"call_sid": call_sid})
        return True

    async def _refuse(self, reason: str) -> None:
        """`end` (a person, should Twilio be on the other side) and close: nothing written."""
        self.ended = True
        await self._send({"type": "end", "handoffData": channel.Handoff("person", reason).encode()})
        await self._close()

    # -- what Twilio tells us -------------------------------------------------------------

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if self.ended:
            return  # after `end` the caller is someone else's; Twilio closes the socket
        if kind == "prompt":
            if message.get("last") is False:
                return  # a partial utterance: the complete one follows
            speech = str(message.get("voicePrompt") or "")[:MAX_PROMPT].strip()
            self._then(lambda: self._turn(Heard(speech=speech)))
        elif kind == "dtmf":
            digit = str(message.get("digit") or "")
            if _DIGIT.match(digit):
                self._then(lambda: self._turn(Heard(digits=digit)))
        elif kind == "interrupt":
            self._interrupted(str(message.get("utteranceUntilInterrupt") or ""))
        elif kind == "error":
            # Its description may quote our text: the fact only.
            log.warning("relay error reported by Twilio", extra={"call_sid": self.call_sid})

    def _interrupted(self, heard: str) -> None:
        reply = self.reply
        if reply is not None and not reply.finished:
            reply.interrupted, reply.heard = True, heard  # stops the tokens now
            reply.cancel.set()  # and the turn's stream (the model's, if any)
            return
        said, self.last_said = self.last_said, ""
        if said:
            self._then(lambda: self._keep_only_heard(said, heard))

    def _then(self, step: Callable[[], Awaitable[None]]) -> None:
        """Run `step` after the session's work so far: one thing at a time, in order."""
        previous = self._work

        async def chained() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous
            if not self.ended:
                await step()

        self._work = asyncio.create_task(chained())

    # -- a turn ---------------------------------------------------------------------------

    async def _turn(self, heard: Heard) -> None:
        self.turns += 1
        reply = self.reply = _Reply()
        turn = engine.Turn(self.call_sid, heard, cli=self.cli, called=self.called)
        loop = asyncio.get_running_loop()
        items: asyncio.Queue[str | engine.TurnResult | BaseException] = asyncio.Queue()

        def produce() -> None:
            # In the pool: the engine streams the reply; each chunk crosses to the loop as
            # it comes. A barge-in sets `reply.cancel`, and the agent stops reading the model.
            try:
                for item in engine.stream_turn(self.services, turn, reply.cancel):
                    loop.call_soon_threadsafe(items.put_nowait, item)
            except BaseException as exc:  # the engine answers everything a caller does
                loop.call_soon_threadsafe(items.put_nowait, exc)

        producing = asyncio.ensure_future(self.turn_runner(produce))
        result: engine.TurnResult | None = None
        sent = False
        while result is None:
            item = await items.get()
            if isinstance(item, BaseException):
                log.error(
                    "relay turn failed; caller goes to a person",
                    extra={"call_sid": self.call_sid, "error": type(item).__name__},
                )
                reply.finished = True
                await producing
                await self._end(channel.Handoff("person", "relay-error"))
                return
            if isinstance(item, engine.TurnResult):
                result = item
                break
            for token in sentences(item):
                if reply.interrupted:
                    break
                sent = await self._send({"type": "text", "token": token, "last": False}) or sent
        await producing
        if sent and not reply.interrupted:
            await self._send({"type": "text", "token": "", "last": True})  # the reply is done
        reply.finished = True
        said = result.reply.say
        self.last_said = said
        if reply.interrupted:
            self.last_said = ""
            await self._keep_only_heard(said, reply.heard)
        next_ = result.reply.next
        if result.call is None or next_ != "listen":
            why = result.reply.reason or ("agent" if next_ == "person" else "goodbye")
            await self._end(channel.Handoff("person" if next_ == "person" else "hangup", why))

    async def _keep_only_heard(self, said: str, heard: str) -> None:
        await self.blocking(channel.keep_only_heard, self.services, self.call_sid, said, heard)

    async def _end(self, handoff: channel.Handoff) -> None:
        """Hand the call back to Twilio, which posts the `<Connect>` action with this."""
        if self.ended:
            return
        self.ended = True
        await self._send({"type": "end", "handoffData": handoff.encode()})
        log.info(
            "relay session ended",
            extra={"call_sid": self.call_sid, "next": handoff.next, "reason": handoff.reason},
        )
        self._closer = asyncio.create_task(self._close_later())

    async def _close_later(self) -> None:
        await asyncio.sleep(END_GRACE_SECONDS)
        await self._close()
