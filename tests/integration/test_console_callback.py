"""Calling a patient back from the call page: Twilio's Calls API faked at the HTTP layer
with the real API's payload; its signed webhooks played as Twilio would (the staff
member's phone answers, the patient's leg ends), and the outcome logged on the item."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs

import pytest
import responses
from flask import Flask
from sqlalchemy import select

from callgateway.app import create_app
from callgateway.db.models import Call, StaffCallback, WorkItem
from callgateway.wiring import Services
from tests.support.cli import cli_env, run_cli
from tests.support.console import Browser, add_item, add_user, audit_entries
from tests.support.settings import BASE_URL
from tests.support.twilio import ACCOUNT_SID, CLINIC_UK, PATIENT, REST_API, TwilioSim, sid

A = "riverside-physio"
DESK_PHONE = "+447700900900"
STAFF = "front@riverside.example"


def call_resource(to: str, from_: str) -> dict[str, object]:
    """Twilio's Call resource as Calls.json returns it on create."""
    call_sid = sid("CA")
    return {
        "account_sid": ACCOUNT_SID,
        "annotation": None,
        "answered_by": None,
        "api_version": "2010-04-01",
        "caller_name": None,
        "date_created": None,
        "date_updated": None,
        "direction": "outbound-api",
        "duration": None,
        "end_time": None,
        "forwarded_from": None,
        "from": from_,
        "from_formatted": from_,
        "group_sid": None,
        "parent_call_sid": None,
        "phone_number_sid": None,
        "price": None,
        "price_unit": "USD",
        "sid": call_sid,
        "start_time": None,
        "status": "queued",
        "subresource_uris": {},
        "to": to,
        "to_formatted": to,
        "trunk_sid": None,
        "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call_sid}.json",
        "queue_time": "0",
    }


@pytest.fixture
def svc(make_services: Callable[..., Services], sqlite_url: str) -> Services:
    return make_services(sqlite_url)


@pytest.fixture
def app(svc: Services) -> Flask:
    return create_app({"TESTING": True}, services=svc)


@pytest.fixture
def twilio(app: Flask) -> TwilioSim:
    return TwilioSim(app.test_client(), BASE_URL)


@pytest.fixture
def calls_api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as api:

        def create(request: object) -> tuple[int, dict[str, str], str]:
            form = {k: v[0] for k, v in parse_qs(request.body).items()}  # type: ignore[attr-defined]
            return 201, {}, json.dumps(call_resource(form["To"], form["From"]))

        api.add_callback(
            responses.POST,
            f"{REST_API}/Calls.json",
            callback=create,
            content_type="application/json",
        )
        yield api


def desk(svc: Services, app: Flask, phone: str | None = DESK_PHONE) -> Browser:
    user_id = add_user(svc, STAFF, [A])
    if phone:
        from callgateway.console import accounts

        accounts.set_phone(svc, STAFF, phone, "test")
    browser = Browser(app.test_client())
    assert browser.login(STAFF).status_code == 303
    assert user_id
    return browser


def call_page_of(svc: Services, item: WorkItem) -> str:
    with svc.db.session() as s:
        call_id = s.scalars(select(Call.id).where(Call.call_sid == item.call_sid)).one()
    return f"/console/calls/{call_id}"


def placed(api: responses.RequestsMock) -> list[dict[str, list[str]]]:
    return [parse_qs(c.request.body) for c in api.calls if c.request.url.endswith("/Calls.json")]


def test_call_back_rings_the_staff_phone_then_bridges_to_the_patient_from_the_clinic_number(
    svc: Services, app: Flask, twilio: TwilioSim, calls_api: responses.RequestsMock
) -> None:
    item = add_item(svc, A, kind="callback", reason="caller-request")
    browser = desk(svc, app)
    page_url = call_page_of(svc, item)
    assert "Call the patient" in browser.text(page_url)
    response = browser.post(page_url + "/callback")
    assert response.status_code == 303
    assert "Calling your phone now" in browser.text(page_url)
    (request,) = placed(calls_api)
    with svc.db.session() as s:
        callback = s.scalars(select(StaffCallback)).one()
    query = f"?callback={callback.id}"
    assert request == {
        "To": [DESK_PHONE],
        "From": [CLINIC_UK],
        "Url": [f"{BASE_URL}/twilio/console/callback/connect{query}"],
        "Method": ["POST"],
        "StatusCallback": [f"{BASE_URL}/twilio/console/callback/status{query}"],
        "StatusCallbackMethod": ["POST"],
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "Timeout": ["25"],
    }
    # The staff member answers: Twilio asks what now.
    leg = callback.call_sid
    assert leg is not None
    params = twilio.voice_params(
        leg, CLINIC_UK, DESK_PHONE, Direction="outbound-api", CallStatus="in-progress"
    )
    twiml = twilio.post(f"/twilio/console/callback/connect{query}", params).get_data(as_text=True)
    dial = re.search(r"<Dial [^>]*>", twiml).group(0)
    assert f'callerId="{CLINIC_UK}"' in dial
    assert f'action="{BASE_URL}/twilio/console/callback/dialled{query}"' in dial
    assert f"<Number>{PATIENT}</Number>" in twiml
    # The patient answered and they talked; the Dial action reports it.
    twilio.post(
        f"/twilio/console/callback/dialled{query}",
        {
            **params,
            "DialCallStatus": "completed",
            "DialCallSid": sid("CA"),
            "DialCallDuration": "95",
        },
    )
    twilio.post(
        f"/twilio/console/callback/status{query}",
        {**params, "CallStatus": "completed", "CallDuration": "110"},
    )
    page = browser.text(page_url)
    assert "spoke to the patient" in page
    with svc.db.session() as s:
        assert s.get(WorkItem, item.id).outcome == "callback-reached"  # type: ignore[union-attr]
        row = s.scalars(select(Call).where(Call.call_sid == leg)).one()
    assert (row.direction, row.purpose, row.cli, row.handled_by, row.status) == (
        "outbound",
        "staff-callback",
        PATIENT,
        "human",
        "completed",
    )
    assert row.outcome == "callback-reached" and row.duration_seconds == 110
    assert len(audit_entries(svc, "console.callback")) == 1


def test_a_late_or_repeated_webhook_does_not_change_the_first_outcome(
    svc: Services, app: Flask, twilio: TwilioSim, calls_api: responses.RequestsMock
) -> None:
    item = add_item(svc, A, kind="callback", reason="caller-request")
    browser = desk(svc, app)
    browser.post(call_page_of(svc, item) + "/callback")
    with svc.db.session() as s:
        callback = s.scalars(select(StaffCallback)).one()
    query = f"?callback={callback.id}"
    params = twilio.voice_params(callback.call_sid or "", CLINIC_UK, DESK_PHONE)
    twilio.post(f"/twilio/console/callback/status{query}", {**params, "CallStatus": "no-answer"})
    twilio.post(f"/twilio/console/callback/status{query}", {**params, "CallStatus": "no-answer"})
    twilio.post(
        f"/twilio/console/callback/dialled{query}", {**params, "DialCallStatus": "completed"}
    )
    with svc.db.session() as s:
        assert s.get(WorkItem, item.id).outcome == "callback-staff-missed"  # type: ignore[union-attr]
    assert "your phone was not answered" in browser.text(call_page_of(svc, item))


def test_without_a_phone_on_the_account_nothing_is_placed_and_the_page_says_why(
    svc: Services, app: Flask, calls_api: responses.RequestsMock
) -> None:
    item = add_item(svc, A, kind="callback", reason="caller-request")
    browser = desk(svc, app, phone=None)
    page_url = call_page_of(svc, item)
    assert "an admin adds your own phone number" in browser.text(page_url)
    browser.post(page_url + "/callback")
    assert "Add your own phone number to your account first" in browser.text(page_url)
    assert placed(calls_api) == []


def test_an_unsigned_connect_webhook_is_refused_and_dials_nobody(
    svc: Services, app: Flask, twilio: TwilioSim, calls_api: responses.RequestsMock
) -> None:
    item = add_item(svc, A, kind="callback", reason="caller-request")
    desk(svc, app).post(call_page_of(svc, item) + "/callback")
    with svc.db.session() as s:
        callback = s.scalars(select(StaffCallback)).one()
    params = twilio.voice_params(callback.call_sid or "", CLINIC_UK, DESK_PHONE)
    response = twilio.post(
        f"/twilio/console/callback/connect?callback={callback.id}", params, signature="forged"
    )
    assert response.status_code == 403
    assert PATIENT not in response.get_data(as_text=True)


def test_staff_record_an_outcome_and_a_note_on_the_item(svc: Services, app: Flask) -> None:
    item = add_item(svc, A, kind="callback", reason="caller-request")
    browser = desk(svc, app)
    page_url = call_page_of(svc, item)
    browser.text(page_url)
    response = browser.post(
        f"/console/items/{item.id}/outcome",
        {"outcome": "left-message", "note": "Asked them to ring after 2"},
    )
    assert response.status_code == 303 and response.headers["Location"] == page_url
    page = browser.text(page_url)
    assert "Left a message" in page and "Asked them to ring after 2" in page
    assert audit_entries(svc, "console.item.outcome")[0].detail == {
        "item": item.id,
        "outcome": "left-message",
    }


def test_users_set_phone_on_the_command_line(
    svc: Services, sqlite_url: str, redis_url: str
) -> None:
    add_user(svc, STAFF, [A])
    env = cli_env(DATABASE_URL=sqlite_url, REDIS_URL=redis_url)
    ok = run_cli(["users", "set-phone", "--email", STAFF, "--phone", DESK_PHONE], env)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "phone for front@riverside.example: +44******0900\n"
    bad = run_cli(["users", "set-phone", "--email", STAFF, "--phone", "07700 900900"], env)
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1
    assert bad.stderr.startswith("error: ")
