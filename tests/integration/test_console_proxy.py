"""Behind a trusted reverse proxy, the console limits sign-in per real client address."""

from __future__ import annotations

from collections.abc import Callable

from callgateway.app import create_app
from callgateway.wiring import Services
from tests.support.console import Browser, add_user


def browser_behind_proxy(svc: Services, client_address: str) -> Browser:
    client = create_app({"TESTING": True}, services=svc).test_client()
    client.environ_base["REMOTE_ADDR"] = "10.0.0.2"  # the load balancer, for everyone
    client.environ_base["HTTP_X_FORWARDED_FOR"] = client_address
    return Browser(client)


def test_one_clients_failures_do_not_lock_out_another_behind_the_same_proxy(
    make_services: Callable[..., Services], sqlite_url: str
) -> None:
    svc = make_services(sqlite_url, trusted_proxies=1)
    add_user(svc, "front@riverside.example", ["riverside-physio"])
    attacker = browser_behind_proxy(svc, "203.0.113.5")
    for _ in range(5):
        assert attacker.login("front@riverside.example", "guess").status_code == 401
    assert attacker.login("front@riverside.example").status_code == 429
    colleague = browser_behind_proxy(svc, "198.51.100.20")
    assert colleague.login("front@riverside.example").status_code == 303


def test_without_trusted_proxies_a_forged_forwarded_header_changes_nothing(
    make_services: Callable[..., Services], sqlite_url: str
) -> None:
    svc = make_services(sqlite_url)
    add_user(svc, "front@riverside.example", ["riverside-physio"])
    for n in range(5):
        # Rotating X-Forwarded-For must not buy an attacker fresh attempts.
        b = browser_behind_proxy(svc, f"203.0.113.{n}")
        assert b.login("front@riverside.example", "guess").status_code == 401
    assert (
        browser_behind_proxy(svc, "203.0.113.99").login("front@riverside.example").status_code
        == 429
    )
