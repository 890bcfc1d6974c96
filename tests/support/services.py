"""Pytest plugin: real Redis, PostgreSQL and S3 (moto) on free loopback ports.

Each server starts the first time a test asks for it and is shared by the whole session;
all of them stop at the end. Fault tests stop and restart one on the same port with
`stop_service`/`restart_service`, or `with service_stopped(redis_server): ...`, which
always brings it back for the tests that follow.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devtools.services import (
    Service,
    create_database,
    drop_database,
    free_port,
    start_moto,
    start_postgres,
    start_redis,
)

__all__ = ["Service", "restart_service", "service_stopped", "stop_service"]


def stop_service(service: Service) -> None:
    """Stop the server process; its port stays reserved for `restart_service`."""
    service.stop()


def restart_service(service: Service, timeout: float = 60.0) -> None:
    """Start the server again on the same port (and data dir) and wait until it answers."""
    service.stop()
    service.start(timeout)


@contextmanager
def service_stopped(service: Service) -> Iterator[Service]:
    """Stop the server for the block; restart it afterwards even if the block fails."""
    stop_service(service)
    try:
        yield service
    finally:
        restart_service(service)


@pytest.fixture(scope="session")
def services_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: that lives under a root-only 0700 directory, and PostgreSQL
    # runs as the `postgres` user, which must be able to reach its data directory.
    path = Path(tempfile.mkdtemp(prefix="callgw-services-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server(services_dir: Path) -> Iterator[Service]:
    service = start_redis(free_port(), services_dir / "redis")
    yield service
    service.stop()


@pytest.fixture(scope="session")
def postgres_server(services_dir: Path) -> Iterator[Service]:
    """A PostgreSQL server; `.url` is its `callgateway` database."""
    service = start_postgres(free_port(), services_dir / "postgres")
    yield service
    service.stop()


@pytest.fixture(scope="session")
def s3_server(services_dir: Path) -> Iterator[Service]:
    """moto in server mode; `.url` is the S3 endpoint for every region."""
    service = start_moto(free_port(), services_dir / "moto")
    yield service
    service.stop()


@pytest.fixture(scope="module")
def fresh_postgres_url(postgres_server: Service, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new, empty database on the shared server for this test module; dropped after it."""
    stem = re.sub(r"[^a-z0-9_]", "_", request.module.__name__.rsplit(".", 1)[-1].lower())
    name = f"t_{stem[:40]}_{uuid.uuid4().hex[:8]}"
    url = create_database(postgres_server, name)
    yield url
    if postgres_server.running:
        drop_database(postgres_server, name)
