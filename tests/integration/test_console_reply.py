"""Answering a patient's text from the messages page: Twilio's Messages API faked at the
HTTP layer with the real API's payloads, the delivery status by signed callback, and a
number that has opted out refused before Twilio is asked, with the reason in words."""

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
from callgateway.db.models import Message
from callgateway.wiring import Services
from tests.support.console import Browser, add_user, audit_entries
from tests.support.settings import BASE_URL
from tests.support.twilio import ACCOUNT_SID, CLINIC_UK, PATIENT, REST_API, TwilioSim, sid

A = "riverside-physio"
REPLY = "No problem, see you soon."


def message_resource(to: str, from_: str, body: str, status: str = "queued") -> dict[str, object]:
    """Twilio's Message resource as Messages.json returns it on create."""
    message_sid = sid("SM")
    return {
        "account_sid": ACCOUNT_SID,
        "api_version": "2010-04-01",
        "body": body,
        "date_created": "Tue, 24 Nov 2026 10:00:00 +0000",
        "date_sent": None,
        "date_updated": "Tue, 24 Nov 2026 10:00:00 +0000",
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": from_,
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": message_sid,
        "status": status,
        "subresource_uris": {
            "media": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{message_sid}/Media.json"
        },
        "to": to,
        "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{message_sid}.json",
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
def messages_api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as api:

        def create(request: object) -> tuple[int, dict[str, str], str]:
            form = {k: v[0] for k, v in parse_qs(request.body).items()}  # type: ignore[attr-defined]
            return 201, {}, json.dumps(message_resource(form["To"], form["From"], form["Body"]))

        api.add_callback(
            responses.POST,
            f"{REST_API}/Messages.json",
            callback=create,
            content_type="application/json",
        )
        yield api


@pytest.fixture
def desk(svc: Services, app: Flask) -> Browser:
    add_user(svc, "front@riverside.example", [A])
    browser = Browser(app.test_client())
    assert browser.login("front@riverside.example").status_code == 303
    return browser


def sent(api: responses.RequestsMock) -> list[dict[str, str]]:
    return [
        {k: v[0] for k, v in parse_qs(c.request.body).items()}
        for c in api.calls
        if c.request.url.endswith("/Messages.json")
    ]


def reply_form(desk: Browser) -> tuple[str, str]:
    page = desk.text("/console/messages?show=all")
    action = re.search(r'action="(/console/messages/\d+/reply)"', page).group(1)
    request_id = re.search(r'name="request_id" value="([0-9a-f]{32})"', page).group(1)
    return action, request_id


def test_staff_answer_a_text_and_see_it_delivered(
    svc: Services, twilio: TwilioSim, desk: Browser, messages_api: responses.RequestsMock
) -> None:
    twilio.sms("Running ten minutes late, sorry", from_=PATIENT)
    action, request_id = reply_form(desk)
    response = desk.post(action, {"body": REPLY, "request_id": request_id})
    assert response.status_code == 303
    page = desk.text(response.headers["Location"])
    assert "Reply sent." in page and f"Replied: {REPLY}" in page
    (request,) = sent(messages_api)
    assert request == {
        "To": PATIENT,
        "From": CLINIC_UK,
        "Body": REPLY,
        "StatusCallback": f"{BASE_URL}/twilio/outbound/sms/status",
    }
    with svc.db.session() as s:
        out = s.scalars(select(Message).where(Message.direction == "out")).one()
        incoming = s.scalars(select(Message).where(Message.direction == "in")).one()
    assert incoming.handled and out.status == "queued" and out.kind == "staff-reply"
    # Twilio's signed status callback moves it on.
    twilio.post(
        "/twilio/outbound/sms/status",
        {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "MessageSid": out.message_sid,
            "SmsSid": out.message_sid,
            "MessageStatus": "delivered",
            "SmsStatus": "delivered",
            "To": PATIENT,
            "From": CLINIC_UK,
        },
    )
    assert "(delivered)" in desk.text("/console/messages?show=all")
    (entry,) = audit_entries(svc, "console.sms.reply")
    assert entry.detail["message_sid"] == out.message_sid and REPLY not in str(entry.detail)


def test_sending_the_same_reply_form_twice_sends_one_text(
    twilio: TwilioSim, desk: Browser, messages_api: responses.RequestsMock
) -> None:
    twilio.sms("Can I bring my son?", from_=PATIENT)
    action, request_id = reply_form(desk)
    desk.post(action, {"body": REPLY, "request_id": request_id})
    desk.post(action, {"body": REPLY, "request_id": request_id})
    assert len(sent(messages_api)) == 1


def test_a_number_that_texted_stop_is_refused_first_with_the_reason(
    svc: Services, twilio: TwilioSim, desk: Browser, messages_api: responses.RequestsMock
) -> None:
    twilio.sms("Running late", from_=PATIENT)
    action, request_id = reply_form(desk)
    twilio.sms("STOP", from_=PATIENT)
    page = desk.text(
        desk.post(action, {"body": REPLY, "request_id": request_id}).headers["Location"]
    )
    assert "Not sent: this number has opted out of texts from the clinic" in page
    assert sent(messages_api) == []
    assert len(audit_entries(svc, "console.sms.reply-refused")) == 1


def test_twilio_21610_is_explained_and_recorded_as_an_opt_out(
    svc: Services, twilio: TwilioSim, desk: Browser
) -> None:
    twilio.sms("Running late", from_=PATIENT)
    action, request_id = reply_form(desk)
    with responses.RequestsMock() as api:
        api.post(
            f"{REST_API}/Messages.json",
            status=400,
            json={
                "code": 21610,
                "message": "Attempt to send to unsubscribed recipient",
                "more_info": "https://www.twilio.com/docs/errors/21610",
                "status": 400,
            },
        )
        response = desk.post(action, {"body": REPLY, "request_id": request_id})
    page = desk.text(response.headers["Location"])
    assert "Twilio says this number has opted out" in page
    assert svc.consent.status(A, PATIENT).state == "opted_out"


def test_an_empty_reply_is_refused_and_nothing_is_sent(
    twilio: TwilioSim, desk: Browser, messages_api: responses.RequestsMock
) -> None:
    twilio.sms("Running late", from_=PATIENT)
    action, request_id = reply_form(desk)
    page = desk.text(
        desk.post(action, {"body": "   ", "request_id": request_id}).headers["Location"]
    )
    assert "Not sent: the reply is empty." in page
    assert sent(messages_api) == []
