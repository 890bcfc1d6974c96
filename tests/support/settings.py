"""Where the project is, and the settings the tests wire the gateway with."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from callgateway.config.settings import Settings
from tests.support.twilio import TOKEN

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = ROOT / "config" / "example.yaml"
BASE_URL = "https://gateway.example.test"  # what Twilio signs; not the test client's host


def make_settings(database_url: str, redis_url: str, **overrides: Any) -> Settings:
    settings = Settings(
        env="test",
        config_path=EXAMPLE_CONFIG,
        database_url=database_url,
        redis_url=redis_url,
        twilio_auth_token=TOKEN,
        public_base_url=BASE_URL,
        twilio_api_base="https://api.twilio.com",
        # Applied by the webhook that appends: a test reads its own writes at once. The
        # background drainer has its own tests (tests/integration/test_journal.py).
        journal="inline",
    )
    return replace(settings, **overrides)
