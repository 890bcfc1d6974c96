"""The consent cache's Lua snippet (`cache.LUA_STATE_OF_CACHED`) on a real Redis: another
room's script that reads a cached value in its own round trip gets the very state that
`cache` wrote and that `cache.get` reads back, and treats whatever else it finds as a miss
just as `cache.state_from_raw` does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from consent import cache
from consent.ledger import STATES, Snapshot

CLINIC = "riverside-physio"
PATIENT = "+447700900123"  # in Ofcom's range for drama: nobody's real number
SALT = "test-salt"
# What another script does with the snippet: prepend it, then ask it about a value.
_ASK = cache.LUA_STATE_OF_CACHED + "return consent_state_of_cached(redis.call('GET', KEYS[1]))"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _lua_state(client: redis.Redis, key: str) -> str | None:
    found = client.eval(_ASK, 1, key)
    return None if found is None else found.decode()


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("version", [0, 7, 2**53])
def test_the_snippet_reads_the_state_that_a_put_wrote(
    client: redis.Redis, state: str, version: int
) -> None:
    assert cache.put(client, SALT, CLINIC, PATIENT, Snapshot(state, version, None), memo={})
    key = cache.key(SALT, CLINIC, PATIENT)
    assert _lua_state(client, key) == state == cache.get(client, SALT, CLINIC, PATIENT)


@pytest.mark.parametrize(
    "raw",
    [
        b"opted_out",  # no version
        b"none:",
        b"opted_in:abc",
        b"opted_out::7",
        b"opted_in:3:4",
        b"maybe:3",
        b":3",
        b"",
        b"opted_out\n:3",
        b"\xffnone:3",
        b"NONE:3",
    ],
)
def test_the_snippet_reads_any_other_value_as_state_from_raw_does(
    client: redis.Redis, raw: bytes
) -> None:
    key = cache.key(SALT, CLINIC, PATIENT)
    client.set(key, raw)
    assert _lua_state(client, key) == cache.state_from_raw(raw)
