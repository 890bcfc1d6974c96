"""Console sign-in sessions in Redis: one random token per sign-in, and each user's set of
tokens, so that disabling an account, resetting its password or changing its role ends
every session it has, wherever the cookie was copied.

A request is signed in only while its token exists (`auth.load_user`), and only while the
account is active: a disabled account is out even if Redis could not be told.

Sessions extend while in use: each request moves the idle deadline on (IDLE_SECONDS), up
to an absolute cap from sign-in (MAX_SECONDS), after which the person signs in again. The
desk that works all day is never signed out mid-afternoon; a console left open overnight
is. Times come from the wiring's clock, so tests can play a whole clinic day.
"""

from __future__ import annotations

import redis

IDLE_SECONDS = 60 * 60  # an hour without a request ends the session
MAX_SECONDS = 14 * 3600  # the longest clinic day, from 07:00 to 21:00, then sign in again
SESSION_SECONDS = MAX_SECONDS  # how long the per-user token set is kept


def token_key(token: str) -> str:
    return f"console:session:{token}"


def _user_key(user_id: int) -> str:
    return f"console:user-sessions:{user_id}"


def _value(user_id: int, started: float, seen: float) -> str:
    return f"{user_id}:{int(started)}:{int(seen)}"


def start(client: redis.Redis, user_id: int, token: str, now: float) -> None:
    pipe = client.pipeline()
    pipe.set(token_key(token), _value(user_id, now, now), ex=IDLE_SECONDS)
    pipe.sadd(_user_key(user_id), token)
    pipe.expire(_user_key(user_id), SESSION_SECONDS)
    pipe.execute()


def owner(client: redis.Redis, token: str, now: float) -> str | None:
    """The user id this token signs in, and the session extended; None once it has been
    idle too long or reached the cap (and then it is gone)."""
    found = client.get(token_key(token))
    if found is None:
        return None
    user_id, _, times = found.decode().partition(":")
    started_raw, _, seen_raw = times.partition(":")
    if not (started_raw.isdigit() and seen_raw.isdigit()):
        return None
    started, seen = int(started_raw), int(seen_raw)
    if now - seen > IDLE_SECONDS or now - started > MAX_SECONDS:
        client.delete(token_key(token))
        return None
    remaining = int(min(IDLE_SECONDS, MAX_SECONDS - (now - started))) + 1
    client.set(token_key(token), _value(int(user_id), started, now), ex=max(remaining, 1))
    return user_id


def end(client: redis.Redis, user_id: int, token: str) -> None:
    pipe = client.pipeline()
    pipe.delete(token_key(token))
    pipe.srem(_user_key(user_id), token)
    pipe.execute()


def end_all(client: redis.Redis, user_id: int, keep: str = "") -> int:
    """End every session of this user but `keep` (the admin's own, when they act on
    themselves); returns how many were still alive."""
    tokens = [t.decode() for t in client.smembers(_user_key(user_id))]
    doomed = [t for t in tokens if t != keep]
    if not doomed:
        return 0
    pipe = client.pipeline()
    for token in doomed:
        pipe.delete(token_key(token))
    pipe.srem(_user_key(user_id), *doomed)
    return sum(int(n) for n in pipe.execute()[: len(doomed)])
