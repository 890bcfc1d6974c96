"""The console's own error pages: an unknown console address, and a failure inside a page,
in the console's words and layout rather than a bare Werkzeug page or a stack trace."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.exc import OperationalError

from callgateway.app import create_app
from callgateway.console.queries import calls as call_queries
from callgateway.wiring import Services
from tests.support.console import Browser, add_user


@pytest.fixture
def svc(make_services: Callable[..., Services], sqlite_url: str) -> Services:
    return make_services(sqlite_url)


def signed_in(svc: Services, testing: bool = True) -> Browser:
    add_user(svc, "front@riverside.example", ["riverside-physio"])
    browser = Browser(create_app({"TESTING": testing}, services=svc).test_client())
    assert browser.login("front@riverside.example").status_code == 303
    return browser


def test_an_unknown_console_address_gets_the_consoles_not_found_page(svc: Services) -> None:
    browser = signed_in(svc)
    response = browser.get("/console/no-such-page")
    body = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "<h1>Not found</h1>" in body and "Back to the console" in body
    assert 'aria-label="Console"' in body  # the navigation: the person is still in the console
    assert browser.get("/console/calls/999999").status_code == 404


def test_a_failure_inside_a_page_gets_the_consoles_error_page_without_detail(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    browser = signed_in(svc, testing=False)

    def broken(*_args: object, **_kw: object) -> None:
        raise OperationalError("SELECT secret_table", {}, Exception("disk I/O error"))

    monkeypatch.setattr(call_queries, "calls", broken)
    response = browser.get("/console/calls")
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Something went wrong" in body and "Back to the console" in body
    assert "secret_table" not in body and "Traceback" not in body


def test_addresses_outside_the_console_keep_a_plain_404(svc: Services) -> None:
    client = create_app({"TESTING": True}, services=svc).test_client()
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert "Back to the console" not in response.get_data(as_text=True)
