"""Shared fixtures: real services (tests.services), wired app, and a signing Twilio."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from callgateway.app import create_app
from callgateway.config import Config, load_config
from callgateway.config.settings import Settings
from callgateway.db import migrate
from callgateway.db.models import Base
from callgateway.wiring import Services, bootstrap
from devtools.services import Service
from tests.twilio import TOKEN, TwilioSim

pytest_plugins = ["tests.services", "tests.netguard"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = ROOT / "config" / "example.yaml"
BASE_URL = "https://gateway.example.test"  # what Twilio signs; not the test client's host
CALLGATEWAY = str(Path(sys.executable).parent / "callgateway")


@pytest.fixture(scope="session")
def example_config() -> Config:
    return load_config(EXAMPLE_CONFIG)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="module")
def _pg_migrated(fresh_postgres_url: str) -> str:
    migrate.upgrade(fresh_postgres_url)
    return fresh_postgres_url


@pytest.fixture
def pg_url(_pg_migrated: str) -> str:
    """A migrated PostgreSQL database, emptied before each test."""
    from sqlalchemy import create_engine

    engine = create_engine(_pg_migrated)
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return _pg_migrated


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Integration tests run on both backends, with the same migrations."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return request.getfixturevalue(name)


@pytest.fixture
def redis_url(redis_server: Service) -> str:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()
    return redis_server.url


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


@pytest.fixture
def make_services(redis_url: str, example_config: Config) -> Iterator[Callable[..., Services]]:
    made: list[Services] = []

    def make(database_url: str, config: Config | None = None, **overrides: Any) -> Services:
        svc = bootstrap(
            make_settings(database_url, redis_url, **overrides), config or example_config
        )
        made.append(svc)
        return svc

    yield make
    for svc in made:
        svc.db.dispose()
        svc.redis.close()


@pytest.fixture
def services(make_services: Callable[..., Services], sqlite_url: str) -> Services:
    return make_services(sqlite_url)


@pytest.fixture
def app(services: Services) -> Flask:
    return create_app({"TESTING": True}, services=services)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def twilio(client: FlaskClient) -> TwilioSim:
    return TwilioSim(client, BASE_URL)


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "CALLGATEWAY_"))}
    env.update(
        CALLGATEWAY_ENV="test",
        CALLGATEWAY_CONFIG=str(EXAMPLE_CONFIG),
        TWILIO_AUTH_TOKEN=TOKEN,
    )
    env.update(extra)
    return env


def run_cli(
    args: list[str], env: dict[str, str], stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CALLGATEWAY, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=ROOT,
    )
