"""Environment settings are parsed strictly at start, and dev secrets never reach production."""

from __future__ import annotations

import pytest

from callgateway.config.settings import DEV_AUTH_TOKEN, Settings, SettingsError


def test_defaults_are_the_documented_dev_defaults() -> None:
    s = Settings.from_env({})
    assert s.database_url == "sqlite:///var/callgateway.db"
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.public_base_url == "http://127.0.0.1:8000"
    assert s.twilio_auth_token == DEV_AUTH_TOKEN


def test_secrets_are_not_in_the_repr() -> None:
    s = Settings.from_env({"TWILIO_AUTH_TOKEN": "tok-123", "SECRET_KEY": "sk-456"})
    assert "tok-123" not in repr(s) and "sk-456" not in repr(s)


@pytest.mark.parametrize("missing", ["TWILIO_AUTH_TOKEN", "SECRET_KEY", "CALLGATEWAY_SUBJECT_SALT"])
def test_production_refuses_to_start_on_a_dev_secret(missing: str) -> None:
    env = {
        "CALLGATEWAY_ENV": "production",
        "TWILIO_AUTH_TOKEN": "real-token",
        "SECRET_KEY": "real-secret",
        "CALLGATEWAY_SUBJECT_SALT": "real-salt",
    }
    del env[missing]
    with pytest.raises(SettingsError, match=f"^{missing}: required outside dev$"):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"CALLGATEWAY_ENV": "staging"}, "CALLGATEWAY_ENV"),
        ({"PUBLIC_BASE_URL": "gateway.example.org"}, "PUBLIC_BASE_URL"),
        ({"CALLGATEWAY_TRUSTED_PROXIES": "lots"}, "CALLGATEWAY_TRUSTED_PROXIES"),
    ],
)
def test_malformed_variables_are_named(env: dict[str, str], key: str) -> None:
    with pytest.raises(SettingsError, match=f"^{key}:"):
        Settings.from_env(env)


def test_trailing_slash_on_the_public_base_is_ignored() -> None:
    base = Settings.from_env({"PUBLIC_BASE_URL": "https://calls.example.org/"}).public_base_url
    assert base == "https://calls.example.org"
