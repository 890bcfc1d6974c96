"""Fixtures for driving the staff console in a real Chromium (Debian's, via Playwright).

Import them into a test module: `from tests.support.console_browser import ...  # noqa: F401`.
Playwright cannot download its own browser here, so it drives /usr/bin/chromium (installed
by `make test` through `make system-deps`), one persistent profile per signed-in person so
their cookies never mix.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import responses

from callgateway.config.settings import Settings
from callgateway.wiring import Services, bootstrap
from tests.support.live_gateway import Gateway
from tests.support.settings import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "front desk password"
RIVERSIDE_STAFF = "front@riverside.example"
SPREE_STAFF = "empfang@spree.example"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@dataclass
class ConsoleGateway:
    gw: Gateway
    services: Services  # wired like the gateway, for looking at what it stored

    @property
    def console(self) -> str:
        return self.gw.base_url + "/console"

    def transfer_recordings(self, recording_id: int) -> str:
        """Run the recording lifecycle's transfer job for one row, in this process, with
        Twilio's REST API faked at the HTTP layer (the gateway's queue has no worker here)."""
        from callgateway.cli.terminal_phone import silent_wav
        from callgateway.db.models import Recording
        from recordings.lifecycle import transfer

        with self.services.db.session() as session:
            row = session.get(Recording, recording_id)
        assert row is not None
        twilio = self.services.twilio
        assert twilio is not None
        with responses.RequestsMock() as api:
            api.get(twilio.recording_media_url(row.recording_sid), body=silent_wav(2))
            api.delete(re.compile(rf".*/Recordings/{row.recording_sid}\.json$"), status=204)
            return transfer(self.services.recordings, recording_id)


@pytest.fixture(scope="module")
def console_gateway(live_gateway: Gateway) -> Iterator[ConsoleGateway]:
    """The live gateway with its buckets created and two console users: staff of the
    Riverside clinic, and staff of the Spree practice (the "other clinic")."""
    init = live_gateway.cli("storage", "init")
    assert init.returncode == 0, init.stderr
    for email, clinic in ((RIVERSIDE_STAFF, "riverside-physio"), (SPREE_STAFF, "spree-hausarzt")):
        added = live_gateway.cli(
            "users", "add", "--email", email, "--clinic", clinic, "--role", "staff",
            stdin=PASSWORD + "\n",
        )  # fmt: skip
        assert added.returncode == 0 or "already exists" in added.stderr, added.stderr
    with pytest.MonkeyPatch.context() as mp:
        # boto3 takes credentials from the process environment, as the gateway does.
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            mp.setenv(name, live_gateway.env[name])
        services = bootstrap(Settings.from_env(live_gateway.env))
        yield ConsoleGateway(live_gateway, services)
        services.db.dispose()
        services.redis.close()


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), f"{CHROMIUM} missing: run `make system-deps`"
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def open_browser(playwright_driver: Any) -> Iterator[Callable[..., Any]]:
    """`open_browser()` -> a fresh Chromium profile (its own cookies) and its first page."""
    contexts: list[Any] = []
    dirs: list[tempfile.TemporaryDirectory[str]] = []

    def launch(viewport: dict[str, int] = LAPTOP) -> Any:
        profile = tempfile.TemporaryDirectory(prefix="callgw-chromium-")
        dirs.append(profile)
        context = playwright_driver.chromium.launch_persistent_context(
            profile.name,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=viewport,
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.pages[0] if context.pages else context.new_page()

    yield launch
    for context in contexts:
        context.close()
    for profile in dirs:
        profile.cleanup()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
