"""/metrics: Prometheus's text format, for a configured network or a bearer token only;
the counters move when callers call, book, are refused by the gate or meet a failure, and
the scrape-time figures read the outbox, RQ and the recordings waiting at Twilio. No label
ever holds a number, a name or a CallSid."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from callgateway.adapters.clock import fixed
from callgateway.app import create_app
from callgateway.wiring import Services
from tests.support.booking import MONDAY_9AM, Phone, book_tuesday_afternoon
from tests.support.console import Browser, add_user
from tests.support.settings import BASE_URL
from tests.support.twilio import PATIENT, TwilioSim, rest_that_works, sid

TOKEN = "scrape-token-0123456789abcdef"
OUTSIDE = {"REMOTE_ADDR": "203.0.113.9"}  # TEST-NET-3: not in any allowed network


def scrape(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.status_code
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    text = response.get_data(as_text=True)
    assert PATIENT not in text and PATIENT[-10:] not in text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def svc(make_services: Callable[..., Services], sqlite_url: str) -> Services:
    services = make_services(sqlite_url, metrics_token=TOKEN, metrics_allow_cidrs=())
    services.clock = fixed(MONDAY_9AM)
    return services


@pytest.fixture
def client(svc: Services) -> FlaskClient:
    return create_app({"TESTING": True}, services=svc).test_client()


def test_metrics_is_404_when_neither_a_network_nor_a_token_is_configured(
    make_services: Callable[..., Services], sqlite_url: str
) -> None:
    svc = make_services(sqlite_url, metrics_allow_cidrs=(), metrics_token=None)
    client = create_app({"TESTING": True}, services=svc).test_client()
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer x"}).status_code == 404


def test_metrics_needs_the_bearer_token_from_outside_the_allowed_network(
    make_services: Callable[..., Services], sqlite_url: str
) -> None:
    svc = make_services(sqlite_url, metrics_allow_cidrs=("10.0.0.0/8",), metrics_token=TOKEN)
    client = create_app({"TESTING": True}, services=svc).test_client()
    assert client.get("/metrics", environ_base=OUTSIDE).status_code == 403
    wrong = {"Authorization": "Bearer not-the-token-at-all-000"}
    assert client.get("/metrics", headers=wrong, environ_base=OUTSIDE).status_code == 403
    right = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/metrics", headers=right, environ_base=OUTSIDE).status_code == 200
    inside = {"REMOTE_ADDR": "10.1.2.3"}
    assert client.get("/metrics", environ_base=inside).status_code == 200


def test_behind_a_trusted_proxy_the_forwarded_client_is_the_one_checked(
    make_services: Callable[..., Services], sqlite_url: str
) -> None:
    # The proxy is on loopback; an outside client it forwards must not pass as loopback.
    svc = make_services(sqlite_url, metrics_allow_cidrs=("127.0.0.0/8",), trusted_proxies=1)
    client = create_app({"TESTING": True}, services=svc).test_client()
    forwarded = {"X-Forwarded-For": "203.0.113.9"}
    assert client.get("/metrics", headers=forwarded).status_code == 403
    assert client.get("/metrics").status_code == 200  # Prometheus on the host itself


def test_a_webhook_is_counted_by_route_and_status_not_by_path_or_caller(
    svc: Services, client: FlaskClient
) -> None:
    before = scrape(client)
    tw = TwilioSim(client, BASE_URL)
    assert tw.call(sid("CA")).status_code == 200
    assert tw.post("/twilio/voice", {"CallSid": sid("CA")}, signature="forged").status_code == 403
    after = scrape(client)
    name = "callgateway_webhook_duration_seconds_count"
    assert value(after, name, route="/twilio/voice", status="200") == (
        value(before, name, route="/twilio/voice", status="200") + 1
    )
    assert value(after, name, route="/twilio/voice", status="403") == (
        value(before, name, route="/twilio/voice", status="403") + 1
    )


def test_a_booking_moves_the_turn_and_booking_counters_and_fills_the_outbox(
    svc: Services, client: FlaskClient
) -> None:
    before = scrape(client)
    with rest_that_works():
        book_tuesday_afternoon(TwilioSim(client, BASE_URL))
    after = scrape(client)
    booked = "callgateway_bookings_total"
    assert value(after, booked, event="booked") == value(before, booked, event="booked") + 1
    turns = "callgateway_agent_turns_total"
    assert value(after, turns, agent="rules") == value(before, turns, agent="rules") + 2
    # The appointment's bucket copy and confirmation SMS wait in the outbox for their job,
    # which RQ holds (no worker runs here).
    assert value(after, "callgateway_outbox_pending") >= 1
    assert value(after, "callgateway_rq_jobs", queue="default", state="queued") >= 1
    assert value(after, "callgateway_scrape_source_up", source="database") == 1
    assert value(after, "callgateway_scrape_source_up", source="redis") == 1


def test_an_opted_out_caller_counts_as_a_consent_denial_not_as_a_fallback(
    svc: Services, client: FlaskClient
) -> None:
    tw = TwilioSim(client, BASE_URL)
    assert tw.sms("STOP").status_code == 200
    before = scrape(client)
    with rest_that_works():
        phone = Phone(tw)
        phone.dial()  # greeting, announcement, then the gate: straight to the team
        assert phone.dialled_person
    after = scrape(client)
    denials = {k: v for k, v in after.items() if k[0] == "callgateway_consent_denials_total"}
    assert (
        sum(denials.values())
        == sum(v for k, v in before.items() if k[0] == "callgateway_consent_denials_total") + 1
    )
    fallbacks = "callgateway_fallbacks_total"
    assert sum(v for k, v in after.items() if k[0] == fallbacks) == sum(
        v for k, v in before.items() if k[0] == fallbacks
    )


def test_a_failed_console_sign_in_is_counted(svc: Services, client: FlaskClient) -> None:
    add_user(svc, "amy@riverside.example", ["riverside-physio"])
    before = scrape(client)
    assert Browser(client).login("amy@riverside.example", "wrong password").status_code == 401
    after = scrape(client)
    name = "callgateway_console_signin_failures_total"
    assert value(after, name, why="bad-credentials") == (
        value(before, name, why="bad-credentials") + 1
    )
