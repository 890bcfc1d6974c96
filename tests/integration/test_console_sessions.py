"""Console sessions over a clinic day (the wiring's clock moved as the day goes): a desk in
use all day stays signed in, an idle one is signed out after an hour, and nobody stays
signed in past the day's cap. The badge counts what the queue shows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from callgateway.app import create_app
from callgateway.console import sessions
from callgateway.wiring import Services
from tests.support.console import Browser, add_item, add_user

START = datetime(2026, 11, 24, 7, 55, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def svc(make_services: Callable[..., Services], sqlite_url: str, clock: Clock) -> Services:
    services = make_services(sqlite_url)
    services.clock = clock
    return services


@pytest.fixture
def app(svc: Services) -> Flask:
    return create_app({"TESTING": True}, services=svc)


@pytest.fixture
def desk(svc: Services, app: Flask) -> Browser:
    add_user(svc, "front@riverside.example", ["riverside-physio"])
    browser = Browser(app.test_client())
    assert browser.login("front@riverside.example").status_code == 303
    return browser


def signed_in(browser: Browser) -> bool:
    return browser.get("/console/queue/rows").status_code == 200


def test_a_desk_polling_all_day_is_never_signed_out_before_the_cap(
    desk: Browser, clock: Clock
) -> None:
    # The queue polls every few seconds; a poll every 10 minutes is enough to prove it.
    for _ in range(int(10 * 60 / 10)):  # 07:55 -> 17:55
        clock.now += timedelta(minutes=10)
        assert signed_in(desk), clock.now
    assert clock.now.hour == 17


def test_an_idle_session_ends_after_an_hour(desk: Browser, clock: Clock) -> None:
    clock.now += timedelta(seconds=sessions.IDLE_SECONDS - 60)
    assert signed_in(desk)
    clock.now += timedelta(seconds=sessions.IDLE_SECONDS + 1)
    response = desk.get("/console/queue")
    assert response.status_code == 302 and "/console/login" in response.headers["Location"]


def test_no_session_outlives_the_days_cap(desk: Browser, clock: Clock) -> None:
    while clock.now < START + timedelta(seconds=sessions.MAX_SECONDS - 600):
        clock.now += timedelta(minutes=30)
        assert signed_in(desk)
    clock.now = START + timedelta(seconds=sessions.MAX_SECONDS + 1)
    assert not signed_in(desk)


def test_the_badge_and_title_count_the_open_queue_items_not_voicemails(
    svc: Services, desk: Browser
) -> None:
    add_item(svc, "riverside-physio", kind="callback", reason="caller-request")
    add_item(svc, "riverside-physio", kind="voicemail", reason="voicemail")
    page = desk.text("/console/messages")
    assert 'id="open-count" aria-label="1 open">1<' in page
    assert "<title>(1) Messages" in page
    assert desk.get("/console/queue/rows").headers["X-Open-Count"] == "1"
