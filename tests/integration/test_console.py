"""The staff console over HTTP: sign-in, sessions, CSRF, who sees which clinic, the queue."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from callgateway.adapters.clock import fixed
from callgateway.app import create_app
from callgateway.config.retention import retention_until
from callgateway.console import users
from callgateway.db.models import AuditEntry, Call, WorkItem
from callgateway.phone import mask, subject_hash
from callgateway.wiring import Services
from tests.conftest import BASE_URL
from tests.twilio import PATIENT, PATIENT_2, TwilioSim, sid

PASSWORD = "correct horse battery"
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
PAGES = [
    "/console/",
    "/console/queue",
    "/console/queue/rows",
    "/console/voicemails",
    "/console/calls",
    "/console/messages",
    "/console/consent",
    "/console/dashboard",
]
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """A test client that behaves like a person in a browser: it submits the forms it was
    shown, CSRF token included."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.token = ""

    def get(self, path: str, **kw):  # type: ignore[no-untyped-def]
        response = self.client.get(path, **kw)
        found = _TOKEN.search(response.get_data(as_text=True))
        if found:
            self.token = found.group(1)
        return response

    def post(self, path: str, data: dict[str, str] | None = None, csrf: bool = True, **kw):  # type: ignore[no-untyped-def]
        if csrf and not self.token:
            self.get("/console/login")
        form = {**(data or {}), **({"csrf_token": self.token} if csrf else {})}
        response = self.client.post(path, data=form, **kw)
        found = _TOKEN.search(response.get_data(as_text=True))
        if found:
            self.token = found.group(1)
        return response

    def login(self, email: str, password: str = PASSWORD, **kw):  # type: ignore[no-untyped-def]
        self.get("/console/login")
        response = self.post("/console/login", {"email": email, "password": password}, **kw)
        if response.status_code == 303:
            self.get(response.headers["Location"])  # as a browser would: a fresh token
        return response

    def text(self, path: str) -> str:
        response = self.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True)


def add_user(svc: Services, email: str, clinics: list[str], role: str = "staff") -> int:
    known = {c.id for c in svc.config.clinics}
    account = users.with_password(users.check_account(email, role, clinics, known), PASSWORD)
    with svc.db.session() as session:
        return users.add(session, account, svc.clock()).id


def add_call(
    svc: Services, clinic_id: str, cli: str = PATIENT, handled_by: str = "ai", **fields: object
) -> Call:
    clinic = svc.directory.by_id(clinic_id)
    assert clinic is not None
    at = fields.pop("started_at", svc.clock())
    call = Call(
        call_sid=sid("CA"),
        clinic_id=clinic_id,
        direction=fields.pop("direction", "inbound"),
        cli=cli,
        called=clinic.numbers[0],
        started_at=at,
        status="completed",
        handled_by=handled_by,
        recorded=False,
        data_category="call-metadata",
        retention_until=retention_until(svc.config, clinic, "call-metadata", at),  # type: ignore[arg-type]
        **fields,
    )
    with svc.db.session() as session:
        session.add(call)
    return call


def add_item(
    svc: Services, clinic_id: str, kind: str = "escalation", phone: str = PATIENT, **fields: object
) -> WorkItem:
    call = add_call(svc, clinic_id, phone, "none")
    clinic = svc.directory.by_id(clinic_id)
    now = fields.pop("created_at", svc.clock())
    item = WorkItem(
        kind=kind,
        call_sid=call.call_sid,
        clinic_id=clinic_id,
        phone=phone,
        reason=fields.pop("reason", "asked-for-person"),
        status=fields.pop("status", "open"),
        created_at=now,
        updated_at=now,
        data_category="call-metadata",
        retention_until=retention_until(svc.config, clinic, "call-metadata", now),  # type: ignore[arg-type]
        **fields,
    )
    with svc.db.session() as session:
        session.add(item)
    return item


def item_state(svc: Services, item_id: int) -> tuple[str, int | None]:
    with svc.db.session() as session:
        item = session.get(WorkItem, item_id)
    assert item is not None
    return item.status, item.claimed_by


def audit_entries(svc: Services, action: str) -> list[AuditEntry]:
    with svc.db.session() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


@pytest.fixture
def svc(make_services: Callable[..., Services], db_url: str) -> Services:
    services = make_services(db_url)
    services.clock = fixed(NOW)
    return services


@pytest.fixture
def new_browser(svc: Services) -> Callable[..., Browser]:
    app = create_app({"TESTING": True}, services=svc)

    def make(address: str = "192.0.2.10") -> Browser:
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = address
        return Browser(client)

    return make


@pytest.fixture
def staff(svc: Services, new_browser: Callable[..., Browser]) -> Browser:
    add_user(svc, "front@riverside.example", ["riverside-physio"])
    browser = new_browser()
    assert browser.login("front@riverside.example").status_code == 303
    return browser


# --- sign-in -----------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_every_page_sends_a_stranger_to_sign_in(
    new_browser: Callable[..., Browser], page: str
) -> None:
    response = new_browser().get(page)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/console/login?next=")


def test_wrong_password_and_unknown_email_get_the_same_answer(
    svc: Services, new_browser: Callable[..., Browser]
) -> None:
    add_user(svc, "front@riverside.example", ["riverside-physio"])
    wrong = new_browser().login("front@riverside.example", "not the password")
    unknown = new_browser("192.0.2.11").login("nobody@riverside.example")
    assert wrong.status_code == unknown.status_code == 401
    assert "do not match an account" in wrong.get_data(as_text=True)
    assert "do not match an account" in unknown.get_data(as_text=True)


def test_signing_in_lands_on_the_queue_and_shows_who_is_signed_in(staff: Browser) -> None:
    page = staff.text("/console/queue")
    assert "front@riverside.example" in page
    assert "<h1>Queue</h1>" in page


def test_email_is_matched_whatever_its_case(
    svc: Services, new_browser: Callable[..., Browser]
) -> None:
    add_user(svc, "Front@Riverside.example", ["riverside-physio"])
    assert new_browser().login("  FRONT@riverside.EXAMPLE ").status_code == 303


def test_a_deactivated_user_cannot_sign_in_and_is_signed_out(
    svc: Services, staff: Browser, new_browser: Callable[..., Browser]
) -> None:
    from callgateway.db.models import StaffUser

    with svc.db.session() as session:
        session.execute(
            StaffUser.__table__.update().values(active=False)  # type: ignore[attr-defined]
        )
    assert staff.get("/console/queue").status_code == 302
    assert new_browser().login("front@riverside.example").status_code == 401


def test_sign_in_starts_a_new_session(svc: Services, new_browser: Callable[..., Browser]) -> None:
    add_user(svc, "front@riverside.example", ["riverside-physio"])
    browser = new_browser()
    browser.get("/console/login")
    with browser.client.session_transaction() as planted:
        planted["planted_by_attacker"] = "x"
        planted_token = planted.get("csrf_token")
    browser.post("/console/login", {"email": "front@riverside.example", "password": PASSWORD})
    with browser.client.session_transaction() as session:
        assert "planted_by_attacker" not in session
        assert session.get("csrf_token") != planted_token
        assert session.get("_user_id", "").startswith("1:")


def test_signing_out_kills_every_copy_of_the_session_cookie(
    svc: Services, staff: Browser, new_browser: Callable[..., Browser]
) -> None:
    cookie = staff.client.get_cookie("session")
    assert cookie is not None
    thief = new_browser()
    thief.client.set_cookie("session", cookie.value)
    assert thief.get("/console/queue").status_code == 200
    out = staff.post("/console/logout")
    assert out.status_code == 303 and out.headers["Location"] == "/console/login"
    assert staff.get("/console/queue").status_code == 302
    assert thief.get("/console/queue").status_code == 302


def test_a_session_cookie_from_another_address_is_refused(
    staff: Browser, new_browser: Callable[..., Browser]
) -> None:
    cookie = staff.client.get_cookie("session")
    assert cookie is not None
    elsewhere = new_browser("198.51.100.7")
    elsewhere.client.set_cookie("session", cookie.value)
    assert elsewhere.get("/console/queue").status_code == 302


def test_login_is_rate_limited_per_email_and_address(
    svc: Services, new_browser: Callable[..., Browser]
) -> None:
    add_user(svc, "front@riverside.example", ["riverside-physio"])
    add_user(svc, "other@riverside.example", ["riverside-physio"])
    browser = new_browser()
    for _ in range(5):
        assert browser.login("front@riverside.example", "guess").status_code == 401
    # Now even the right password is refused from here, for this account…
    refused = browser.login("front@riverside.example")
    assert refused.status_code == 429
    assert "Too many failed attempts" in refused.get_data(as_text=True)
    # …but not for another account, nor for this account from another address.
    assert new_browser().login("other@riverside.example").status_code == 303
    assert new_browser("192.0.2.99").login("front@riverside.example").status_code == 303


def test_login_never_redirects_off_the_console(
    svc: Services, new_browser: Callable[..., Browser]
) -> None:
    add_user(svc, "front@riverside.example", ["riverside-physio"])
    for target in ("https://evil.example/", "//evil.example/console", "/twilio/voice"):
        browser = new_browser()
        browser.get("/console/login")
        response = browser.post(
            "/console/login",
            {"email": "front@riverside.example", "password": PASSWORD, "next": target},
        )
        assert response.headers["Location"] == "/console/queue"


def test_session_cookie_is_httponly_lax_and_secure_outside_dev(
    make_services: Callable[..., Services], db_url: str
) -> None:
    prod = make_services(db_url, env="production", secret_key="s" * 40)
    add_user(prod, "front@riverside.example", ["riverside-physio"])
    browser = Browser(create_app({"TESTING": True}, services=prod).test_client())
    browser.get("/console/login")
    response = browser.client.post(
        "/console/login",
        data={
            "email": "front@riverside.example",
            "password": PASSWORD,
            "csrf_token": browser.token,
        },
        base_url="https://localhost",
        headers={"Referer": "https://localhost/console/login"},
    )
    assert response.status_code == 303
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_dev_cookie_is_httponly_and_lax(staff: Browser) -> None:
    response = staff.post("/console/logout")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


# --- CSRF --------------------------------------------------------------------------------


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    svc: Services, staff: Browser
) -> None:
    item = add_item(svc, "riverside-physio")
    response = staff.post(f"/console/items/{item.id}/claim", csrf=False)
    assert response.status_code == 400
    assert "refused for your safety" in response.get_data(as_text=True)
    assert item_state(svc, item.id) == ("open", None)
    forged = staff.client.post(f"/console/items/{item.id}/done", data={"csrf_token": "forged"})
    assert forged.status_code == 400
    assert item_state(svc, item.id) == ("open", None)


def test_login_form_needs_its_csrf_token_too(
    svc: Services, new_browser: Callable[..., Browser]
) -> None:
    add_user(svc, "front@riverside.example", ["riverside-physio"])
    response = new_browser().post(
        "/console/login", {"email": "front@riverside.example", "password": PASSWORD}, csrf=False
    )
    assert response.status_code == 400


def test_twilio_webhooks_stay_csrf_exempt(
    svc: Services, new_browser: Callable[..., Browser]
) -> None:
    twilio = TwilioSim(new_browser().client, BASE_URL)
    response = twilio.call(sid("CA"))
    assert response.status_code == 200
    assert "Thank you for calling Riverside Physiotherapy." in response.get_data(as_text=True)


# --- who sees what -----------------------------------------------------------------------


def test_staff_see_only_their_clinics_work(svc: Services, staff: Browser) -> None:
    mine = add_item(svc, "riverside-physio", phone=PATIENT)
    theirs = add_item(svc, "spree-hausarzt", phone=PATIENT_2, reason="opted-out")
    page = staff.text("/console/queue")
    assert f'data-item="{mine.id}"' in page
    assert f'data-item="{theirs.id}"' not in page
    assert "Hausarztpraxis" not in page


@pytest.mark.parametrize("action", ["claim", "done", "release"])
def test_another_clinics_item_is_forbidden(svc: Services, staff: Browser, action: str) -> None:
    theirs = add_item(svc, "spree-hausarzt")
    response = staff.post(f"/console/items/{theirs.id}/{action}")
    assert response.status_code == 403
    assert item_state(svc, theirs.id) == ("open", None)


def test_another_clinics_number_cannot_be_revealed(svc: Services, staff: Browser) -> None:
    call = add_call(svc, "spree-hausarzt")
    with svc.db.session() as session:
        call_id = session.scalars(select(Call.id).where(Call.call_sid == call.call_sid)).one()
    response = staff.post(f"/console/reveal/call/{call_id}")
    assert response.status_code == 403
    assert PATIENT not in response.get_data(as_text=True)
    assert audit_entries(svc, "console.reveal") == []


@pytest.mark.parametrize("page", ["/console/calls", "/console/voicemails", "/console/dashboard"])
def test_filtering_on_another_clinic_is_forbidden(staff: Browser, page: str) -> None:
    assert staff.get(page + "?clinic=spree-hausarzt").status_code == 403


def test_admin_sees_every_clinic(svc: Services, new_browser: Callable[..., Browser]) -> None:
    add_user(svc, "manager@group.example", [], role="admin")
    browser = new_browser()
    browser.login("manager@group.example")
    items = [add_item(svc, c.id) for c in svc.config.clinics]
    page = browser.text("/console/queue")
    for item in items:
        assert f'data-item="{item.id}"' in page
    assert browser.get("/console/").headers["Location"] == "/console/dashboard"


# --- the queue ---------------------------------------------------------------------------


def test_claim_then_done_takes_the_item_out_of_the_live_queue(
    svc: Services, staff: Browser
) -> None:
    item = add_item(svc, "riverside-physio", kind="callback", reason="no-answer")
    page = staff.text("/console/queue")
    assert "Callback request" in page and "nobody answered" in page
    claimed = staff.post(f"/console/items/{item.id}/claim", {"back": "/console/queue"})
    assert claimed.status_code == 303
    user_id = item_state(svc, item.id)[1]
    assert item_state(svc, item.id) == ("claimed", user_id) and user_id is not None
    assert "Claimed by you" in staff.text("/console/queue")
    staff.post(f"/console/items/{item.id}/done")
    assert item_state(svc, item.id)[0] == "done"
    rows = staff.text("/console/queue/rows")
    assert f'data-item="{item.id}"' not in rows


def test_two_people_cannot_both_claim_one_item(
    svc: Services, staff: Browser, new_browser: Callable[..., Browser]
) -> None:
    add_user(svc, "back@riverside.example", ["riverside-physio"])
    colleague = new_browser("192.0.2.20")
    colleague.login("back@riverside.example")
    item = add_item(svc, "riverside-physio")
    staff.post(f"/console/items/{item.id}/claim")
    first_owner = item_state(svc, item.id)[1]
    colleague.post(f"/console/items/{item.id}/claim")
    assert item_state(svc, item.id) == ("claimed", first_owner)
    page = colleague.text("/console/queue")
    assert "already claimed or finished" in page
    assert "Claimed by front@riverside.example" in page
    # Only the claimant can hand it back.
    colleague.post(f"/console/items/{item.id}/release")
    assert item_state(svc, item.id) == ("claimed", first_owner)
    staff.post(f"/console/items/{item.id}/release")
    assert item_state(svc, item.id) == ("open", None)


def test_new_work_shows_up_in_the_polled_rows(svc: Services, staff: Browser) -> None:
    before = staff.get("/console/queue/rows")
    assert before.headers["X-Open-Count"] == "0"
    assert "Nothing waiting" in before.get_data(as_text=True)
    item = add_item(svc, "riverside-physio")
    after = staff.get("/console/queue/rows")
    assert after.headers["X-Open-Count"] == "1"
    body = after.get_data(as_text=True)
    assert f'data-item="{item.id}"' in body
    assert "<html" not in body  # rows only, for the page's poller


def test_queue_shows_numbers_masked_and_reveal_is_audited(svc: Services, staff: Browser) -> None:
    item = add_item(svc, "riverside-physio", phone=PATIENT)
    page = staff.text("/console/queue")
    assert PATIENT not in page and mask(PATIENT) in page
    revealed = staff.post(f"/console/reveal/item/{item.id}")
    assert revealed.status_code == 200
    assert f'href="tel:{PATIENT}"' in revealed.get_data(as_text=True)
    (entry,) = audit_entries(svc, "console.reveal")
    assert entry.actor.startswith("user:")
    assert entry.clinic_id == "riverside-physio"
    assert entry.subject_hash == subject_hash(PATIENT, svc.settings.subject_salt)
    assert entry.detail == {"record": "item", "id": item.id}


def test_console_pages_are_not_cached_or_framed(staff: Browser) -> None:
    response = staff.get("/console/queue")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
