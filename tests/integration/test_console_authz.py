"""The console's access rules as one matrix, and the session attacks around sign-in.

tests/integration/test_console*.py prove each page and action one by one (a stranger is sent
to sign in, another clinic's item/voicemail/number/filter is 403, CSRF on a claim and on the
login form, a fresh session at sign-in, the per-account rate limit). This file proves the
rules for every route at once, found from the URL map so that a new route without a row
here fails: each role (staff of clinic A, staff of clinic B, admin, anonymous) x each page
and action x their own clinic's record and the other clinic's. Forbidden means 403 (or the
sign-in page for a stranger) and nothing changed; allowed means neither.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from flask import Flask
from sqlalchemy import func, select

from callgateway.app import create_app
from callgateway.db.models import (
    AuditEntry,
    Call,
    ConsentEvent,
    Message,
    Recording,
    StaffUser,
    WorkItem,
)
from callgateway.db.models_outbound import CheckinSchedule
from callgateway.outbound import checkins
from callgateway.phone import mask
from callgateway.wiring import Services
from tests.support.console import Browser, add_call, add_item, add_user, add_voicemail
from tests.support.settings import BASE_URL
from tests.support.twilio import CLINIC_EU, CLINIC_UK, TwilioSim, sid

A, B = "riverside-physio", "spree-hausarzt"
# Each clinic's records carry their own patient (not PATIENT: the consent form's
# placeholder shows that example number to everyone).
PHONE = {A: "+447700900611", B: "+447700900622"}
ROLES = ["staff-a", "staff-b", "admin", "anonymous"]


@dataclass(frozen=True)
class Route:
    rule: str  # as in the URL map
    method: str
    path: str  # with {item} {call} {message} {voicemail} {schedule} {consent} {clinic}
    form: dict[str, str] | None = None
    filtered: bool = True  # a GET that takes ?clinic= (403 for another clinic)
    admin_only: bool = False  # accounts: 403 for every staff user, whichever clinic
    audited: bool = False  # a refusal leaves a `console.denied` audit entry


# Order matters only for the allowed roles: destructive actions come last.
ROUTES = [
    Route("/console/", "GET", "/console/", filtered=False),
    Route("/console/queue", "GET", "/console/queue", filtered=False),
    Route("/console/queue/rows", "GET", "/console/queue/rows", filtered=False),
    Route("/console/consent", "GET", "/console/consent", filtered=False),
    Route("/console/consent", "GET", "/console/consent?clinic={clinic}"),
    Route("/console/calls", "GET", "/console/calls?clinic={clinic}"),
    Route("/console/voicemails", "GET", "/console/voicemails?clinic={clinic}"),
    Route("/console/messages", "GET", "/console/messages?clinic={clinic}"),
    Route("/console/dashboard", "GET", "/console/dashboard?clinic={clinic}"),
    Route("/console/outbound/reminders", "GET", "/console/outbound/reminders?clinic={clinic}"),
    Route("/console/outbound/checkins", "GET", "/console/outbound/checkins?clinic={clinic}"),
    Route("/console/outbound/summary", "GET", "/console/outbound/summary?clinic={clinic}"),
    Route("/console/reveal/<kind>/<int:record_id>", "POST", "/console/reveal/item/{item}"),
    Route("/console/reveal/<kind>/<int:record_id>", "POST", "/console/reveal/call/{call}"),
    Route("/console/reveal/<kind>/<int:record_id>", "POST", "/console/reveal/message/{message}"),
    Route(
        "/console/reveal/<kind>/<int:record_id>", "POST", "/console/reveal/voicemail/{voicemail}"
    ),
    Route("/console/reveal/<kind>/<int:record_id>", "POST", "/console/reveal/consent/{consent}"),
    Route("/console/consent", "POST", "/console/consent", {"phone": "+447700900999"}),
    Route(
        "/console/consent/record",
        "POST",
        "/console/consent/record",
        {"phone": "+447700900999", "state": "opted_out"},
    ),
    Route("/console/items/<int:item_id>/claim", "POST", "/console/items/{item}/claim"),
    Route("/console/items/<int:item_id>/release", "POST", "/console/items/{item}/release"),
    Route("/console/items/<int:item_id>/done", "POST", "/console/items/{item}/done"),
    Route(
        "/console/messages/<int:message_id>/handled", "POST", "/console/messages/{message}/handled"
    ),
    Route(
        "/console/messages/<int:message_id>/reply",
        "POST",
        "/console/messages/{message}/reply",
        {"body": "We can see you at 3pm."},
        audited=True,
    ),
    Route(
        "/console/voicemails/<int:recording_id>/play",
        "POST",
        "/console/voicemails/{voicemail}/play",
    ),
    Route(
        "/console/outbound/checkins",
        "POST",
        "/console/outbound/checkins",
        {"phone": "+447700900777", "days": "daily", "time": "10:00", "alert": "+447700900778"},
    ),
    Route(
        "/console/outbound/checkins/<int:schedule_id>/active",
        "POST",
        "/console/outbound/checkins/{schedule}/active",
        {"active": "0"},
    ),
    Route(
        "/console/outbound/checkins/<int:schedule_id>/alerts",
        "POST",
        "/console/outbound/checkins/{schedule}/alerts",
        {"alert": "+447700900779"},
    ),
    Route(
        "/console/outbound/checkins/<int:schedule_id>/delete",
        "POST",
        "/console/outbound/checkins/{schedule}/delete",
        {"confirm": "yes"},
    ),
    Route("/console/calls/<int:call_id>", "GET", "/console/calls/{call}", audited=True),
    Route("/console/calls/sid/<call_sid>", "GET", "/console/calls/sid/{call_sid}", audited=True),
    Route("/console/calls", "POST", "/console/calls", {"phone": "07700 900611"}),
    Route("/console/calls", "POST", "/console/calls", {"message": "{message}"}, audited=True),
    Route(
        "/console/calls/<int:call_id>/recordings/<int:recording_id>/play",
        "POST",
        "/console/calls/{voicemail_call}/recordings/{voicemail}/play",
        audited=True,
    ),
    Route(
        "/console/calls/<int:call_id>/callback",
        "POST",
        "/console/calls/{call}/callback",
        audited=True,
    ),
    Route(
        "/console/items/<int:item_id>/outcome",
        "POST",
        "/console/items/{item}/outcome",
        {"outcome": "left-message", "note": "Rang twice"},
        audited=True,
    ),
    Route("/console/users", "GET", "/console/users", filtered=False, admin_only=True),
    Route(
        "/console/users/<int:user_id>/totp/reset",
        "POST",
        "/console/users/{user}/totp/reset",
        admin_only=True,
    ),
    Route(
        "/console/clinics/<clinic_id>/totp",
        "POST",
        "/console/clinics/{clinic}/totp",
        {"required": "0"},
        admin_only=True,
    ),
    Route(
        "/console/users/<int:user_id>/phone",
        "POST",
        "/console/users/{user}/phone",
        {"phone": "07700 900990"},
        admin_only=True,
    ),
    Route(
        "/console/users/<int:user_id>/password",
        "POST",
        "/console/users/{user}/password",
        {"password": "a new long password"},
        admin_only=True,
    ),
    Route(
        "/console/users/<int:user_id>/role",
        "POST",
        "/console/users/{user}/role",
        {"role": "staff", "clinics": "{clinic}"},
        admin_only=True,
    ),
    Route(
        "/console/users/<int:user_id>/active",
        "POST",
        "/console/users/{user}/active",
        {"active": "0"},
        admin_only=True,
    ),
]
# Not about any clinic's data: signing in and out (covered in test_console.py).
UNSCOPED = {
    "/console/login",
    "/console/login/code",
    "/console/logout",
    "/console/static/<path:filename>",
}


@pytest.fixture
def svc(make_services: Callable[..., Services], sqlite_url: str) -> Services:
    return make_services(sqlite_url)


@pytest.fixture
def app(svc: Services) -> Flask:
    return create_app({"TESTING": True}, services=svc)


def seed(svc: Services, app: Flask) -> dict[str, dict[str, str]]:
    """One of each record per clinic, each with that clinic's own patient."""
    twilio = TwilioSim(app.test_client(), BASE_URL)
    ids: dict[str, dict[str, str]] = {}
    for clinic, number in ((A, CLINIC_UK), (B, CLINIC_EU)):
        phone = PHONE[clinic]
        twilio.sms("Can you call me back about my knee?", from_=phone, to=number)
        with svc.db.session() as s:
            message_id = s.scalars(select(Message.id).where(Message.clinic_id == clinic)).one()
        call = add_call(svc, clinic, phone)
        with svc.db.session() as s:
            call_id = s.scalars(select(Call.id).where(Call.call_sid == call.call_sid)).one()
        schedule = checkins.add_schedule(
            svc,
            checkins.ScheduleSpec(
                clinic_id=clinic,
                phone=phone,
                days="daily",
                local_time="09:00",
                alert_numbers=["+447700900731"],
                message_text="Hello",
            ),
        )
        svc.consent.record_opt_out(clinic, phone, "sms", sid("SM"))
        with svc.db.session() as s:
            consent_id = s.scalars(
                select(ConsentEvent.id).where(ConsentEvent.clinic_id == clinic)
            ).one()
        ids[clinic] = {
            "clinic": clinic,
            "item": str(add_item(svc, clinic, phone=phone).id),
            "call": str(call_id),
            "message": str(message_id),
            "voicemail": str(add_voicemail(svc, clinic, status="pending").id),
            "schedule": str(schedule),
            "consent": str(consent_id),
            "user": str(add_user(svc, f"leaver@{clinic}.example", [clinic])),
            "call_sid": call.call_sid,
        }
        with svc.db.session() as s:
            voicemail = s.get(Recording, int(ids[clinic]["voicemail"]))
            ids[clinic]["voicemail_call"] = str(
                s.scalars(select(Call.id).where(Call.call_sid == voicemail.call_sid)).one()
            )
    return ids


def state(svc: Services) -> tuple[object, ...]:
    """Everything an action could change, for 'nothing changed'."""
    with svc.db.session() as s:
        return (
            tuple(
                s.execute(
                    select(WorkItem.id, WorkItem.status, WorkItem.claimed_by, WorkItem.outcome)
                ).all()
            ),
            tuple(s.execute(select(Message.id, Message.handled)).all()),
            s.scalar(select(func.count()).select_from(ConsentEvent)),
            tuple(s.execute(select(CheckinSchedule.id, CheckinSchedule.active)).all()),
            s.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action != "console.denied")
            ),
            tuple(
                s.execute(
                    select(
                        StaffUser.id,
                        StaffUser.active,
                        StaffUser.role,
                        StaffUser.password_hash,
                        StaffUser.phone,
                    )
                ).all()
            ),
        )


def denials(svc: Services) -> int:
    with svc.db.session() as s:
        stmt = select(func.count()).select_from(AuditEntry)
        return s.scalar(stmt.where(AuditEntry.action == "console.denied")) or 0


def browser_for(svc: Services, app: Flask, role: str) -> Browser:
    browser = Browser(app.test_client())
    accounts = {
        "staff-a": ("a@riverside.example", [A], "staff"),
        "staff-b": ("b@spree.example", [B], "staff"),
        "admin": ("admin@group.example", [], "admin"),
    }
    if role in accounts:
        email, clinics, kind = accounts[role]
        add_user(svc, email, clinics, role=kind)
        assert browser.login(email).status_code == 303
    else:
        browser.get("/console/login")  # a stranger with a real CSRF token: only authz stops it
    return browser


def test_every_console_route_is_in_the_matrix(app: Flask) -> None:
    routes = {
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("console.")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    covered = {(r.rule, r.method) for r in ROUTES}
    missing = {r for r in routes - covered if r[0] not in UNSCOPED}
    assert missing == set(), f"add these to ROUTES: {sorted(missing)}"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_on_each_route_for_its_own_and_the_other_clinic(
    svc: Services, app: Flask, role: str
) -> None:
    ids = seed(svc, app)
    browser = browser_for(svc, app, role)
    own = {"staff-a": A, "staff-b": B}.get(role, A)
    other = B if own == A else A
    wrong: list[str] = []
    for target in (other, own):  # the other clinic first: the allowed pass changes things
        for route in ROUTES:
            path = route.path.format(**ids[target])
            form = None
            if route.form is not None or route.method == "POST":
                form = {k: v.format(**ids[target]) for k, v in (route.form or {}).items()}
                form.setdefault("clinic", target)
                if "state" in form:
                    form["request_id"] = uuid.uuid4().hex
            before, denied_before = state(svc), denials(svc)
            response = browser.get(path) if route.method == "GET" else browser.post(path, form)
            status, body = response.status_code, response.get_data(as_text=True)
            label = (
                f"{role} {route.method} {path} ({'own' if target == own else 'other'}): {status}"
            )
            to_login = status == 302 and "/console/login" in response.headers["Location"]
            if status >= 500:
                wrong.append(label + " server error")
            elif role == "anonymous":
                # A POST without a session may be refused by CSRF (400) before authz.
                if not (to_login or (route.method == "POST" and status == 400)):
                    wrong.append(label + " not sent to sign in")
                if state(svc) != before:
                    wrong.append(label + " changed something")
            elif route.admin_only and role != "admin":
                if status != 403:
                    wrong.append(label + " not 403 for staff")
                if state(svc) != before:
                    wrong.append(label + " changed something")
            elif role == "admin" or target == own:
                if to_login or status in (401, 403):
                    wrong.append(label + " refused")
            elif route.method == "GET" and not route.filtered:
                # A page without a filter lists the user's own clinics only.
                shown = mask(PHONE[target]) in body or PHONE[target] in body
                if status not in (200, 302) or to_login or shown:
                    wrong.append(label + " shows the other clinic")
            else:
                if status != 403:
                    wrong.append(label + " not 403")
                if route.audited and denials(svc) != denied_before + 1:
                    wrong.append(label + " refusal not audited")
                if PHONE[target] in body or mask(PHONE[target]) in body:
                    wrong.append(label + " leaked the other clinic's number")
                if state(svc) != before:
                    wrong.append(label + " changed something")
    assert wrong == []


def test_every_post_route_refuses_a_missing_or_foreign_csrf_token_and_changes_nothing(
    svc: Services, app: Flask
) -> None:
    ids = seed(svc, app)
    admin = browser_for(svc, app, "admin")
    other_session = browser_for(svc, app, "staff-a")
    refused: list[str] = []
    for route in [r for r in ROUTES if r.method == "POST"]:
        path = route.path.format(**ids[A])
        form = {**(route.form or {}), "clinic": A, "request_id": uuid.uuid4().hex}
        before = state(svc)
        for token in ("", "forged", other_session.token):
            response = admin.client.post(path, data={**form, "csrf_token": token})
            if response.status_code != 400:
                refused.append(f"{path} with token {token[:6]!r}: {response.status_code}")
        if state(svc) != before:
            refused.append(f"{path}: changed something")
    logout = admin.client.post("/console/logout", data={})
    assert logout.status_code == 400 and admin.get("/console/queue").status_code == 200
    assert refused == []


def test_a_session_cookie_planted_before_sign_in_is_worthless_after_it(
    svc: Services, app: Flask
) -> None:
    """Session fixation: the attacker gets a pre-login cookie and plants it in the victim's
    browser; the victim signs in with it. The attacker's copy must not be signed in."""
    add_user(svc, "a@riverside.example", [A])
    attacker = Browser(app.test_client())
    attacker.get("/console/login")
    planted = attacker.client.get_cookie("session")
    assert planted is not None
    victim = Browser(app.test_client())
    victim.client.set_cookie("session", planted.value)
    assert victim.login("a@riverside.example").status_code == 303
    assert victim.get("/console/queue").status_code == 200
    signed_in = victim.client.get_cookie("session")
    assert signed_in is not None and signed_in.value != planted.value
    assert attacker.get("/console/queue").status_code == 302  # still a stranger


def test_the_login_limit_counts_every_spelling_of_one_email_together(
    svc: Services, app: Flask
) -> None:
    add_user(svc, "a@riverside.example", [A])
    browser = Browser(app.test_client())
    for spelling in ["a@riverside.example", "A@RIVERSIDE.EXAMPLE", " a@Riverside.example "] * 2:
        if browser.login(spelling, "guess").status_code == 429:
            break
    assert browser.login("a@riverside.example").status_code == 429


def test_password_spraying_many_emails_from_one_address_is_stopped(
    svc: Services, app: Flask
) -> None:
    add_user(svc, "a@riverside.example", [A])
    browser = Browser(app.test_client())
    statuses = [
        browser.login(f"guess{i}@riverside.example", "guess").status_code for i in range(31)
    ]
    assert statuses[:30] == [401] * 30 and statuses[30] == 429
    # The right password for a real account is refused from that address now, too.
    assert browser.login("a@riverside.example").status_code == 429


def test_a_forged_x_forwarded_for_does_not_reset_the_login_limit(svc: Services, app: Flask) -> None:
    """No proxy is trusted by default: the header is the client's own claim and ignored."""
    add_user(svc, "a@riverside.example", [A])
    browser = Browser(app.test_client())
    for i in range(6):
        browser.client.environ_base["HTTP_X_FORWARDED_FOR"] = f"203.0.113.{i}"
        last = browser.login("a@riverside.example", "guess")
    assert last.status_code == 429
