"""Each turn of a call is answered once: Twilio's retries and concurrent duplicates of it
get the first answer back, and nothing the turn does happens twice.

A turn is named by (CallSid, step): the Gather that asks for turn N says `?step=N` in its
action URL, and Twilio posts the caller's answer (and any retry of it) there. Before the
engine runs, one atomic Redis command (SET NX GET) claims that name; the request that wins
runs the turn and keeps its TwiML under the same key, every other one answers with that
TwiML, waiting briefly while the winner is still at work. A turn without a step (a Gather
made before steps were numbered) is named by what Twilio sent with it instead, for a
short while: a retry carries the same body.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import redis

from callgateway.calls import state as live_state

# While a claim's owner works, the key holds this marker and the owner's token: a claim
# whose owner died frees itself after CLAIM_SECONDS (Twilio's own timeout is 15 s).
PENDING = b"\x00"
CLAIM_SECONDS = 30
ANSWER_SECONDS = live_state.TTL_SECONDS  # the answer is kept as long as the call's state
UNNUMBERED_SECONDS = 20  # a turn named by its body: only a retry window, never a call
WAIT_SECONDS = 10.0  # a duplicate waits this long for the winner's answer
POLL_SECONDS = 0.02

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


def key(call_sid: str, step: int) -> str:
    return f"turn:{call_sid}:{step}"


def unnumbered_key(call_sid: str, speech: str, confidence: float | None, digits: str) -> str:
    body = f"{speech}\x1f{confidence}\x1f{digits}".encode()
    return f"turn:{call_sid}:b{hashlib.sha256(body).hexdigest()[:32]}"


def claim(client: redis.Redis, name: str, numbered: bool = True) -> Claim:
    """Claim the turn `name` in one round trip. Raises redis.RedisError."""
    token = PENDING + secrets.token_bytes(8)
    seconds = CLAIM_SECONDS if numbered else UNNUMBERED_SECONDS
    held = client.set(name, token, nx=True, ex=seconds, get=True)
    if held is None:
        return Claim(name, True, token)
    return Claim(name, False, answer=_answer(held))


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


def _answer(held: bytes) -> str | None:
    return None if held.startswith(PENDING) else held.decode()
