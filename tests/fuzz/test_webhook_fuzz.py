"""Correctly signed but hostile input on every Twilio webhook: never a 500, always TwiML or
an empty 200. Signing every example makes validation of the *content* the thing tested."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.twilio import ACCOUNT_SID, CLINIC_UK, PATIENT, TwilioSim

FIELDS = [
    "AccountSid",
    "CallSid",
    "MessageSid",
    "RecordingSid",
    "From",
    "To",
    "Caller",
    "Called",
    "CallStatus",
    "CallDuration",
    "Direction",
    "Body",
    "SpeechResult",
    "Confidence",
    "Digits",
    "DialCallStatus",
    "DialCallDuration",
    "RecordingUrl",
    "RecordingStatus",
    "RecordingDuration",
    "AnsweredBy",
    "MessageStatus",
    "ErrorCode",
]

odd_text = st.one_of(
    st.text(max_size=40),
    st.text(
        alphabet=st.characters(
            min_codepoint=0x80, max_codepoint=0x2FFFF, exclude_categories=("Cs",)
        ),
        max_size=20,
    ),
    st.sampled_from(
        [
            "",
            "CA" + "0" * 32,
            "CA" + "f" * 31,
            "SM" + "1" * 32,
            "RE" + "a" * 32,
            "Anonymous",
            "+266696687",
            PATIENT,
            CLINIC_UK,
            "+4420712345678901234",
            "-1",
            "99999999999999999999",
            "completed",
            "ringing",
            "in-progress",
            "no-answer",
            "STOP",
            "\x00\x01",
            "<Say>hi</Say>",
            "' OR 1=1 --",
            "x" * 5000,
        ]
    ),
)
forms = st.dictionaries(st.sampled_from(FIELDS), odd_text, max_size=len(FIELDS))


def twilio_paths(app: Flask) -> list[str]:
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/twilio/")
        and "POST" in (rule.methods or set())
        and "<" not in rule.rule
    )


def assert_valid_reply(path: str, status: int, body: str, mimetype: str) -> None:
    assert status == 200, f"{path} answered {status}"
    if mimetype == "text/xml":
        root = ET.fromstring(body)
        assert root.tag == "Response"
    else:
        assert body == ""


def test_every_twilio_route_is_covered(app: Flask) -> None:
    paths = twilio_paths(app)
    assert {"/twilio/voice", "/twilio/voice/status", "/twilio/sms"} <= set(paths)


@pytest.mark.parametrize("query", ["", "?kind=voicemail", "?kind=%00"])
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(form=forms)
def test_signed_garbage_never_causes_a_server_error(
    app: Flask, twilio: TwilioSim, form: dict[str, str], query: str
) -> None:
    form.setdefault("AccountSid", ACCOUNT_SID)
    for path in twilio_paths(app):
        response = twilio.post(path + query, form)
        assert_valid_reply(
            path, response.status_code, response.get_data(as_text=True), response.mimetype
        )
