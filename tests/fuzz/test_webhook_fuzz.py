"""Correctly signed but hostile input on every Twilio webhook: never a 500, always TwiML or
an empty 200. Signing every example makes validation of the *content* the thing tested."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable
from urllib.parse import urlencode

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from callgateway.app import WEBHOOK_APP, create_app
from callgateway.db.models import Call, ConsentEvent, Recording, WorkItem
from callgateway.wiring import Services
from tests.support.settings import BASE_URL
from tests.support.twilio import ACCOUNT_SID, CLINIC_UK, CLINIC_US, PATIENT, TwilioSim, sid, sign

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
    hooks: Flask = app.extensions[WEBHOOK_APP]  # the Twilio surface is its own app
    return sorted(
        rule.rule
        for rule in hooks.url_map.iter_rules()
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
    app: Flask, twilio: TwilioSim, form: dict[str, str], query: str, fallbacks: Fallbacks
) -> None:
    form.setdefault("AccountSid", ACCOUNT_SID)
    for path in twilio_paths(app):
        response = twilio.post(path + query, form)
        assert_valid_reply(
            path, response.status_code, response.get_data(as_text=True), response.mimetype
        )
    fallbacks.assert_none()


# --- the edges Twilio's forms have in practice ---------------------------------------------
#
# The blueprint's last-resort handler (webhooks/unavailable.py) turns any exception into a
# fallback answer, which would hide a validation bug behind a 200. So every test here also
# asserts that the fallback was never needed: bad input is the views' job to refuse.


class Fallbacks:
    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog

    def assert_none(self) -> None:
        used = [
            f"{r.path}: {r.error}"
            for r in self.caplog.records
            if r.getMessage() == "webhook failed; fallback answer"
        ]
        assert used == [], used


@pytest.fixture
def fallbacks(caplog: pytest.LogCaptureFixture) -> Fallbacks:
    caplog.set_level(logging.ERROR, logger="callgateway.webhooks")
    return Fallbacks(caplog)


NUMERIC_FIELDS = [
    "CallDuration",
    "DialCallDuration",
    "RecordingDuration",
    "ErrorCode",
    "Confidence",
    "Digits",
]
# Characters str.isdigit() accepts but int() refuses (superscripts, circled digits), other
# scripts' digits, floats, signs, overflow: what a naive `isdigit() -> int()` trips on.
numeric_junk = st.one_of(
    st.sampled_from(
        ["²", "³", "①", "٣", "\uff11\uff12", "1.5", "-3", "+7", "1e9", "NaN", "inf", " 12 ", "0x1f"]
    ),
    st.sampled_from(["9" * n for n in (9, 10, 12, 19, 40)]),
    st.text(alphabet=st.characters(categories=("Nd", "No", "Nl")), min_size=1, max_size=12),
)
REFS = ["reminder", "attempt", "alert", "try"]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    values=st.fixed_dictionaries({}, optional={f: numeric_junk for f in NUMERIC_FIELDS}),
    ref=numeric_junk,
)
def test_numbers_of_the_wrong_type_are_refused_not_crashed_on(
    app: Flask, twilio: TwilioSim, values: dict[str, str], ref: str, fallbacks: Fallbacks
) -> None:
    form = twilio.voice_params(sid("CA"), CallStatus="completed", **values)
    form.update(RecordingSid=sid("RE"), MessageSid=sid("SM"), RecordingStatus="completed")
    query = "?" + urlencode({name: ref for name in REFS} | {"kind": "voicemail"})
    for path in twilio_paths(app):
        response = twilio.post(path + query, form)
        assert_valid_reply(
            path, response.status_code, response.get_data(as_text=True), response.mimetype
        )
    fallbacks.assert_none()


@pytest.mark.parametrize("ref", ["2147483648", "999999999999", "²"])
def test_an_outbound_reference_past_the_integer_column_is_refused_on_both_databases(
    make_services: Callable[..., Services], db_url: str, ref: str, fallbacks: Fallbacks
) -> None:
    """PostgreSQL's integer column ends at 2**31-1; a bigger id must never reach a query."""
    twilio = TwilioSim(
        create_app({"TESTING": True}, services=make_services(db_url)).test_client(), BASE_URL
    )
    form = twilio.voice_params(sid("CA"), CallStatus="completed", Direction="outbound-api")
    for path in [
        "/twilio/outbound/reminder/call",
        "/twilio/outbound/reminder/answer",
        "/twilio/outbound/checkin/call",
        "/twilio/outbound/checkin/answer",
        "/twilio/outbound/alert/call",
        "/twilio/outbound/call/status",
    ]:
        for name in REFS:
            response = twilio.post(f"{path}?{urlencode({name: ref})}", form)
            assert_valid_reply(
                path, response.status_code, response.get_data(as_text=True), response.mimetype
            )
    fallbacks.assert_none()


def test_events_for_calls_and_recordings_never_seen_store_only_what_twilio_vouched_for(
    app: Flask, twilio: TwilioSim, services: Services, fallbacks: Fallbacks
) -> None:
    """Correctly signed events about a CallSid we never answered (a call to another app on
    the account, a lost voice webhook): callers hear an apology, callbacks an empty 200."""
    stranger, nowhere = sid("CA"), sid("CA")
    for path in twilio_paths(app):
        if path in ("/twilio/voice", "/twilio/voice/status", "/twilio/sms"):
            continue
        response = twilio.post(path, twilio.voice_params(stranger, CallStatus="in-progress"))
        assert_valid_reply(
            path, response.status_code, response.get_data(as_text=True), response.mimetype
        )
        if response.mimetype == "text/xml":
            assert "<Gather" not in response.get_data(as_text=True), path  # no AI for it
    # A status callback for a call never seen (its voice webhook was lost): the call log
    # gets the row it would have had, placed by the number Twilio says was called.
    assert twilio.status(stranger, "completed", 31).status_code == 200
    # ...and for a number no clinic has: the row says so, and nothing else is stored.
    assert twilio.status(nowhere, "completed", 5, To="+15005550006").status_code == 200
    with services.db.session() as s:
        calls = {c.call_sid: c for c in s.scalars(select(Call))}
        assert set(calls) == {stranger, nowhere}
        assert (calls[stranger].clinic_id, calls[stranger].status) == (
            "riverside-physio",
            "completed",
        )
        assert calls[stranger].duration_seconds == 31
        assert calls[nowhere].clinic_id is None
        assert list(s.scalars(select(Recording))) == list(s.scalars(select(WorkItem))) == []
    fallbacks.assert_none()


@pytest.mark.parametrize("path", ["/twilio/voice", "/twilio/voice/status", "/twilio/sms"])
def test_a_body_over_the_256_kib_limit_gets_413_and_changes_nothing(
    twilio: TwilioSim, services: Services, path: str
) -> None:
    form = twilio.voice_params(sid("CA"), Body="STOP" + " " * (256 * 1024))
    response = twilio.post(path, form)  # correctly signed: the size alone refuses it
    assert response.status_code == 413
    with services.db.session() as s:
        assert list(s.scalars(select(Call))) == list(s.scalars(select(ConsentEvent))) == []
    # Just under the limit is an ordinary (if odd) request.
    form["Body"] = "x" * (200 * 1024)
    assert twilio.post(path, form).status_code == 200


def test_repeated_keys_are_read_as_twilio_signed_them_and_never_crash(
    app: Flask, twilio: TwilioSim, services: Services, fallbacks: Fallbacks
) -> None:
    """A field given twice (To to two clinics, two CallSids): signed over both values, as
    Twilio's validator does; the first value is the one used, and nothing crashes."""
    first, second = sid("CA"), sid("CA")
    pairs = [*twilio.voice_params(first).items(), ("CallSid", second), ("To", CLINIC_US)]
    pairs += [("From", "Anonymous"), ("Body", "STOP"), ("Body", "START"), ("MessageSid", sid("SM"))]
    form = MultiDict(pairs)
    for path in twilio_paths(app):
        signature = sign(BASE_URL + path, form)
        response = twilio.client.post(
            path,
            data=urlencode(pairs),
            content_type="application/x-www-form-urlencoded",
            headers={"X-Twilio-Signature": signature},
        )
        assert_valid_reply(
            path, response.status_code, response.get_data(as_text=True), response.mimetype
        )
    with services.db.session() as s:
        (call,) = s.scalars(select(Call))
        assert (call.call_sid, call.called, call.clinic_id) == (
            first,
            CLINIC_UK,
            "riverside-physio",
        )
    fallbacks.assert_none()
