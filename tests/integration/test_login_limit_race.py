"""The sign-in limit holds under concurrency: every attempt is counted (one atomic
increment) before its password is compared, so 40 attempts from one address at once check
at most the limit's number of passwords. Real Redis and database; argon2 verifications
counted at the hasher.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from argon2 import PasswordHasher

from callgateway.adapters.clock import fixed
from callgateway.app import create_app
from callgateway.console import auth, users
from callgateway.wiring import Services
from tests.support.console import NOW, PASSWORD, Browser, add_user

EMAIL = "front@riverside.example"


class CountingHasher(PasswordHasher):
    def __init__(self) -> None:
        super().__init__()
        self.verified = 0
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self._lock:
            self.verified += 1
        return super().verify(hash, password)


@pytest.fixture
def svc(make_services: Callable[..., Services], db_url: str) -> Services:
    services = make_services(db_url)
    services.clock = fixed(NOW)
    return services


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    counting = CountingHasher()
    monkeypatch.setattr(users, "_hasher", counting)
    return counting


def _at_once(svc: Services, passwords: list[str]) -> list[int]:
    app = create_app({"TESTING": True}, services=svc)
    browsers = [Browser(app.test_client()) for _ in passwords]
    for b in browsers:
        b.get("/console/login")  # each its own CSRF token, as a browser has
    start = threading.Barrier(len(passwords))
    statuses = [0] * len(passwords)

    def one(i: int) -> None:
        start.wait()
        form = {"email": EMAIL, "password": passwords[i]}
        statuses[i] = browsers[i].post("/console/login", form).status_code

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(passwords))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def test_forty_concurrent_guesses_check_at_most_the_limit_of_passwords(
    svc: Services, hasher: CountingHasher
) -> None:
    add_user(svc, EMAIL, ["riverside-physio"])
    statuses = _at_once(svc, [f"guess-{i}" for i in range(40)])
    assert hasher.verified <= auth.FAILURES_PER_ACCOUNT
    assert statuses.count(401) == hasher.verified
    assert statuses.count(429) == 40 - hasher.verified


def test_the_right_password_among_forty_concurrent_guesses_is_refused_past_the_limit(
    svc: Services, hasher: CountingHasher
) -> None:
    add_user(svc, EMAIL, ["riverside-physio"])
    passwords = [f"guess-{i}" for i in range(39)] + [PASSWORD]
    statuses = _at_once(svc, passwords)
    assert hasher.verified <= auth.FAILURES_PER_ACCOUNT
    assert statuses.count(303) <= 1
    assert statuses.count(303) + statuses.count(401) == hasher.verified


def test_colleagues_signing_in_from_one_office_do_not_use_up_its_limit(
    svc: Services, hasher: CountingHasher
) -> None:
    add_user(svc, EMAIL, ["riverside-physio"])
    app = create_app({"TESTING": True}, services=svc)
    for _ in range(auth.FAILURES_PER_ADDRESS + 1):
        assert Browser(app.test_client()).login(EMAIL).status_code == 303
