"""DATABASE_URL and REDIS_URL are checked at start, so no process runs on an unusable one."""

from __future__ import annotations

import pytest

from callgateway.config.settings import Settings, SettingsError


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("nope://", "unknown database dialect 'nope'"),
        ("postgresql+nope://u:hunter2@db/x", "unknown database dialect 'postgresql+nope'"),
        ("notaurl", "not a SQLAlchemy URL"),
        ("postgresql://u:hunter2@db:port/x", "not a SQLAlchemy URL"),
        ("", "not a SQLAlchemy URL"),
        ("mysql://u:hunter2@db/x", "driver for mysql+mysqldb is not installed"),
    ],
)
def test_unusable_database_urls_are_named(url: str, words: str) -> None:
    with pytest.raises(SettingsError, match=r"^DATABASE_URL: ") as info:
        Settings.from_env({"DATABASE_URL": url})
    assert words in str(info.value)
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "notaurl",
        "",
        "http://127.0.0.1:6379/0",
        "redis://:hunter2@h:port/0",
        "redis://h/0?socket_timeout=x",
    ],
)
def test_unusable_redis_urls_are_named(url: str) -> None:
    with pytest.raises(SettingsError, match=r"^REDIS_URL: ") as info:
        Settings.from_env({"REDIS_URL": url})
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    "env",
    [
        {"DATABASE_URL": "sqlite:///var/x.db"},
        {"DATABASE_URL": "sqlite://"},
        {"DATABASE_URL": "postgresql://u:p@db.internal:5432/callgw"},
        {"DATABASE_URL": "postgresql+psycopg://u@/callgw?host=/run/postgresql"},
        {"REDIS_URL": "redis://127.0.0.1:6379/0"},
        {"REDIS_URL": "rediss://:secret@cache.internal:6380/2"},
        {"REDIS_URL": "unix:///run/redis.sock?db=1"},
    ],
)
def test_usable_urls_are_kept_as_given(env: dict[str, str]) -> None:
    s = Settings.from_env(env)
    assert (s.database_url, s.redis_url) == (
        env.get("DATABASE_URL", Settings.database_url),
        env.get("REDIS_URL", Settings.redis_url),
    )
