"""Fixtures most integration modules share; a module that needs another shape defines its own.

Each module defines `svc` (the wired Services it tests against); these build on it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

from callgateway.app import create_app
from callgateway.wiring import Services
from tests.support.settings import BASE_URL
from tests.support.twilio import TwilioSim


@pytest.fixture
def tw(svc: Services) -> TwilioSim:
    """Signed webhooks into an app wired to this module's `svc`."""
    return TwilioSim(create_app({"TESTING": True}, services=svc).test_client(), BASE_URL)


@pytest.fixture
def twilio_api() -> Iterator[responses.RequestsMock]:
    """Twilio's REST API faked at the HTTP layer; tests register the answers they expect."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
