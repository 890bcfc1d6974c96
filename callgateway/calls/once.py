"""Each turn of a call is answered once: Twilio's retries and concurrent duplicates of it
get the first answer back, and nothing the turn does happens twice.

A turn is named by (CallSid, step): the Gather that asks for turn N says `?step=N` in its
action URL, and Twilio posts the caller's answer (and any retry of it) there. Before the
engine runs, one atomic Redis command (SET NX GET) claims that name; the request that wins
runs the turn and keeps its TwiML under the same key, every other one answers with that
TwiML, waiting briefly while the winner is still at work. A turn without a step (a Gather
made before steps were numbered) is named by what Twilio sent with it instead, for a
short while: a retry carries the same body. The step after the recording announcement
(the recording-start webhook) is step 0.

A call that has ended takes no step at all: the terminal status callback marks it ended
(`mark_ended`, with dropping its live state, in one transaction), and the claim refuses
every step of an ended call in the same round trip.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis
from twilio.twiml.voice_response import VoiceResponse

from callgateway.calls import state as live_state
from callgateway.calls.twiml import hang_up

if TYPE_CHECKING:
    from callgateway.wiring import Services

log = logging.getLogger(__name__)

# While a claim's owner works, the key holds this marker and the owner's token: a claim
# whose owner died frees itself after CLAIM_SECONDS (Twilio's own timeout is 15 s).
PENDING = b"\x00"
CLAIM_SECONDS = 30
ANSWER_SECONDS = live_state.TTL_SECONDS  # the answer is kept as long as the call's state
# How long an ended call's mark is kept: a signed webhook can be replayed at any time, and
# past this mark the call log's terminal status refuses the paths that read it.
ENDED_SECONDS = 30 * 24 * 3600
ANNOUNCED = 0  # the step of the recording-start webhook, after the announcement
UNNUMBERED_SECONDS = 20  # a turn named by its body: only a retry window, never a call
WAIT_SECONDS = 10.0  # a duplicate waits this long for the winner's answer
POLL_SECONDS = 0.02

# KEYS: the turn, the call's ended mark. ARGV: our claim token, its TTL. Returns nil when
# the claim is ours, ENDED when the call has ended, else what the key holds.
_CLAIM = """
if redis.call('EXISTS', KEYS[2]) == 1 then return ARGV[3] end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', tonumber(ARGV[2]), 'GET')
"""
ENDED = b"\x01ended"

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a turn: `won` (run it, then `keep` the answer), else the
    answer already given (`answer`), or None while the winner has not finished."""

    key: str
    won: bool
    token: bytes = b""
    answer: str | None = None
    ended: bool = False


def key(call_sid: str, step: int) -> str:
    return f"turn:{call_sid}:{step}"


def unnumbered_key(call_sid: str, speech: str, confidence: float | None, digits: str) -> str:
    body = f"{speech}\x1f{confidence}\x1f{digits}".encode()
    return f"turn:{call_sid}:b{hashlib.sha256(body).hexdigest()[:32]}"


def ended_key(call_sid: str) -> str:
    return f"ended:{call_sid}"


def claim(services: Services, call_sid: str, name: str, numbered: bool = True) -> Claim:
    """Claim the turn `name` of the call in one round trip, unless the call has ended.
    Raises redis.RedisError."""
    script = services.memo.get("once.claim")
    if script is None:
        script = services.memo["once.claim"] = services.redis.register_script(_CLAIM)
    token = PENDING + secrets.token_bytes(8)
    seconds = CLAIM_SECONDS if numbered else UNNUMBERED_SECONDS
    held = script(keys=[name, ended_key(call_sid)], args=[token, seconds, ENDED])
    if held is None:
        return Claim(name, True, token)
    if held == ENDED:
        return Claim(name, False, ended=True)
    return Claim(name, False, answer=_answer(held))


def mark_ended(client: redis.Redis, call_sid: str) -> None:
    """The call is over: no step of it runs again, and its live state goes with it.
    Raises redis.RedisError."""
    pipe = client.pipeline(transaction=True)
    pipe.set(ended_key(call_sid), b"1", ex=ENDED_SECONDS)
    live_state.drop(pipe, call_sid)
    pipe.execute()


def has_ended(client: redis.Redis, call_sid: str) -> bool:
    """Raises redis.RedisError."""
    return bool(client.exists(ended_key(call_sid)))


def keep(client: redis.Redis, won: Claim, twiml: str, numbered: bool = True) -> None:
    """The winner's answer, for every later copy of the turn. Raises redis.RedisError."""
    client.set(won.key, twiml, ex=ANSWER_SECONDS if numbered else UNNUMBERED_SECONDS)


def release(client: redis.Redis, won: Claim) -> None:
    """The winner failed before it had an answer: let a retry run the turn. Only our own
    claim is released, never one taken after ours expired."""
    client.eval(_RELEASE, 1, won.key, won.token)


def wait(client: redis.Redis, lost: Claim, seconds: float = WAIT_SECONDS) -> str | None:
    """The winner's answer once it is kept; None if it is not within `seconds` (or the
    winner gave up and released the claim)."""
    if lost.answer is not None:
        return lost.answer
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        held = client.get(lost.key)
        if held is None:
            return None
        answer = _answer(held)
        if answer is not None:
            return answer
    return None


def answer(
    services: Services,
    call_sid: str,
    name: str,
    run: Callable[[], str],
    again_url: str,
    numbered: bool = True,
) -> str:
    """The TwiML of step `name` of the call, run once: `run()` for the request that claims
    the step; the kept answer for every copy; a hang-up once the call has ended. A copy
    that finds no answer in time pauses and posts the same step again (`again_url`), which
    by then has one. Without Redis the step runs unguarded: the engine and the flow find
    Redis down too and hand the caller to a person, whose work item is one per call."""
    try:
        claimed = claim(services, call_sid, name, numbered)
    except redis.RedisError:
        log.warning("step not claimed: Redis unavailable")
        return run()
    if claimed.ended:
        return hang_up()
    if not claimed.won:
        return _repeat(services, claimed, again_url)
    try:
        twiml = run()
    except BaseException:
        with contextlib.suppress(redis.RedisError):
            release(services.redis, claimed)  # a retry may then run the step
        raise
    try:
        keep(services.redis, claimed, twiml, numbered)
    except redis.RedisError:
        log.warning("step answer not kept: Redis unavailable")
    return twiml


def _repeat(services: Services, lost: Claim, again_url: str) -> str:
    try:
        twiml = wait(services.redis, lost)
    except redis.RedisError:
        twiml = None
    log.info("repeated step answered from the first", extra={"answered": twiml is not None})
    if twiml is not None:
        return twiml
    resp = VoiceResponse()
    resp.pause(length=1)
    resp.redirect(again_url, method="POST")
    return str(resp)


def _answer(held: bytes) -> str | None:
    return None if held.startswith(PENDING) else held.decode()
