"""Pytest plugin for the region-storage tests; a module that uses them says so with
`pytest_plugins = ["tests.support.region_fixtures"]`.

Each test gets its own bucket names (the moto server is shared by the whole session), the
buckets created in their own AWS regions, and Services wired to that endpoint.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from callgateway.config import Config
from callgateway.wiring import Services
from devtools.services import Service
from tests.support.regions import CREDENTIALS, create_buckets, write_config


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, s3_server: Service) -> str:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return s3_server.url


@pytest.fixture
def region_config_path(tmp_path: Path) -> Path:
    return tmp_path / "config.yaml"


@pytest.fixture
def region_config(region_config_path: Path) -> Config:
    """The example config with fresh bucket names, also on disk at `region_config_path`."""
    return write_config(region_config_path, uuid.uuid4().hex[:10])


@pytest.fixture
def stored_services(
    make_services: Callable[..., Services],
    sqlite_url: str,
    region_config: Config,
    aws_env: str,
) -> Services:
    """Services on SQLite and real Redis, with five fresh region buckets on moto."""
    svc = make_services(sqlite_url, region_config, aws_endpoint_url=aws_env)
    create_buckets(svc)
    return svc
