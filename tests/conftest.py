"""Shared fixtures: real services (tests.support.services), wired app, and a signing Twilio.

Helpers live in `tests/support`; this file holds fixtures only."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from callgateway.app import create_app
from callgateway.config import Config, load_config
from callgateway.db import migrate
from callgateway.db.models import Base
from callgateway.wiring import Services, bootstrap
from devtools.services import Service
from tests.support.settings import BASE_URL, EXAMPLE_CONFIG, make_settings
from tests.support.twilio import TwilioSim

pytest_plugins = ["tests.support.services", "tests.support.netguard"]


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
    """A migrated PostgreSQL database, emptied before each test.

    TRUNCATE (~100 ms a test) rather than a savepoint per test rolled back (~0.2 ms): the
    code under test opens its own engines through bootstrap, races threads with one engine
    each, runs the CLI as a subprocess and has PostgreSQL stopped under it, none of which
    can happen inside one outer transaction."""
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
