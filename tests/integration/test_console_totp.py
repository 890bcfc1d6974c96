"""The console's second factor: an admin requires it for a clinic; that clinic's staff set
up an authenticator at their next sign-in and type its code after their password from then
on. A code works once; the password alone signs nobody in."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pyotp
import pytest
from flask import Flask
from sqlalchemy import select

from callgateway.app import create_app
from callgateway.db.models import StaffUser
from callgateway.wiring import Services
from tests.support.cli import cli_env, run_cli
from tests.support.console import Browser, add_user, audit_entries

A, B = "riverside-physio", "spree-hausarzt"
STAFF_A, STAFF_B, ADMIN = "front@riverside.example", "empfang@spree.example", "boss@group.example"


@pytest.fixture
def svc(make_services: Callable[..., Services], sqlite_url: str) -> Services:
    return make_services(sqlite_url)


@pytest.fixture
def app(svc: Services) -> Flask:
    return create_app({"TESTING": True}, services=svc)


def browser(app: Flask) -> Browser:
    return Browser(app.test_client())


def require_at(app: Flask, clinic: str, required: bool = True) -> None:
    admin = browser(app)
    assert admin.login(ADMIN).status_code in (303,)
    assert (
        admin.post(
            f"/console/clinics/{clinic}/totp", {"required": "1" if required else "0"}
        ).status_code
        == 303
    )


def secret_on(page: str) -> str:
    return (
        re.search(r'id="totp-secret"><strong>([A-Z2-7 ]+)</strong>', page).group(1).replace(" ", "")
    )


def code_for(secret: str, steps_ahead: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


@pytest.fixture
def accounts(svc: Services) -> None:
    add_user(svc, ADMIN, [], role="admin")
    add_user(svc, STAFF_A, [A])
    add_user(svc, STAFF_B, [B])


def test_a_clinic_that_requires_it_has_its_staff_enrol_then_type_a_code_each_time(
    svc: Services, app: Flask, accounts: None
) -> None:
    require_at(app, A)
    desk = browser(app)
    response = desk.login(STAFF_A)
    assert response.status_code == 303 and response.headers["Location"] == "/console/login/code"
    page = desk.text("/console/login/code")
    assert "Set up your sign-in code" in page and "otpauth://totp/" in page
    secret = secret_on(page)
    # The password alone is not a session.
    assert desk.get("/console/queue").status_code == 302
    wrong = desk.post(
        "/console/login/code", {"code": "000000" if code_for(secret) != "000000" else "111111"}
    )
    assert wrong.status_code == 401 and "That code is not right" in wrong.get_data(as_text=True)
    first_code = code_for(secret)
    right = desk.post("/console/login/code", {"code": first_code})
    assert right.status_code == 303 and right.headers["Location"] == "/console/queue"
    assert desk.get("/console/queue").status_code == 200
    with svc.db.session() as s:
        assert (
            s.scalars(select(StaffUser.totp_secret).where(StaffUser.email == STAFF_A)).one()
            == secret
        )
    # Next time: the code only, no set-up; the code already used is refused, a fresh one works.
    again = browser(app)
    again.login(STAFF_A)
    page = again.text("/console/login/code")
    assert "Set up" not in page and "totp-secret" not in page
    assert again.post("/console/login/code", {"code": first_code}).status_code == 401
    assert again.post("/console/login/code", {"code": code_for(secret, 1)}).status_code == 303
    logins = [
        e.detail["second_factor"]
        for e in audit_entries(svc, "console.login")
        if e.detail.get("email") == STAFF_A
    ]
    assert logins == ["enrolled", "totp"]
    assert [e.detail["reason"] for e in audit_entries(svc, "console.login.failed")] == [
        "bad-code",
        "bad-code",
    ]


def test_staff_of_a_clinic_that_does_not_require_it_sign_in_with_the_password(
    app: Flask, accounts: None
) -> None:
    require_at(app, A)
    desk = browser(app)
    response = desk.login(STAFF_B)
    assert response.status_code == 303 and response.headers["Location"] == "/console/queue"


def test_an_admin_who_sees_a_clinic_that_requires_it_must_enrol_too(
    app: Flask, accounts: None
) -> None:
    require_at(app, B)
    admin = browser(app)
    assert admin.login(ADMIN).headers["Location"] == "/console/login/code"


def test_a_code_from_before_the_password_step_expired_is_refused(
    app: Flask, accounts: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_at(app, A)
    desk = browser(app)
    desk.login(STAFF_A)
    secret = secret_on(desk.text("/console/login/code"))
    later = time.time() + 301
    monkeypatch.setattr("callgateway.console.auth.time.time", lambda: later)
    response = desk.post("/console/login/code", {"code": code_for(secret)})
    assert response.status_code == 303 and response.headers["Location"] == "/console/login"
    assert desk.get("/console/queue").status_code == 302


def test_removing_a_code_ends_the_sessions_and_the_user_sets_up_a_new_one(
    svc: Services, app: Flask, accounts: None, sqlite_url: str, redis_url: str
) -> None:
    require_at(app, A)
    desk = browser(app)
    desk.login(STAFF_A)
    desk.post(
        "/console/login/code", {"code": code_for(secret_on(desk.text("/console/login/code")))}
    )
    assert desk.get("/console/queue").status_code == 200
    result = run_cli(
        ["users", "reset-totp", "--email", STAFF_A],
        cli_env(DATABASE_URL=sqlite_url, REDIS_URL=redis_url),
    )
    assert result.stdout == "sign-in code removed for front@riverside.example (1 session ended)\n"
    assert desk.get("/console/queue").status_code == 302
    fresh = browser(app)
    fresh.login(STAFF_A)
    assert "Set up your sign-in code" in fresh.text("/console/login/code")


def test_staff_cannot_change_a_clinics_requirement(
    svc: Services, app: Flask, accounts: None
) -> None:
    desk = browser(app)
    desk.login(STAFF_A)
    assert desk.post(f"/console/clinics/{A}/totp", {"required": "1"}).status_code == 403
    assert browser(app).login(STAFF_A).headers["Location"] == "/console/queue"
