"""Twilio's REST API answering 5xx, refusing connections or timing out.

The lifecycle's download/delete retries and reminder sends are proven in
tests/integration/test_recording_lifecycle.py and test_reminders.py. Here: the one REST call
made inside a live call (start recording, after the announcement) and the booking
confirmation SMS, which the caller must not wait for and must get exactly once.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
import requests
import responses
from sqlalchemy import select

from callgateway.adapters.clock import fixed
from callgateway.adapters.twilio_rest import TwilioRest
from callgateway.booking import outbox
from callgateway.config.settings import DEV_ACCOUNT_SID
from callgateway.db.models import Call, Message, OutboxItem
from callgateway.wiring import Services
from tests.support.booking import MONDAY_9AM, Phone, book_tuesday_afternoon
from tests.support.faults import API, app_for, assert_caller_is_served
from tests.support.twilio import CLINIC_UK, PATIENT, TwilioSim

pytest_plugins = ["tests.support.region_fixtures"]
RECORDINGS = re.compile(rf"{API}/Calls/CA\w+/Recordings\.json")


@pytest.fixture
def svc(services: Services) -> Services:
    services.clock = fixed(MONDAY_9AM)
    return services


def call_row(svc: Services, call_sid: str) -> Call:
    with svc.db.session() as s:
        return s.scalars(select(Call).where(Call.call_sid == call_sid)).one()


@pytest.mark.parametrize(
    "failure",
    [503, 429, requests.ConnectionError("refused"), requests.ReadTimeout("read timed out")],
    ids=["503", "429", "connection-refused", "read-timeout"],
)
def test_a_recording_twilio_would_not_start_leaves_the_call_unrecorded_with_the_ai(
    svc: Services, failure: int | Exception
) -> None:
    with responses.RequestsMock() as api:
        if isinstance(failure, int):
            api.post(RECORDINGS, status=failure, json={"code": 20500, "status": failure})
        else:
            api.post(RECORDINGS, body=failure)
        phone = Phone(app_for(svc))
        heard = phone.dial()
        assert len(api.calls) == 1  # asked once: a retry would be a recording unannounced later
    assert heard.startswith("Thank you for calling Riverside Physiotherapy. Calls are recorded")
    assert_caller_is_served(200, phone.last)
    assert phone.listening  # the call goes on: better unrecorded than dropped
    assert call_row(svc, phone.call_sid).recorded is False


@pytest.fixture
def hanging_twilio() -> Iterator[str]:
    """A Twilio that accepts the connection and never answers."""
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            release.wait(10)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    release.set()
    server.shutdown()
    server.server_close()


def test_a_hanging_twilio_costs_the_caller_only_the_adapters_timeout(
    svc: Services, hanging_twilio: str
) -> None:
    svc.twilio = TwilioRest(DEV_ACCOUNT_SID, "token", hanging_twilio, timeout=0.5)
    tw = app_for(svc)
    phone = Phone(tw)
    tw.call(phone.call_sid)
    started = time.monotonic()
    answer = tw.post("/twilio/voice/recording/start", tw.voice_params(phone.call_sid))
    assert time.monotonic() - started < 1.5
    assert_caller_is_served(answer.status_code, answer.get_data(as_text=True))
    assert "<Gather" in answer.get_data(as_text=True)
    assert call_row(svc, phone.call_sid).recorded is False


def test_the_booking_sms_survives_5xx_and_refused_connections_and_is_sent_once(
    stored_services: Services,
) -> None:
    svc = stored_services
    svc.clock = fixed(MONDAY_9AM)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as api:
        api.post(RECORDINGS, json={"sid": "RE" + "0" * 32}, status=201)
        messages = f"{API}/Messages.json"
        api.post(messages, status=503, json={"code": 20500})
        api.post(messages, body=requests.ConnectionError("refused"))
        api.post(messages, status=201, json={"sid": "SM" + "5" * 32, "status": "queued"})
        tw: TwilioSim = app_for(svc)
        book_tuesday_afternoon(tw)  # the caller heard "is booked" without waiting for Twilio

        now = MONDAY_9AM
        results = []
        for _ in range(4):
            results.append(outbox.sweep(svc))
            now += timedelta(hours=1)  # past any backoff
            svc.clock = fixed(now)
        sent = [c.request for c in api.calls if c.request.url == messages]
    assert [r["retry"] for r in results] == [1, 1, 0, 0]  # retried, not given up
    assert sum(r["done"] for r in results) == 2  # the bucket copy, then the SMS
    bodies = [parse_qs(str(r.body)) for r in sent]
    assert len(bodies) == 3 and all(b == bodies[0] for b in bodies)  # the same SMS each try
    assert bodies[0]["To"] == [PATIENT] and bodies[0]["From"] == [CLINIC_UK]
    with svc.db.session() as s:
        (message,) = s.scalars(select(Message).where(Message.direction == "out"))
        assert message.message_sid == "SM" + "5" * 32
        assert all(i.done_at is not None for i in s.scalars(select(OutboxItem)))


@pytest.mark.parametrize("twilio_sent_it", [True, False], ids=["sent", "not-sent"])
def test_a_booking_sms_that_timed_out_is_looked_up_at_twilio_before_it_is_sent_again(
    stored_services: Services, twilio_sent_it: bool
) -> None:
    svc = stored_services
    svc.clock = fixed(MONDAY_9AM)
    messages = f"{API}/Messages.json"
    with responses.RequestsMock(assert_all_requests_are_fired=True) as api:
        api.post(RECORDINGS, json={"sid": "RE" + "0" * 32}, status=201)
        # The request reached Twilio; its answer never reached us.
        api.post(messages, body=requests.ReadTimeout("read timed out"))
        tw: TwilioSim = app_for(svc)
        book_tuesday_afternoon(tw)
        first = outbox.sweep(svc)
        assert first["retry"] == 1
        (sent_body,) = [parse_qs(str(c.request.body))["Body"][0] for c in api.calls[-1:]]
        listed = {
            "sid": "SM" + "7" * 32,
            "to": PATIENT,
            "from": CLINIC_UK,
            "body": sent_body,
            "status": "delivered",
            "date_created": "Mon, 23 Nov 2026 09:00:05 +0000",
        }
        api.get(messages, json={"messages": [listed] if twilio_sent_it else [], "page": 0})
        if not twilio_sent_it:
            api.post(messages, status=201, json={"sid": "SM" + "8" * 32, "status": "queued"})
        svc.clock = fixed(MONDAY_9AM + timedelta(hours=1))  # past the backoff
        second = outbox.sweep(svc)
        posts = [c for c in api.calls if c.request.url == messages and c.request.method == "POST"]
        lookups = [c for c in api.calls if c.request.method == "GET"]
    assert second["done"] == 1 and second["retry"] == 0
    assert len(lookups) == 1 and parse_qs(lookups[0].request.url.split("?", 1)[1]) == {
        "To": [PATIENT],
        "From": [CLINIC_UK],
        "PageSize": ["50"],
    }
    # Exactly one SMS reaches the patient either way.
    assert len(posts) == (1 if twilio_sent_it else 2)
    with svc.db.session() as s:
        (message,) = s.scalars(select(Message).where(Message.direction == "out"))
    assert message.message_sid == ("SM" + "7" * 32 if twilio_sent_it else "SM" + "8" * 32)
