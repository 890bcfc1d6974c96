"""The bench's reference apps must do the work they stand for, or their figures lie."""

from __future__ import annotations

import pytest

from bench.floor import create_signed_app
from bench.scenarios import Context, voice_params
from tests.support.twilio import sign

BASE = "http://localhost"


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "reference-token")
    return create_signed_app().test_client()


def test_the_signed_reference_answers_a_signed_webhook(client) -> None:  # type: ignore[no-untyped-def]
    form = voice_params(Context(to_number="+442071234567"), 0)
    sig = sign(f"{BASE}/twilio/voice", form, "reference-token")
    resp = client.post("/twilio/voice", data=form, headers={"X-Twilio-Signature": sig})
    assert resp.status_code == 200 and b"<Say>" in resp.data


def test_the_signed_reference_refuses_unsigned_forged_and_tampered_webhooks(client) -> None:  # type: ignore[no-untyped-def]
    form = voice_params(Context(to_number="+442071234567"), 0)
    good = sign(f"{BASE}/twilio/voice", form, "reference-token")
    forged = sign(f"{BASE}/twilio/voice", form, "another-token")
    tampered = {**form, "From": "+447700900999"}
    for data, headers in (
        (form, {}),
        (form, {"X-Twilio-Signature": forged}),
        (tampered, {"X-Twilio-Signature": good}),
    ):
        assert client.post("/twilio/voice", data=data, headers=headers).status_code == 403
