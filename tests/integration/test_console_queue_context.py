"""The queue says what each caller wanted and how long they have waited: the request the
agent recognised and the last thing they said (from the transcript), the clinic's time
with its zone, and minutes waiting, in the page and in the rows its poller fetches."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from callgateway.adapters.clock import fixed
from callgateway.app import create_app
from callgateway.config.retention import retention_until
from callgateway.db.models import CallTurn
from callgateway.wiring import Services
from tests.support.console import NOW, Browser, add_item, add_user

A = "riverside-physio"


@pytest.fixture
def svc(make_services: Callable[..., Services], sqlite_url: str) -> Services:
    services = make_services(sqlite_url)
    services.clock = fixed(NOW)
    return services


def said(svc: Services, call_sid: str, *lines: tuple[str, str]) -> None:
    clinic = svc.directory.by_id(A)
    with svc.db.session() as s:
        for seq, (role, text) in enumerate(lines):
            s.add(
                CallTurn(
                    call_sid=call_sid,
                    clinic_id=A,
                    seq=seq,
                    role=role,
                    text=text,
                    meta=None,
                    created_at=NOW,
                    data_category="transcript",
                    retention_until=retention_until(svc.config, clinic, "transcript", NOW),  # type: ignore[arg-type]
                )
            )


def test_an_item_says_what_the_caller_wanted_their_last_words_and_the_wait(svc: Services) -> None:
    item = add_item(
        svc, A, kind="escalation", reason="caller-request", created_at=NOW - timedelta(minutes=25)
    )
    said(
        svc,
        item.call_sid,
        ("agent", "How can I help you today?"),
        ("caller", "I need to move my appointment to Friday"),
        ("agent", "Which day would suit you?"),
        ("caller", "[silence]"),
        ("caller", "can I just speak to someone please"),
    )
    add_user(svc, "front@riverside.example", [A])
    desk = Browser(create_app({"TESTING": True}, services=svc).test_client())
    desk.login("front@riverside.example")
    for path in ("/console/queue", "/console/queue/rows"):
        page = desk.text(path)
        assert "Move an appointment" in page, path
        assert '<q class="said">can I just speak to someone please</q>' in page, path
        assert "waiting 25 min" in page, path
        assert "Tue 24 Nov, 09:35 GMT" in page, path
