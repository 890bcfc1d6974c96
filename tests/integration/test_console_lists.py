"""Console list pages: a kept text shows its retention date, and the clinic filter survives
the page's own links (tabs, older pages)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from callgateway.adapters.clock import fixed
from callgateway.app import create_app
from callgateway.db.models import Message
from callgateway.phone import mask
from callgateway.wiring import Services
from tests.support.console import NOW, Browser, add_call, add_user
from tests.support.settings import BASE_URL
from tests.support.twilio import TwilioSim

A, B = "riverside-physio", "spree-hausarzt"
SENDER = "+447700900801"


@pytest.fixture
def svc(make_services: Callable[..., Services], sqlite_url: str) -> Services:
    services = make_services(sqlite_url)
    services.clock = fixed(NOW)
    return services


def signed_in(svc: Services, clinics: list[str]) -> Browser:
    add_user(svc, "front@group.example", clinics)
    browser = Browser(create_app({"TESTING": True}, services=svc).test_client())
    assert browser.login("front@group.example").status_code == 303
    return browser


def test_a_kept_text_shows_the_day_it_will_be_deleted(svc: Services) -> None:
    staff = signed_in(svc, [A])
    TwilioSim(staff.client, BASE_URL).sms("Can I bring my own towel?", from_=SENDER)
    with svc.db.session() as session:
        kept = session.scalars(select(Message).where(Message.direction == "in")).one()
    assert kept.retention_until > NOW.date()

    page = staff.text("/console/messages")
    assert '<th scope="col">Keep until</th>' in page
    row = re.search(r"<tr>\s*<td data-label=\"Received\">.*?</tr>", page, re.S)
    assert row is not None
    cells = dict(re.findall(r'<td data-label="([^"]+)"[^>]*>(.*?)</td>', row.group(0), re.S))
    assert cells["Keep until"] == kept.retention_until.strftime("%a %d %b %Y")
    assert cells["Message"] == "Can I bring my own towel?"
    assert mask(SENDER) in cells["From"] and SENDER not in page


@pytest.mark.parametrize(
    ("path", "tab"),
    [
        ("/console/calls", "handled=voicemail"),
        ("/console/messages", "show=all"),
        ("/console/voicemails", "show=all"),
    ],
)
def test_a_clinic_filter_is_kept_by_the_pages_own_links(svc: Services, path: str, tab: str) -> None:
    staff = signed_in(svc, [A, B])  # two clinics: the filter is offered
    page = staff.text(f"{path}?clinic={A}")
    assert re.search(rf'<option value="{A}" selected>', page)
    links = [
        href.replace("&amp;", "&")
        for href in re.findall(r'href="([^"]+)"', page)
        if href.startswith(path + "?")
    ]
    assert any(tab in link for link in links), links
    for link in links:
        assert f"clinic={A}" in link, link
        assert staff.get(link).status_code == 200, link
    # Without a filter, the links carry none.
    unfiltered = staff.text(path)
    assert "clinic=" not in "".join(re.findall(rf'href="{re.escape(path)}\?[^"]*"', unfiltered))


def test_older_calls_keep_the_clinic_filter(svc: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    from callgateway.console import calls_page

    monkeypatch.setattr(calls_page, "PAGE", 1)
    for minutes in (2, 1):
        add_call(svc, A, SENDER, started_at=NOW - timedelta(minutes=minutes))
    staff = signed_in(svc, [A, B])
    page = staff.text(f"/console/calls?clinic={A}")
    older = re.search(r'<a href="([^"]+)">Older calls</a>', page)
    assert older is not None
    link = older.group(1).replace("&amp;", "&")
    assert f"clinic={A}" in link and staff.get(link).status_code == 200
