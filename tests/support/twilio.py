"""A stand-in for Twilio in tests: builds realistic webhook forms and signs them."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import responses
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

TOKEN = "test-auth-token-0123456789abcdef"
ACCOUNT_SID = "AC" + "0" * 32
CLINIC_UK = "+442071234567"
CLINIC_EU = "+493012345678"
CLINIC_US = "+12125550123"
PATIENT = "+447700900123"
PATIENT_2 = "+447700900456"


def sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def sign(url: str, params: dict[str, str], token: str = TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


@dataclass
class TwilioSim:
    client: FlaskClient
    base_url: str
    token: str = TOKEN

    def post(
        self,
        path: str,
        params: dict[str, str],
        *,
        signature: str | None = None,
        signed_url: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> TestResponse:
        """POST like Twilio: form-encoded, signed over base + path (+ query)."""
        if path.startswith(self.base_url):
            path = path[len(self.base_url) :]
        url = signed_url or self.base_url + path
        sig = signature if signature is not None else sign(url, params, self.token)
        all_headers = {"X-Twilio-Signature": sig} if sig else {}
        all_headers.update(headers or {})
        return self.client.post(
            path,
            data=urlencode(params),
            content_type="application/x-www-form-urlencoded",
            headers=all_headers,
        )

    def voice_params(
        self, call_sid: str, from_: str = PATIENT, to: str = CLINIC_UK, **extra: Any
    ) -> dict[str, str]:
        params = {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "CallSid": call_sid,
            "CallStatus": "ringing",
            "Called": to,
            "Caller": from_,
            "Direction": "inbound",
            "From": from_,
            "To": to,
            "FromCountry": "GB",
            "ToCountry": "GB",
        }
        params.update({k: str(v) for k, v in extra.items()})
        return params

    def call(self, call_sid: str, from_: str = PATIENT, to: str = CLINIC_UK) -> TestResponse:
        return self.post("/twilio/voice", self.voice_params(call_sid, from_, to))

    def status(
        self, call_sid: str, status: str, duration: int | None = None, **kw: Any
    ) -> TestResponse:
        params = self.voice_params(call_sid, CallStatus=status, **kw)
        if duration is not None:
            params["CallDuration"] = str(duration)
        return self.post("/twilio/voice/status", params)

    def sms(
        self, body: str, from_: str = PATIENT, to: str = CLINIC_UK, message_sid: str | None = None
    ) -> TestResponse:
        message_sid = message_sid or sid("SM")
        params = {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "Body": body,
            "From": from_,
            "To": to,
            "MessageSid": message_sid,
            "SmsMessageSid": message_sid,
            "SmsSid": message_sid,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsStatus": "received",
        }
        return self.post("/twilio/sms", params)


REST_API = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}"


@contextmanager
def rest_that_works() -> Iterator[responses.RequestsMock]:
    """Twilio's REST API at the HTTP layer, answering as it does when all is well: starting
    a call's recording and sending an SMS succeed. Tests add or assert further calls."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(
            responses.POST,
            re.compile(rf"{REST_API}/Calls/CA\w+/Recordings\.json"),
            json={"sid": "RE" + "0" * 32, "status": "in-progress"},
            status=201,
        )
        mock.add_callback(
            responses.POST,
            f"{REST_API}/Messages.json",
            callback=lambda _req: (201, {}, json.dumps({"sid": sid("SM"), "status": "queued"})),
            content_type="application/json",
        )
        yield mock
