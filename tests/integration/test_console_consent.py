"""The console's consent page: a double-submitted staff form is one event, and the list of
every number's current state (scoped to the user's clinics, masked, paged)."""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser

import pytest
from sqlalchemy import func, select

from callgateway.adapters.clock import fixed
from callgateway.app import create_app
from callgateway.console import consent_page
from callgateway.db.models import ConsentEvent
from callgateway.phone import mask
from callgateway.wiring import Services
from consent import ledger
from tests.support.console import NOW, Browser, add_user, audit_entries
from tests.support.twilio import sid

A, B = "riverside-physio", "spree-hausarzt"
# Not PATIENT: that is the look-up form's placeholder, on every consent page in clear.
ONE, TWO, THREE = "+447700900701", "+447700900702", "+447700900703"
OTHER = "+4915100900704"  # clinic B's patient


class Forms(HTMLParser):
    """Every form on a page: its action and its fields, as a browser would submit them."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((attr.get("action", ""), {}))
        elif tag == "input" and self.forms and "name" in attr:
            self.forms[-1][1][attr["name"]] = attr.get("value", "")


def record_forms(page: str) -> dict[str, dict[str, str]]:
    """The staff record forms on a page, by the state each records."""
    return {
        fields["state"]: fields
        for action, fields in Forms(page).forms
        if action == "/console/consent/record"
    }


def number_rows(page: str) -> list[dict[str, str]]:
    """The per-number table, one dict of cell text by column label per row."""
    table = re.search(r'<table class="list" id="consent-numbers">(.*?)</table>', page, re.S)
    assert table is not None
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S):
        cells = re.findall(r'<td data-label="([^"]+)"[^>]*>(.*?)</td>', row, re.S)
        if cells:
            rows.append({k: " ".join(re.sub(r"<[^>]+>", " ", v).split()) for k, v in cells})
    return rows


def older_link(page: str) -> str | None:
    found = re.search(r'<a href="([^"]+)">More numbers</a>', page)
    return found.group(1).replace("&amp;", "&") if found else None


def event_count(svc: Services) -> int:
    with svc.db.session() as session:
        return session.scalar(select(func.count()).select_from(ConsentEvent)) or 0


def newest_event_id(svc: Services, clinic_id: str, phone: str) -> int:
    with svc.db.session() as session:
        found = session.scalar(
            select(func.max(ConsentEvent.id)).where(
                ConsentEvent.clinic_id == clinic_id, ConsentEvent.phone == phone
            )
        )
    assert found is not None
    return found


@pytest.fixture
def svc(make_services: Callable[..., Services], db_url: str) -> Services:
    """SQLite and Postgres both: the per-number list is hand-written SQL."""
    services = make_services(db_url)
    services.clock = fixed(NOW)
    return services


def signed_in(svc: Services, email: str, clinics: list[str], role: str = "staff") -> Browser:
    add_user(svc, email, clinics, role=role)
    browser = Browser(create_app({"TESTING": True}, services=svc).test_client())
    assert browser.login(email).status_code == 303
    return browser


@pytest.fixture
def staff_a(svc: Services) -> Browser:
    return signed_in(svc, "front@riverside.example", [A])


# --- a double submit ---------------------------------------------------------------------


def test_each_record_form_carries_its_own_valid_request_id(staff_a: Browser) -> None:
    page = staff_a.post("/console/consent", {"clinic": A, "phone": ONE}).get_data(as_text=True)
    forms = record_forms(page)
    assert set(forms) == {ledger.OPTED_OUT, ledger.OPTED_IN}
    ids = [f["request_id"] for f in forms.values()]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids), ids
    assert ids[0] != ids[1]


def test_the_same_form_posted_twice_is_one_event_and_one_audit_entry(
    svc: Services, staff_a: Browser
) -> None:
    page = staff_a.post("/console/consent", {"clinic": A, "phone": ONE}).get_data(as_text=True)
    forms = record_forms(page)
    opt_out = {k: v for k, v in forms[ledger.OPTED_OUT].items() if k != "csrf_token"}

    first = staff_a.post("/console/consent/record", opt_out)
    again = staff_a.post("/console/consent/record", opt_out)  # a double click, a resend

    assert first.status_code == 200 and "now opted out" in first.get_data(as_text=True)
    assert again.status_code == 200
    answer = again.get_data(as_text=True)
    assert "Already recorded" in answer and 'id="consent-status"' in answer
    assert event_count(svc) == 1
    assert len(audit_entries(svc, "consent.opted_out")) == 1
    assert svc.consent.status(A, ONE).state == ledger.OPTED_OUT

    # The other form of that same page is a different request: it still counts.
    opt_in = {k: v for k, v in forms[ledger.OPTED_IN].items() if k != "csrf_token"}
    assert "now opted back in" in staff_a.post("/console/consent/record", opt_in).get_data(
        as_text=True
    )
    assert event_count(svc) == 2
    assert svc.consent.status(A, ONE).state == ledger.OPTED_IN


# --- the per-number list -----------------------------------------------------------------


def test_the_list_shows_each_numbers_current_state_newest_first_masked(
    svc: Services, staff_a: Browser
) -> None:
    svc.consent.record_opt_out(A, ONE, "sms", sid("SM"))
    svc.consent.record_opt_out(A, TWO, "voice", f"{sid('CA')}:opt_out")
    # ONE opts out, then back in, by the staff forms: one row, opted in, now the newest.
    page = staff_a.post("/console/consent", {"clinic": A, "phone": ONE}).get_data(as_text=True)
    form = {k: v for k, v in record_forms(page)[ledger.OPTED_IN].items() if k != "csrf_token"}
    staff_a.post("/console/consent/record", form)

    page = staff_a.text("/console/consent")
    rows = number_rows(page)
    assert [(r["Number"].split()[0], r["State"], r["How"]) for r in rows] == [
        (mask(ONE), "Opted in", "Staff"),
        (mask(TWO), "Opted out", "On a call"),
    ]
    assert all(r["Clinic"] == "Riverside Physiotherapy" for r in rows), rows
    for number in (ONE, TWO):
        assert number not in page


def test_staff_see_only_their_clinics_numbers_and_an_admin_sees_all(
    svc: Services, staff_a: Browser
) -> None:
    svc.consent.record_opt_out(A, ONE, "sms", sid("SM"))
    svc.consent.record_opt_out(B, OTHER, "sms", sid("SM"))

    page = staff_a.text("/console/consent")
    assert [r["Number"].split()[0] for r in number_rows(page)] == [mask(ONE)]
    assert mask(OTHER) not in page and OTHER not in page
    assert staff_a.get(f"/console/consent?clinic={B}").status_code == 403
    other_event = newest_event_id(svc, B, OTHER)
    assert staff_a.post(f"/console/reveal/consent/{other_event}").status_code == 403

    admin = signed_in(svc, "admin@group.example", [], role="admin")
    shown = {r["Number"].split()[0] for r in number_rows(admin.text("/console/consent"))}
    assert shown == {mask(ONE), mask(OTHER)}
    only_b = number_rows(admin.text(f"/console/consent?clinic={B}"))
    assert [r["Number"].split()[0] for r in only_b] == [mask(OTHER)]


def test_a_listed_number_is_shown_only_through_the_audited_reveal(
    svc: Services, staff_a: Browser
) -> None:
    svc.consent.record_opt_out(A, ONE, "sms", sid("SM"))
    event_id = newest_event_id(svc, A, ONE)
    page = staff_a.text("/console/consent")
    assert ONE not in page
    assert f'action="/console/reveal/consent/{event_id}"' in page

    revealed = staff_a.post(f"/console/reveal/consent/{event_id}")
    assert revealed.status_code == 200 and f'href="tel:{ONE}"' in revealed.get_data(as_text=True)
    (entry,) = audit_entries(svc, "console.reveal")
    assert entry.clinic_id == A and entry.detail == {"record": "consent", "id": event_id}

    # From there, one press opens the number's history and the record forms.
    lookup = {
        k: v
        for action, fields in Forms(revealed.get_data(as_text=True)).forms
        if action == "/console/consent"
        for k, v in fields.items()
        if k != "csrf_token"
    }
    assert lookup == {"clinic": A, "phone": ONE}
    looked_up = staff_a.post("/console/consent", lookup).get_data(as_text=True)
    assert set(record_forms(looked_up)) == {ledger.OPTED_OUT, ledger.OPTED_IN}


def test_the_list_is_paged_and_each_number_appears_once(
    svc: Services, staff_a: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consent_page, "PAGE", 2)
    for phone in (ONE, TWO, THREE):
        svc.consent.record_opt_out(A, phone, "sms", sid("SM"))
    svc.consent.record_opt_in(A, ONE, "sms", sid("SM"))  # ONE is newest again

    first = staff_a.text("/console/consent")
    link = older_link(first)
    assert link is not None
    second = staff_a.text(link)
    assert older_link(second) is None
    listed = [(r["Number"].split()[0], r["State"]) for r in number_rows(first)] + [
        (r["Number"].split()[0], r["State"]) for r in number_rows(second)
    ]
    assert listed == [
        (mask(ONE), "Opted in"),
        (mask(THREE), "Opted out"),
        (mask(TWO), "Opted out"),
    ]


def test_an_empty_ledger_says_so(staff_a: Browser) -> None:
    page = staff_a.text("/console/consent")
    assert number_rows(page) == []
    assert "No number has opted out or in yet." in page
