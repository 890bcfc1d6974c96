"""Console pages against real services: voicemails from the region bucket, consent, texts,
the call log and the dashboard's figures."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from callgateway.adapters.clock import fixed
from callgateway.app import create_app
from callgateway.config.retention import retention_until
from callgateway.db.models import Appointment, Call, ConsentEvent, WorkItem
from callgateway.phone import mask
from callgateway.wiring import Services
from consent import ledger
from tests.support.console import (
    NOW,
    WAV,
    Browser,
    add_call,
    add_item,
    add_user,
    add_voicemail,
    audit_entries,
    item_state,
)
from tests.support.region_fixtures import (  # noqa: F401  (fixtures)
    aws_env,
    region_config,
    region_config_path,
    stored_services,
)
from tests.support.settings import BASE_URL
from tests.support.twilio import PATIENT, PATIENT_2, TwilioSim, sid


def signed_in(svc: Services, clinics: list[str], email: str = "front@riverside.example") -> Browser:
    add_user(svc, email, clinics)
    browser = Browser(create_app({"TESTING": True}, services=svc).test_client())
    assert browser.login(email).status_code == 303
    return browser


@pytest.fixture
def svc(make_services: Callable[..., Services], sqlite_url: str) -> Services:
    services = make_services(sqlite_url)
    services.clock = fixed(NOW)
    return services


@pytest.fixture
def bucketed(stored_services: Services) -> Services:  # noqa: F811
    """Services with fresh region buckets on the moto endpoint (the storage tests' own)."""
    return stored_services


@pytest.fixture
def staff(svc: Services) -> Browser:
    return signed_in(svc, ["riverside-physio"])


# --- voicemails --------------------------------------------------------------------------


def test_a_stored_voicemail_plays_from_a_short_lived_link_and_playing_is_audited(
    bucketed: Services,
) -> None:
    svc = bucketed
    staff = signed_in(svc, ["riverside-physio"])
    recording = add_voicemail(svc, "riverside-physio")
    listing = staff.text("/console/voicemails")
    assert f'data-voicemail="{recording.id}"' in listing
    assert "0:17" in listing and PATIENT not in listing
    response = staff.post(f"/console/voicemails/{recording.id}/play")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    link = html.unescape(re.search(r'<audio[^>]* src="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    assert link.startswith(svc.settings.aws_endpoint_url or "")
    assert "X-Amz-Expires=300" in link
    fetched = requests.get(link, timeout=10)
    assert fetched.status_code == 200 and fetched.content == WAV
    # The page may load audio from the bucket's origin and nowhere else.
    assert (
        f"media-src 'self' {svc.settings.aws_endpoint_url}"
        in response.headers["Content-Security-Policy"]
    )
    (entry,) = audit_entries(svc, "console.voicemail.play")
    assert entry.clinic_id == "riverside-physio" and entry.actor.startswith("user:")
    assert entry.detail == {"recording_sid": recording.recording_sid, "region": "uk"}


def test_a_voicemail_still_on_its_way_cannot_be_played_yet(
    bucketed: Services,
) -> None:
    staff = signed_in(bucketed, ["riverside-physio"])
    recording = add_voicemail(bucketed, "riverside-physio", status="pending")
    listing = staff.text("/console/voicemails")
    assert "Arriving" in listing
    assert f"/console/voicemails/{recording.id}/play" not in listing
    response = staff.post(f"/console/voicemails/{recording.id}/play")
    assert response.status_code == 303
    assert "still on its way" in staff.text("/console/voicemails")
    assert audit_entries(bucketed, "console.voicemail.play") == []


def test_another_clinics_voicemail_is_forbidden_and_nothing_is_signed(
    bucketed: Services,
) -> None:
    staff = signed_in(bucketed, ["riverside-physio"])
    theirs = add_voicemail(bucketed, "hudson-family")
    assert f'data-voicemail="{theirs.id}"' not in staff.text("/console/voicemails")
    response = staff.post(f"/console/voicemails/{theirs.id}/play")
    assert response.status_code == 403
    assert "X-Amz" not in response.get_data(as_text=True)
    assert audit_entries(bucketed, "console.voicemail.play") == []


def test_a_voicemail_is_claimed_and_closed_from_its_page(bucketed: Services) -> None:
    staff = signed_in(bucketed, ["riverside-physio"])
    recording = add_voicemail(bucketed, "riverside-physio")
    with bucketed.db.session() as session:
        item_id = session.scalars(
            select(WorkItem.id).where(
                WorkItem.call_sid == recording.call_sid, WorkItem.kind == "voicemail"
            )
        ).one()
    staff.post(f"/console/voicemails/{recording.id}/play")
    staff.post(f"/console/items/{item_id}/claim", {"back": "/console/voicemails"})
    assert item_state(bucketed, item_id)[0] == "claimed"
    staff.post(f"/console/items/{item_id}/done", {"back": "/console/voicemails"})
    assert item_state(bucketed, item_id)[0] == "done"
    assert f'data-voicemail="{recording.id}"' not in staff.text("/console/voicemails")
    assert f'data-voicemail="{recording.id}"' in staff.text("/console/voicemails?show=all")


# --- consent -----------------------------------------------------------------------------


def test_staff_record_an_opt_out_and_the_gate_obeys_it_at_once(
    svc: Services, staff: Browser
) -> None:
    looked_up = staff.post("/console/consent", {"clinic": "riverside-physio", "phone": PATIENT})
    assert "No preference recorded" in looked_up.get_data(as_text=True)
    assert svc.gate.may("riverside-physio", PATIENT, "ai_handling").allowed
    form = {
        "clinic": "riverside-physio",
        "phone": PATIENT,
        "state": "opted_out",
        "request_id": "ab" * 16,
    }
    first = staff.post("/console/consent/record", form)
    assert "now opted out" in first.get_data(as_text=True)
    again = staff.post("/console/consent/record", form)  # a double submit
    assert "Already recorded" in again.get_data(as_text=True)
    status = svc.consent.status("riverside-physio", PATIENT)
    assert status.state == ledger.OPTED_OUT
    assert [e["channel"] for e in status.events] == ["staff"]
    assert not svc.gate.may("riverside-physio", PATIENT, "ai_handling").allowed
    assert svc.gate.may("spree-hausarzt", PATIENT, "ai_handling").allowed
    assert len(audit_entries(svc, "consent.opted_out")) == 1
    assert len(audit_entries(svc, "console.consent.lookup")) == 1


def test_staff_record_an_opt_in_after_a_text_stop(svc: Services, staff: Browser) -> None:
    svc.consent.record_opt_out("riverside-physio", PATIENT, "sms", sid("SM"))
    page = staff.post(
        "/console/consent", {"clinic": "riverside-physio", "phone": PATIENT}
    ).get_data(as_text=True)
    assert "Opted out" in page and "Text message" in page
    staff.post(
        "/console/consent/record",
        {"clinic": "riverside-physio", "phone": PATIENT, "state": "opted_in"},
    )
    assert svc.consent.status("riverside-physio", PATIENT).state == ledger.OPTED_IN


def test_a_malformed_number_is_refused_with_a_hint(staff: Browser) -> None:
    response = staff.post("/console/consent", {"clinic": "riverside-physio", "phone": "07700"})
    assert response.status_code == 400
    assert "international form" in response.get_data(as_text=True)


def test_consent_for_another_clinic_is_forbidden(svc: Services, staff: Browser) -> None:
    response = staff.post(
        "/console/consent/record",
        {"clinic": "spree-hausarzt", "phone": PATIENT, "state": "opted_out"},
    )
    assert response.status_code == 403
    with svc.db.session() as session:
        assert list(session.scalars(select(ConsentEvent))) == []


# --- messages and calls --------------------------------------------------------------------


def test_texts_to_the_clinic_are_listed_masked_and_can_be_marked_handled(
    svc: Services, staff: Browser
) -> None:
    twilio = TwilioSim(staff.client, BASE_URL)
    twilio.sms("Can I move my Tuesday appointment to the afternoon?")
    twilio.sms("Hallo, ich brauche einen Termin", to="+493012345678", from_=PATIENT_2)
    page = staff.text("/console/messages")
    assert "Can I move my Tuesday appointment to the afternoon?" in page
    assert "ich brauche" not in page  # another clinic's
    assert mask(PATIENT) in page and PATIENT not in page
    message_id = re.search(r"/console/messages/(\d+)/handled", page).group(1)  # type: ignore[union-attr]
    staff.post(f"/console/messages/{message_id}/handled")
    assert "Tuesday appointment" not in staff.text("/console/messages")
    assert "Tuesday appointment" in staff.text("/console/messages?show=all")


def test_call_log_masks_numbers_and_an_audited_reveal_shows_one(
    svc: Services, staff: Browser
) -> None:
    call = add_call(svc, "riverside-physio", PATIENT, "voicemail", outcome="voicemail")
    add_call(svc, "riverside-physio", "anonymous", "ai")
    page = staff.text("/console/calls")
    assert PATIENT not in page and mask(PATIENT) in page
    assert "withheld" in page
    with svc.db.session() as session:
        call_id = session.scalars(select(Call.id).where(Call.call_sid == call.call_sid)).one()
    revealed = staff.post(f"/console/reveal/call/{call_id}").get_data(as_text=True)
    assert PATIENT in revealed
    assert len(audit_entries(svc, "console.reveal")) == 1
    only_voicemail = staff.text("/console/calls?handled=voicemail")
    assert only_voicemail.count('<td data-label="Started">') == 1


# --- dashboard ---------------------------------------------------------------------------


def add_escalation(svc: Services, handled_by: str) -> None:
    item = add_item(svc, "riverside-physio")
    with svc.db.session() as session:
        session.execute(
            Call.__table__.update()  # type: ignore[attr-defined]
            .where(Call.call_sid == item.call_sid)
            .values(handled_by=handled_by)
        )


def add_appointment(svc: Services, source: str) -> None:
    clinic = svc.directory.by_id("riverside-physio")
    now = svc.clock()
    with svc.db.session() as session:
        session.add(
            Appointment(
                ref=sid("AP")[:12],
                clinic_id="riverside-physio",
                phone=PATIENT,
                type_id="initial",
                starts_at=now + timedelta(days=2),
                ends_at=now + timedelta(days=2, minutes=45),
                status="booked",
                source=source,
                created_at=now,
                updated_at=now,
                data_category="appointment",
                retention_until=retention_until(svc.config, clinic, "appointment", now),
            )
        )


def tfoot(page: str, key: str) -> list[str]:
    table = re.search(rf'id="table-{key}".*?<tfoot>(.*?)</tfoot>', page, re.S)
    assert table, key
    return re.findall(r"<td[^>]*>(.*?)</td>", table.group(1))


def test_dashboard_counts_calls_bookings_answer_rate_and_opt_outs(
    svc: Services, staff: Browser
) -> None:
    yesterday = NOW - timedelta(days=1)
    for handled, count in (("ai", 3), ("human", 1), ("voicemail", 2), ("none", 1)):
        for _ in range(count):
            add_call(svc, "riverside-physio", handled_by=handled)
    for _ in range(2):
        add_call(svc, "riverside-physio", handled_by="ai", started_at=yesterday)
    # Not counted: another clinic, an outbound reminder call, a call before the period.
    add_call(svc, "spree-hausarzt", handled_by="ai")
    add_call(svc, "riverside-physio", handled_by="ai", direction="outbound")
    add_call(svc, "riverside-physio", handled_by="ai", started_at=NOW - timedelta(days=20))
    for handled in ("human", "human", "human", "none"):
        add_escalation(svc, handled)
    add_appointment(svc, "ai")
    add_appointment(svc, "ai")
    add_appointment(svc, "staff")
    svc.consent.record_opt_out("riverside-physio", PATIENT, "sms", sid("SM"))
    svc.consent.record_opt_out("riverside-physio", PATIENT_2, "voice", sid("CA"))
    svc.consent.record_opt_in("riverside-physio", PATIENT, "sms", sid("SM"))

    page = staff.text("/console/dashboard")
    assert tfoot(page, "calls") == ["5", "4", "2", "2"]  # AI, person, voicemail, missed
    assert tfoot(page, "bookings") == ["2"]
    assert tfoot(page, "answer") == ["3", "4", "75%"]
    assert tfoot(page, "optouts") == ["1", "1", "0"]  # text, voice, staff
    for chart in ("chart-calls", "chart-bookings", "chart-answer", "chart-optouts"):
        assert re.search(rf'<svg class="chart" id="{chart}"[^>]* role="img"', page)
        assert f'aria-labelledby="{chart}-title {chart}-desc"' in page
    assert "13 calls in 14 days: AI-handled 5, Person 4, Voicemail 2, Missed 2." in page
    assert "Tue 24 Nov: AI-handled 3" in page  # a bar's tooltip
    assert "Europe/London" in page
    week = staff.text("/console/dashboard?days=7")
    assert week.count('<th scope="row">') == 4 * 8  # four tables of 7 days + the total


def test_dashboard_of_an_empty_clinic_renders_zeros(staff: Browser) -> None:
    page = staff.text("/console/dashboard?clinic=riverside-physio&days=30")
    assert tfoot(page, "calls") == ["0", "0", "0", "0"]
    assert tfoot(page, "answer")[-1] == "\N{EN DASH}"
