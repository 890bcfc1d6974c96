"""Only requests signed by Twilio for our public URL are obeyed; the rest change nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from callgateway.app import create_app
from callgateway.db.models import Call, Message
from callgateway.wiring import Services
from tests.support.settings import BASE_URL
from tests.support.twilio import TwilioSim, sid, sign


@pytest.fixture
def svc(make_services: Callable[..., Services], db_url: str) -> Services:
    return make_services(db_url)


@pytest.fixture
def tw(svc: Services) -> TwilioSim:
    client: FlaskClient = create_app({"TESTING": True}, services=svc).test_client()
    return TwilioSim(client, BASE_URL)


def rows(svc: Services) -> tuple[int, int]:
    with svc.db.session() as s:
        return (
            s.scalar(select(func.count()).select_from(Call)) or 0,
            s.scalar(select(func.count()).select_from(Message)) or 0,
        )


def test_a_correctly_signed_call_is_answered(tw: TwilioSim, svc: Services) -> None:
    response = tw.call(sid("CA"))
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert rows(svc) == (1, 0)


@pytest.mark.parametrize("path", ["/twilio/voice", "/twilio/voice/status", "/twilio/sms"])
def test_unsigned_request_is_refused_and_writes_nothing(
    tw: TwilioSim, svc: Services, path: str
) -> None:
    params = tw.voice_params(sid("CA"), Body="STOP", MessageSid=sid("SM"))
    response = tw.post(path, params, signature="")
    assert response.status_code == 403
    assert rows(svc) == (0, 0)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/twilio/voice"), ("PUT", "/twilio/sms"), ("POST", "/twilio/no-such-hook")],
)
def test_unsigned_request_to_any_twilio_path_or_method_gets_403(
    tw: TwilioSim, svc: Services, method: str, path: str
) -> None:
    # Not 404 or 405: an unsigned caller learns nothing about which webhooks exist.
    response = tw.client.open(path, method=method, data=tw.voice_params(sid("CA")))
    assert response.status_code == 403
    assert rows(svc) == (0, 0)


def test_a_signed_request_to_an_unknown_twilio_path_is_not_found(tw: TwilioSim) -> None:
    assert tw.post("/twilio/no-such-hook", tw.voice_params(sid("CA"))).status_code == 404


def test_forged_signature_is_refused(tw: TwilioSim, svc: Services) -> None:
    params = tw.voice_params(sid("CA"))
    forged = sign(BASE_URL + "/twilio/voice", params, token="not-the-auth-token")
    assert tw.post("/twilio/voice", params, signature=forged).status_code == 403
    assert rows(svc) == (0, 0)


def test_request_replayed_to_another_url_is_refused(tw: TwilioSim, svc: Services) -> None:
    params = tw.voice_params(sid("CA"), CallStatus="completed", CallDuration="30")
    # Signed for the status callback, delivered to the incoming-call URL.
    response = tw.post("/twilio/voice", params, signed_url=BASE_URL + "/twilio/voice/status")
    assert response.status_code == 403
    # Signed for another host (what request.url would be behind a proxy).
    response = tw.post("/twilio/voice", params, signed_url="http://localhost/twilio/voice")
    assert response.status_code == 403
    assert rows(svc) == (0, 0)


def test_tampered_parameter_is_refused(tw: TwilioSim, svc: Services) -> None:
    params = tw.voice_params(sid("CA"))
    good = sign(BASE_URL + "/twilio/voice", params)
    params["From"] = "+447700900999"
    assert tw.post("/twilio/voice", params, signature=good).status_code == 403
    assert rows(svc) == (0, 0)


def test_query_string_is_part_of_what_is_signed(tw: TwilioSim, svc: Services) -> None:
    params = tw.voice_params(sid("CA"), CallStatus="completed", CallDuration="5")
    signed_for_a = sign(BASE_URL + "/twilio/voice/status?leg=a", params)
    response = tw.post("/twilio/voice/status?leg=b", params, signature=signed_for_a)
    assert response.status_code == 403
    assert rows(svc) == (0, 0)
    assert tw.post("/twilio/voice/status?leg=a", params, signature=signed_for_a).status_code == 200


def test_signature_over_the_url_with_an_explicit_default_port_is_accepted(
    tw: TwilioSim, svc: Services
) -> None:
    # Twilio sometimes signs https://host:443/...; the request is still genuine.
    params = tw.voice_params(sid("CA"))
    with_port = BASE_URL.replace(".test", ".test:443") + "/twilio/voice"
    assert tw.post("/twilio/voice", params, signed_url=with_port).status_code == 200
    assert rows(svc) == (1, 0)
