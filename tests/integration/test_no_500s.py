"""No request from the attacks of issue 16 gets a 500: an unsigned body over the size limit
on any webhook, and record ids or `before=` values bigger than any id (past 64 bits, or
past what a PostgreSQL `integer` holds) on the console's routes. SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

import pytest

from callgateway.adapters.clock import fixed
from callgateway.app import create_app
from callgateway.db.models import ConsentEvent
from callgateway.wiring import Services
from tests.support.console import NOW, Browser, add_user
from tests.support.twilio import PATIENT, TwilioSim, sid

HUGE = [str(2**64 + 5), str(2**63), str(2**40), "9" * 40]
WEBHOOKS = ["/twilio/sms", "/twilio/voice", "/twilio/voice/turn", "/twilio/voice/status"]
# Every console route that takes a record id in its path.
ID_ROUTES = [
    "/console/messages/{}/handled",
    "/console/outbound/checkins/{}/active",
    "/console/outbound/checkins/{}/alerts",
    "/console/outbound/checkins/{}/delete",
    "/console/items/{}/claim",
    "/console/items/{}/release",
    "/console/items/{}/done",
    "/console/reveal/call/{}",
    "/console/voicemails/{}/play",
]
BEFORE_ROUTES = ["/console/calls", "/console/consent"]


@pytest.fixture
def svc(make_services: Callable[..., Services], db_url: str) -> Services:
    services = make_services(db_url)
    services.clock = fixed(NOW)
    return services


@pytest.fixture
def browser(svc: Services) -> Browser:
    add_user(svc, "admin@group.example", [c.id for c in svc.config.clinics], role="admin")
    browser = Browser(create_app({"TESTING": True}, services=svc).test_client())
    assert browser.login("admin@group.example").status_code == 303
    return browser


@pytest.mark.parametrize("path", WEBHOOKS)
@pytest.mark.parametrize("signature", [None, "forged"])
def test_an_unsigned_body_over_the_limit_is_refused_without_a_500(
    tw: TwilioSim, svc: Services, path: str, signature: str | None
) -> None:
    body = urlencode({"MessageSid": sid("SM"), "From": PATIENT, "Body": "STOP" * 70_000})
    assert len(body) > 256 * 1024
    response = tw.client.post(
        path,
        data=body,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature} if signature else {},
    )
    assert response.status_code in (403, 413)
    with svc.db.session() as s:
        assert s.query(ConsentEvent).count() == 0


def test_a_signed_body_over_the_limit_is_413(tw: TwilioSim) -> None:
    params = tw.voice_params(sid("CA"), Padding="x" * 300_000)
    assert tw.post("/twilio/voice", params).status_code == 413


@pytest.mark.parametrize("route", ID_ROUTES)
def test_an_id_bigger_than_any_record_is_not_found(browser: Browser, route: str) -> None:
    for value in HUGE:
        assert browser.post(route.format(value)).status_code == 404, value
    # The largest id a table holds reaches the view, which finds no such record.
    assert browser.post(route.format(2**31 - 1)).status_code in (403, 404)


@pytest.mark.parametrize("route", BEFORE_ROUTES)
def test_a_before_that_is_not_an_id_is_a_bad_request(browser: Browser, route: str) -> None:
    for value in [*HUGE, "-1", "0", "abc", "1e9"]:
        assert browser.get(f"{route}?before={value}").status_code == 400, value


@pytest.mark.parametrize("route", BEFORE_ROUTES)
def test_a_before_in_range_lists_older_rows(browser: Browser, route: str) -> None:
    assert browser.get(f"{route}?before={2**31 - 1}").status_code == 200
    assert browser.get(route).status_code == 200
