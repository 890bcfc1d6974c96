"""A live gateway (`callgateway serve` under gunicorn) against real services."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from callgateway.db import migrate
from callgateway.devservices import Service, free_port
from tests.conftest import CALLGATEWAY, ROOT, cli_env, run_cli


@dataclass
class Gateway:
    base_url: str
    env: dict[str, str]
    database_url: str
    log_path: Path
    # Everything personal the tests fed the gateway, for the log scan at the end.
    said: set[str] = field(default_factory=set)
    numbers: set[str] = field(default_factory=set)

    def cli(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        self.numbers.update(a for a in args if a.startswith("+") and a[1:].isdigit())
        self.said.update(line.strip() for line in stdin.splitlines() if len(line.strip()) >= 12)
        return run_cli(list(args), self.env, stdin)

    def log_text(self) -> str:
        return self.log_path.read_text()


@pytest.fixture(scope="session")
def live_gateway(
    tmp_path_factory: pytest.TempPathFactory, redis_server: Service, s3_server: Service
) -> Iterator[Gateway]:
    workdir = tmp_path_factory.mktemp("gateway")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    database_url = f"sqlite:///{workdir / 'gateway.db'}"
    migrate.upgrade(database_url)
    env = cli_env(
        DATABASE_URL=database_url,
        REDIS_URL=redis_server.url.rsplit("/", 1)[0] + "/5",
        AWS_ENDPOINT_URL=s3_server.url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        PUBLIC_BASE_URL=base_url,
    )
    log_path = workdir / "gateway.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [CALLGATEWAY, "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(base_url + "/healthz", timeout=1).ok:
                break
        except requests.ConnectionError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("gateway did not start:\n" + log_path.read_text()[-2000:])
        time.sleep(0.2)
    yield Gateway(base_url, env, database_url, log_path)
    proc.terminate()
    proc.wait(timeout=15)
