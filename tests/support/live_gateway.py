"""A live gateway: `callgateway serve` (gunicorn) on a free port, the dev fake of Twilio's REST
API beside it, and what the tests fed it (for the log scan)."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

from devtools.fake_twilio import make_server
from devtools.services import free_port
from tests.support.cli import CALLGATEWAY, run_cli
from tests.support.settings import ROOT


@dataclass
class Gateway:
    base_url: str
    env: dict[str, str]
    database_url: str
    log_path: Path
    # Everything personal the tests fed the gateway, for the log scan when it stops.
    said: set[str] = field(default_factory=set)
    numbers: set[str] = field(default_factory=set)

    def cli(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        self.numbers.update(a for a in args if a.startswith("+") and a[1:].isdigit())
        self.said.update(line.strip() for line in stdin.splitlines() if len(line.strip()) >= 12)
        return run_cli(list(args), self.env, stdin)

    def log_text(self) -> str:
        return self.log_path.read_text()


def assert_log_holds_no_number_or_speech(gw: Gateway, also: Iterable[str] = ()) -> None:
    """No number fed to `gw` (nor any in `also`) is in its log in clear, in full or in
    national form (no country code), and no phrase said to it is there either."""
    log = gw.log_text()
    for number in gw.numbers | set(also):
        assert number not in log and number[-10:] not in log, f"a number in {gw.log_path}"
    for phrase in gw.said:
        assert phrase not in log, f"speech in {gw.log_path}"


@contextmanager
def serving(env: dict[str, str], log_path: Path, workers: int = 2) -> Iterator[str]:
    """Run `callgateway serve` on a free port until the block ends; yields its base URL.

    The caller's env must not set PUBLIC_BASE_URL: it is the URL of the port chosen here.
    """
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {**env, "PUBLIC_BASE_URL": base_url}
    with log_path.open("a") as log:
        proc = subprocess.Popen(
            [CALLGATEWAY, "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        # Generous: on a loaded 2-core CI box importing the app can take seconds.
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(base_url + "/healthz", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gateway did not start:\n" + log_path.read_text()[-2000:])
            time.sleep(0.2)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def fake_twilio(log_path: Path) -> Iterator[str]:
    """The dev fake of Twilio's REST API on a free port: no test ever reaches api.twilio.com."""
    server = make_server(free_port(), log_path)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
