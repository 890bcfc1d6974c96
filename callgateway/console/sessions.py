"""Console sign-in sessions in Redis: one random token per sign-in, and each user's set of
tokens, so that disabling an account, resetting its password or changing its role ends
every session it has, wherever the cookie was copied.

A request is signed in only while its token exists (`auth.load_user`), and only while the
account is active: a disabled account is out even if Redis could not be told.
"""

from __future__ import annotations

import redis

SESSION_SECONDS = 8 * 3600  # one working day


def token_key(token: str) -> str:
    return f"console:session:{token}"


def _user_key(user_id: int) -> str:
    return f"console:user-sessions:{user_id}"


def start(client: redis.Redis, user_id: int, token: str) -> None:
    pipe = client.pipeline()
    pipe.set(token_key(token), str(user_id), ex=SESSION_SECONDS)
    pipe.sadd(_user_key(user_id), token)
    pipe.expire(_user_key(user_id), SESSION_SECONDS)
    pipe.execute()


def owner(client: redis.Redis, token: str) -> str | None:
    found = client.get(token_key(token))
    return found.decode() if found is not None else None


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
