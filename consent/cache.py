"""The gate's Redis cache: one key per (clinic, number), written through on every event.

Values are "<state>:<version>", the version being the ledger id of the newest event. A put
only lands when its version is at least the cached one, so neither a reader refilling a
miss from a database read that just went stale nor two events committing out of order can
put an older state back over a newer one (which would let an opted-out number through).
Keys hold a keyed hash of the number, never the number itself. Entries expire so that a
write-through lost to a Redis blip heals by itself within CACHE_TTL_SECONDS.

This module alone knows the value format. A Lua script elsewhere that must read a cached
value in the same round trip as its own work prepends LUA_STATE_OF_CACHED (below) and asks
`consent_state_of_cached(value)`, exactly as Python code asks `state_from_raw(value)`.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from redis.commands.core import Script

from callgateway.phone import subject_hash
from consent.ledger import STATES, Snapshot

log = logging.getLogger(__name__)

CACHE_TTL_SECONDS = 60

# KEYS[1] key; ARGV[1] state, ARGV[2] version, ARGV[3] ttl. Returns 1 when written.
_PUT_IF_NEWER = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local v = tonumber(string.match(cur, ':(%d+)$'))
  if v and v > tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], 'EX', tonumber(ARGV[3]))
return 1
"""

# Lua for other rooms' scripts: defines `consent_state_of_cached(value)`, the state a cached
# value holds, or nil for anything that is not a known state (which the caller must treat
# as a miss: the database answers). Prepend it to a script; it returns nothing by itself.
# It answers as `state_from_raw` does for every value (tests/integration prove it on Redis):
# the text before the last ':' (the whole value when there is none), when it is a state.
LUA_STATE_OF_CACHED = (
    "local consent_states = {"
    + ", ".join(f"['{state}'] = true" for state in STATES)
    + """}
local function consent_state_of_cached(value)
  local state = string.match(value, '^(.*):') or value
  if consent_states[state] then return state end
  return nil
end
"""
)


class CacheUnavailable(RuntimeError):
    """Redis could not be read or written."""


def key(salt: str, clinic_id: str, phone: str) -> str:
    """The cache key of a number at a clinic: a keyed hash, never the number."""
    return f"consent:{clinic_id}:{subject_hash(phone, salt)}"


def get(client: redis.Redis, salt: str, clinic_id: str, phone: str) -> str | None:
    """The cached state, None on a miss; CacheUnavailable when Redis cannot answer."""
    try:
        raw = client.get(key(salt, clinic_id, phone))
    except redis.RedisError as exc:
        raise CacheUnavailable(type(exc).__name__) from None
    return state_from_raw(raw)


def state_from_raw(raw: bytes | None) -> str | None:
    """A cached value's state; None for a miss. Anything unexpected is a miss too: the
    database answers instead."""
    if raw is None:
        return None
    state = raw.decode(errors="replace").rsplit(":", 1)[0]
    return state if state in STATES else None


def put(
    client: redis.Redis,
    salt: str,
    clinic_id: str,
    phone: str,
    snap: Snapshot,
    *,
    memo: dict[Any, Any],
) -> bool:
    """Write the snapshot unless a newer one is cached. False when Redis failed. `memo` is
    the process's memo, where the script is registered once."""
    try:
        # EVALSHA, loading the script on first use (or after a Redis restart).
        _put_script(client, memo)(
            keys=[key(salt, clinic_id, phone)],
            args=[snap.state, snap.version, CACHE_TTL_SECONDS],
            client=client,
        )
    except redis.RedisError as exc:
        log.warning(
            "consent cache write failed",
            extra={"clinic": clinic_id, "error": type(exc).__name__},
        )
        return False
    return True


def _put_script(client: redis.Redis, memo: dict[Any, Any]) -> Script:
    script = memo.get("consent_put_if_newer")
    if script is None:  # one Script per process: it hashes the source once
        script = memo["consent_put_if_newer"] = client.register_script(_PUT_IF_NEWER)
    return script


def forget(client: redis.Redis, salt: str, clinic_id: str, phone: str) -> bool:
    """Drop the cached state (after erasure or a retention sweep removed ledger rows, whose
    ids SQLite may hand out again). The next read refills it from the database."""
    try:
        client.delete(key(salt, clinic_id, phone))
    except redis.RedisError as exc:
        log.warning(
            "consent cache delete failed",
            extra={"clinic": clinic_id, "error": type(exc).__name__},
        )
        return False
    return True
