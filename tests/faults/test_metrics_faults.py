"""A service stopped: the fallback a caller gets is counted by what failed, and /metrics
still answers, saying which of its sources it could not read."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import responses
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from callgateway.adapters.clock import fixed
from callgateway.app import create_app
from callgateway.wiring import Services
from devtools.services import Service
from tests.support.booking import MONDAY_9AM, Phone
from tests.support.faults import assert_caller_is_served
from tests.support.services import service_stopped
from tests.support.settings import BASE_URL
from tests.support.twilio import TwilioSim

TOKEN = "scrape-token-0123456789abcdef"


def scrape(client: FlaskClient) -> dict[tuple[str, str], float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    return {
        (s.name, ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for s in family.samples
    }


@pytest.fixture
def client(make_services: Callable[..., Services], sqlite_url: str) -> FlaskClient:
    svc = make_services(sqlite_url, metrics_token=TOKEN)
    svc.clock = fixed(MONDAY_9AM)
    return create_app({"TESTING": True}, services=svc).test_client()


def test_a_caller_sent_to_a_person_because_redis_is_down_is_counted_as_a_fallback(
    client: FlaskClient, redis_server: Service, twilio_api: responses.RequestsMock
) -> None:
    key = ("callgateway_fallbacks_total", "reason=state-unavailable")
    before = scrape(client).get(key, 0.0)
    with service_stopped(redis_server):
        phone = Phone(TwilioSim(client, BASE_URL))
        phone.dial()
        assert_caller_is_served(200, phone.last)
        assert phone.dialled_person
        during = scrape(client)  # still answers, without what it cannot read
        assert during[("callgateway_scrape_source_up", "source=redis")] == 0
        assert during[("callgateway_scrape_source_up", "source=database")] == 1
    assert scrape(client)[key] == before + 1
