"""Every call's page: calls played through the signed webhooks with the offline agent, then
read in the console as the front desk would. The clock is Monday 23 November 2026, 09:00 in
London (GMT), so the clinic's times read as UTC here and "GMT" says which zone they are in.
"""

from __future__ import annotations

import html as html_text
import re

import pytest
import responses
from flask import Flask
from sqlalchemy import select

from callgateway.app import create_app
from callgateway.db.models import Appointment, Call, Recording
from callgateway.phone import mask, parse_typed
from callgateway.wiring import Services
from tests.support.booking import (  # noqa: F401  (the aws, svc and rest fixtures)
    Phone,
    book_tuesday_afternoon,
    fixture_aws,
    fixture_rest,
    fixture_svc,
)
from tests.support.console import (
    Browser,
    add_call,
    add_item,
    add_user,
    add_voicemail,
    audit_entries,
)
from tests.support.settings import BASE_URL
from tests.support.twilio import PATIENT, PATIENT_2, TwilioSim

A, B = "riverside-physio", "spree-hausarzt"


@pytest.fixture
def app(svc: Services) -> Flask:
    return create_app({"TESTING": True}, services=svc)


@pytest.fixture
def phone_line(app: Flask) -> TwilioSim:
    return TwilioSim(app.test_client(), BASE_URL)


@pytest.fixture
def desk(svc: Services, app: Flask) -> Browser:
    add_user(svc, "front@riverside.example", [A])
    browser = Browser(app.test_client())
    assert browser.login("front@riverside.example").status_code == 303
    return browser


def call_id(svc: Services, call_sid: str) -> int:
    with svc.db.session() as s:
        return s.scalars(select(Call.id).where(Call.call_sid == call_sid)).one()


def text_of(html: str) -> str:
    return html_text.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def test_a_booking_call_reads_turn_by_turn_with_the_offer_and_the_ref(
    svc: Services, phone_line: TwilioSim, desk: Browser, rest: responses.RequestsMock
) -> None:
    phone = book_tuesday_afternoon(phone_line)
    phone.say("no thanks, that's all")
    phone.hang_up()
    with svc.db.session() as s:
        ref = s.scalars(select(Appointment.ref)).one()
    calls = desk.text("/console/calls")
    link = f"/console/calls/{call_id(svc, phone.call_sid)}"
    assert f'href="{link}"' in calls
    page = text_of(desk.text(link))
    assert mask(PATIENT) in page and PATIENT not in page
    assert "Riverside Physiotherapy" in page
    assert "Started Mon 23 Nov 2026, 09:00:00 GMT" in page
    assert "Outcome Booked" in page or "Outcome booked" in page
    assert "Handled by AI" in page
    said = page[page.index("Transcript") :]
    order = [
        "How can I help you today?",
        "Caller 09:00:00 I'd like to book an initial assessment next Tuesday afternoon",
        "AI 09:00:00 The first initial assessment I have is Tuesday 24 November at midday",
        "Offered Tue 24 Nov, 12:00; Tue 24 Nov, 13:00; Tue 24 Nov, 14:00",
        "yes please",
        f"Booked Initial assessment, Tue 24 Nov, 12:00 ref {ref}",
        "no thanks, that's all",
        "The AI ended the call",
    ]
    positions = [said.index(piece) for piece in order]
    assert positions == sorted(positions)
    # The appointment it touched.
    assert f"{ref}: Initial assessment, Tue 24 Nov, 12:00 (booked)" in page


def test_an_emergency_and_a_voice_opt_out_show_as_actions(
    svc: Services, phone_line: TwilioSim, desk: Browser, rest: responses.RequestsMock
) -> None:
    urgent = Phone(phone_line)
    urgent.dial()
    urgent.say("I have chest pain")
    leaving = Phone(phone_line, PATIENT_2)
    leaving.dial()
    leaving.say("please stop calling me")
    urgent_page = text_of(desk.text(f"/console/calls/{call_id(svc, urgent.call_sid)}"))
    assert "I have chest pain" in urgent_page
    assert "Emergency" in urgent_page or "emergency" in urgent_page
    opt_out_page = text_of(desk.text(f"/console/calls/{call_id(svc, leaving.call_sid)}"))
    assert "The caller opted out by voice" in opt_out_page
    assert "Transferred to a person: the caller opted out of the AI by voice" in opt_out_page


def test_a_voicemail_plays_through_a_short_link_from_the_call_page_and_each_play_is_audited(
    svc: Services, desk: Browser
) -> None:
    recording = add_voicemail(svc, A)
    page_url = f"/console/calls/{call_id(svc, recording.call_sid)}"
    page = desk.text(page_url)
    assert "<audio" not in page and "Play the voicemail" in page
    played = desk.post(f"{page_url}/recordings/{recording.id}/play")
    assert played.status_code == 200
    body = played.get_data(as_text=True)
    src = re.search(r'<audio[^>]* src="([^"]+)"', body).group(1).replace("&amp;", "&")
    assert "X-Amz-Expires=300" in src and f"clinics/{A}/voicemails/" in src
    csp = played.headers["Content-Security-Policy"]
    assert "media-src 'self' http" in csp
    desk.post(f"{page_url}/recordings/{recording.id}/play")
    entries = audit_entries(svc, "console.voicemail.play")
    assert len(entries) == 2 and entries[0].detail["recording_sid"] == recording.recording_sid


def test_a_recording_not_of_this_call_is_not_found(svc: Services, desk: Browser) -> None:
    recording = add_voicemail(svc, A)
    other = add_call(svc, A)
    response = desk.post(
        f"/console/calls/{call_id(svc, other.call_sid)}/recordings/{recording.id}/play"
    )
    assert response.status_code == 404
    assert audit_entries(svc, "console.voicemail.play") == []


def test_another_clinics_call_and_its_player_are_403_and_audited(
    svc: Services, desk: Browser
) -> None:
    recording = add_voicemail(svc, B)
    with svc.db.session() as s:
        s.get(Recording, recording.id).phone = "+4930901820"  # type: ignore[union-attr]
    theirs = call_id(svc, recording.call_sid)
    page = desk.get(f"/console/calls/{theirs}")
    assert page.status_code == 403
    assert "+4930901820" not in page.get_data(as_text=True)
    play = desk.post(f"/console/calls/{theirs}/recordings/{recording.id}/play")
    assert play.status_code == 403
    denied = audit_entries(svc, "console.denied")
    assert [(e.clinic_id, e.detail["record"]) for e in denied] == [(B, "call"), (B, "recording")]
    assert audit_entries(svc, "console.voicemail.play") == []


def test_the_queue_and_voicemails_link_to_the_call_page(svc: Services, desk: Browser) -> None:
    recording = add_voicemail(svc, A)
    link = f"/console/calls/sid/{recording.call_sid}"
    assert link in desk.text("/console/voicemails")
    item = add_item(svc, A, kind="callback", reason="caller-request")
    assert f"/console/calls/sid/{item.call_sid}" in desk.text("/console/queue")
    response = desk.get(link)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/console/calls/{call_id(svc, recording.call_sid)}"


@pytest.mark.parametrize(
    "typed", ["07700 900123", "+44 7700 900123", "0044 (0)7700-900123", "+447700900123"]
)
def test_the_call_log_finds_a_number_in_any_format_a_person_types(
    svc: Services, desk: Browser, typed: str
) -> None:
    wanted = add_call(svc, A, "+447700900123")
    add_call(svc, A, "+447700900999")
    response = desk.post("/console/calls", {"phone": typed})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert f'/console/calls/{call_id(svc, wanted.call_sid)}"' in body
    assert mask("+447700900999") not in body
    assert body.count('href="/console/calls/') == 1


def test_a_typed_number_that_is_not_a_number_is_explained_and_kept(desk: Browser) -> None:
    body = desk.post("/console/calls", {"phone": "call me maybe"}).get_data(as_text=True)
    assert "not a phone number we can read" in body
    assert 'value="call me maybe"' in body


def test_the_call_log_filters_by_the_clinics_day_and_by_outcome(
    svc: Services, desk: Browser
) -> None:
    from datetime import UTC, datetime

    late = add_call(svc, A, started_at=datetime(2026, 11, 22, 23, 30, tzinfo=UTC), outcome="booked")
    add_call(svc, A, started_at=datetime(2026, 11, 23, 8, 0, tzinfo=UTC), outcome="missed")
    sunday = desk.text("/console/calls?day=2026-11-22")
    assert sunday.count('href="/console/calls/') == 1
    assert f'/console/calls/{call_id(svc, late.call_sid)}"' in sunday
    missed = desk.text("/console/calls?outcome=missed")
    assert missed.count('href="/console/calls/') == 1 and "Missed" in missed


def test_the_messages_page_opens_the_senders_calls(
    svc: Services, app: Flask, desk: Browser
) -> None:
    tw = TwilioSim(app.test_client(), BASE_URL)
    tw.sms("Running ten minutes late", from_=PATIENT, to="+442071234567")
    theirs = add_call(svc, A, PATIENT)
    add_call(svc, A, PATIENT_2)
    page = desk.text("/console/messages")
    message_id = re.search(r'name="message" value="(\d+)"', page).group(1)
    body = desk.post("/console/calls", {"message": message_id}).get_data(as_text=True)
    assert body.count('href="/console/calls/') == 1
    assert f'/console/calls/{call_id(svc, theirs.call_sid)}"' in body


def test_parse_typed_reads_the_national_format_of_the_clinics_country() -> None:
    assert parse_typed("030 901820", "DE") == "+4930901820"
    assert parse_typed("07700 900123", "GB") == "+447700900123"
