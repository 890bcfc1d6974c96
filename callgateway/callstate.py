"""Live state of a call in Redis under its CallSid; the database keeps what must outlive it."""

from __future__ import annotations

import json
from typing import Any

import redis

TTL_SECONDS = 4 * 3600


def _key(call_sid: str) -> str:
    return f"call:{call_sid}"


def load(client: redis.Redis, call_sid: str) -> dict[str, Any]:
    raw = client.get(_key(call_sid))
    return json.loads(raw) if raw else {}


# Writers also take a pipeline: the state is saved in the same transaction as the journal.
Writer = redis.Redis | redis.client.Pipeline


def save(client: Writer, call_sid: str, state: dict[str, Any]) -> None:
    client.set(_key(call_sid), json.dumps(state, default=str), ex=TTL_SECONDS)


def drop(client: Writer, call_sid: str) -> None:
    client.delete(_key(call_sid))
