"""Rotating the Twilio auth token: while TWILIO_AUTH_TOKEN_SECONDARY is set, webhooks
signed with either token are obeyed; one signed with a retired token gets 403 and changes
nothing; the REST client keeps using the primary."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from callgateway.app import create_app
from callgateway.config.settings import Settings, SettingsError
from callgateway.db.models import Call, ConsentEvent
from callgateway.wiring import Services
from tests.support.booking import Phone
from tests.support.settings import BASE_URL
from tests.support.twilio import ACCOUNT_SID, TOKEN, TwilioSim, rest_that_works, sid

NEW_TOKEN = "new-auth-token-fedcba9876543210"
RETIRED_TOKEN = "old-auth-token-0011223344556677"


@pytest.fixture
def svc(make_services: Callable[..., Services], sqlite_url: str) -> Services:
    # Mid-rotation: the primary still signs REST calls; Twilio may sign with either.
    return make_services(sqlite_url, twilio_auth_token_secondary=NEW_TOKEN)


def twilio_signing_with(svc: Services, token: str) -> TwilioSim:
    return TwilioSim(create_app({"TESTING": True}, services=svc).test_client(), BASE_URL, token)


def calls(svc: Services) -> int:
    with svc.db.session() as s:
        return s.scalar(select(func.count()).select_from(Call)) or 0


@pytest.mark.parametrize("token", [TOKEN, NEW_TOKEN], ids=["primary", "secondary"])
def test_a_call_signed_with_either_token_is_answered_and_logged(svc: Services, token: str) -> None:
    response = twilio_signing_with(svc, token).call(sid("CA"))
    assert response.status_code == 200 and response.mimetype == "text/xml"
    assert calls(svc) == 1


def test_a_call_signed_with_a_retired_token_is_refused_and_changes_nothing(
    svc: Services,
) -> None:
    response = twilio_signing_with(svc, RETIRED_TOKEN).call(sid("CA"))
    assert response.status_code == 403
    assert calls(svc) == 0


def test_once_the_rotation_ends_the_old_primary_is_refused(
    make_services: Callable[..., Services], sqlite_url: str
) -> None:
    # Rotation done: the new token is the primary and no secondary is set.
    svc = make_services(sqlite_url, twilio_auth_token=NEW_TOKEN)
    assert twilio_signing_with(svc, TOKEN).call(sid("CA")).status_code == 403
    assert twilio_signing_with(svc, NEW_TOKEN).call(sid("CA")).status_code == 200
    assert calls(svc) == 1


def test_a_stop_signed_with_the_secondary_is_obeyed_and_confirmed_once(svc: Services) -> None:
    response = twilio_signing_with(svc, NEW_TOKEN).sms("STOP")
    assert response.status_code == 200 and "<Message>" in response.get_data(as_text=True)
    with svc.db.session() as s:
        assert [e.state for e in s.scalars(select(ConsentEvent))] == ["opted_out"]


def test_a_call_signed_with_the_secondary_starts_its_recording_with_the_primary(
    svc: Services,
) -> None:
    with rest_that_works() as api:
        phone = Phone(twilio_signing_with(svc, NEW_TOKEN))
        assert phone.dial().startswith("Thank you for calling Riverside Physiotherapy.")
        (started,) = [c.request for c in api.calls if "/Recordings.json" in c.request.url]
    expected = base64.b64encode(f"{ACCOUNT_SID}:{TOKEN}".encode()).decode()
    assert started.headers["Authorization"] == f"Basic {expected}"


def test_the_secondary_token_is_read_from_the_environment_and_never_shown() -> None:
    settings = Settings.from_env(
        {"TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_AUTH_TOKEN_SECONDARY": NEW_TOKEN}
    )
    assert settings.webhook_signing_tokens == (TOKEN, NEW_TOKEN)
    assert NEW_TOKEN not in repr(settings)
    assert Settings.from_env({"TWILIO_AUTH_TOKEN": TOKEN}).webhook_signing_tokens == (TOKEN,)


def test_the_dev_token_is_refused_as_a_secondary_in_production() -> None:
    from callgateway.config.settings import DEV_AUTH_TOKEN

    env = {
        "CALLGATEWAY_ENV": "production",
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_AUTH_TOKEN_SECONDARY": DEV_AUTH_TOKEN,
        "SECRET_KEY": "s" * 32,
        "CALLGATEWAY_SUBJECT_SALT": "salt" * 8,
    }
    with pytest.raises(SettingsError, match=r"^TWILIO_AUTH_TOKEN_SECONDARY:"):
        Settings.from_env(env)
