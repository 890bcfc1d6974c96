"""Live state of a call in Redis under its CallSid; the database keeps what must outlive it."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import redis

from callgateway.agent.rules import OPENING
from callgateway.config import Clinic

TTL_SECONDS = 4 * 3600


def key(call_sid: str) -> str:
    return f"call:{call_sid}"


def encode(state: dict[str, Any]) -> str:
    return json.dumps(state, default=str)


def load(client: redis.Redis, call_sid: str) -> dict[str, Any]:
    return decode(client.get(key(call_sid)))


def decode(raw: bytes | None) -> dict[str, Any]:
    return json.loads(raw) if raw else {}


# Writers also take a pipeline: the state is saved in the same transaction as the journal.
Writer = redis.Redis | redis.client.Pipeline


def save(client: Writer, call_sid: str, state: dict[str, Any]) -> None:
    client.set(key(call_sid), encode(state), ex=TTL_SECONDS)


def drop(client: Writer, call_sid: str) -> None:
    client.delete(key(call_sid))


def forget(client: redis.Redis, call_sid: str) -> None:
    """Drop the live state when the call (or its AI part) ends; if Redis is down it
    expires by itself."""
    with contextlib.suppress(redis.RedisError):
        drop(client, call_sid)


def new_state(cli: str, called: str, clinic: Clinic) -> dict[str, object]:
    """The live state of a conversation the AI has just opened."""
    return {
        "clinic_id": clinic.id,
        "called": called,
        # What a turn needs of the call-log row, so that a turn reads no database row.
        "call": {"cli": cli, "called": called, "clinic_id": clinic.id},
        "stage": "start",
        "misses": 0,
        "last_prompt": OPENING,
    }
