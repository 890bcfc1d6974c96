"""Fixtures of the fault tests; their helpers are in tests/support/faults.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

from tests.support.twilio import rest_that_works


@pytest.fixture
def twilio_api() -> Iterator[responses.RequestsMock]:
    """Twilio's REST API at the HTTP layer: start recording and send SMS succeed."""
    with rest_that_works() as mock:
        yield mock
