"""The staff console in a real Chromium against a live gateway: a caller asks for a person,
nobody answers, they leave a voicemail, and the front desk signs in, plays it and closes it.

The example clinic is open on weekdays 08:00-18:00 London time. In hours the gateway rings
the escalation number first (the terminal phone answers "no-answer"); out of hours it says
it is closed. Both end in the same voicemail, so the test holds whenever it runs, and it
checks whichever of the two paths the clock chose.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import expect
from sqlalchemy import func, select

from callgateway.calls import escalation
from callgateway.config.directory import is_open
from callgateway.console.queue import POLL_SECONDS
from callgateway.db.models import Appointment, AuditEntry, Recording, WorkItem
from callgateway.phone import mask
from tests.support.console_browser import (  # noqa: F401  (fixtures)
    LAPTOP,
    PASSWORD,
    PHONE,
    RIVERSIDE_STAFF,
    SPREE_STAFF,
    ConsoleGateway,
    artifacts,
    console_gateway,
    open_browser,
    playwright_driver,
)
from tests.support.twilio import ACCOUNT_SID, CLINIC_UK, PATIENT, sign

pytestmark = pytest.mark.browser

CALLBACK_CALLER = "+447700900555"  # a number no other end-to-end test opts out


def sign_in(page: Any, cg: ConsoleGateway, email: str, path: str = "/queue") -> None:
    page.goto(cg.console + path)
    expect(page).to_have_url(re.compile(r"/console/login\?next="))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(cg.console + path)


def clinic_open(cg: ConsoleGateway) -> bool:
    clinic = cg.services.directory.by_id("riverside-physio")
    assert clinic is not None
    return is_open(clinic, datetime.now(UTC))


def count(cg: ConsoleGateway, stmt: Any) -> int:
    with cg.services.db.session() as session:
        return int(session.scalar(stmt) or 0)


@pytest.fixture(scope="module")
def left_voicemail(console_gateway: ConsoleGateway) -> Iterator[tuple[Recording, str]]:  # noqa: F811
    """Place the call of the issue's "done when", store its voicemail in the bucket."""
    cg = console_gateway
    before = count(cg, select(func.max(Recording.id)))
    open_before = clinic_open(cg)
    result = cg.gw.cli(
        "call", "--to", CLINIC_UK, "--from", PATIENT, "--dial", "no-answer",
        stdin="can I speak to someone\nplease call me back about my knee\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with cg.services.db.session() as session:
        (recording,) = session.scalars(
            select(Recording).where(Recording.id > before, Recording.kind == "voicemail")
        )
    assert (recording.clinic_id, recording.phone, recording.status) == (
        "riverside-physio",
        PATIENT,
        "pending",
    )
    assert cg.transfer_recordings(recording.id) == "done"
    with cg.services.db.session() as session:
        stored = session.get(Recording, recording.id)
    assert stored is not None and stored.status == "stored"
    path = "dialled" if open_before and clinic_open(cg) else "closed"
    if open_before != clinic_open(cg):
        path = "boundary"  # the call straddled opening or closing time
    yield stored, result.stdout + f"\n[path: {path}]"


def test_the_caller_reaches_the_team_or_hears_closed_then_leaves_a_voicemail(
    left_voicemail: tuple[Recording, str],
) -> None:
    _, heard = left_voicemail
    dialled = escalation.CONNECTING in heard and "[ringing +44******0000: no-answer]" in heard
    closed = escalation.CLOSED in heard and "[ringing" not in heard
    if "[path: dialled]" in heard:
        assert dialled and escalation.NOBODY_FREE in heard
    elif "[path: closed]" in heard:
        assert closed
    else:
        assert dialled or closed
    # The menu before the tone offers a callback (press 1); the terminal phone hands it the
    # second line, which is no key, so the recording follows. Stdin then ends: the caller
    # hangs up after the tone, and Twilio still sends the recording, as it would.
    assert escalation.OFFER_CALLBACK in heard
    assert "[beep: recording, type your message]" in heard
    assert heard.index("Thank you for calling Riverside") < heard.index("[beep: recording")


def test_front_desk_plays_the_voicemail_then_claims_and_closes_it(
    console_gateway: ConsoleGateway,  # noqa: F811
    left_voicemail: tuple[Recording, str],
    open_browser: Callable[..., Any],  # noqa: F811
    artifacts: Path,  # noqa: F811
) -> None:
    cg = console_gateway
    recording, _ = left_voicemail
    page = open_browser()
    sign_in(page, cg, RIVERSIDE_STAFF, "/voicemails")

    row = page.locator(f'tr[data-voicemail="{recording.id}"]')
    expect(row).to_contain_text(mask(PATIENT))
    expect(row).to_contain_text("Riverside Physiotherapy")
    assert PATIENT not in page.content()
    page.screenshot(path=str(artifacts / "console-voicemails.png"), full_page=True)

    plays = select(func.count()).where(AuditEntry.action == "console.voicemail.play")
    plays_before = count(cg, plays)
    row.get_by_role("button", name="Play").click()
    expect(page.get_by_role("heading", name="Voicemail")).to_be_visible()
    audio = page.locator("audio")
    expect(audio).to_have_count(1)
    # The browser itself loads the audio through the presigned link (and the page's CSP).
    page.wait_for_function("document.querySelector('audio').readyState >= 1", timeout=15_000)
    link = page.locator("#voicemail-link").get_attribute("href")
    assert link and "X-Amz-Signature=" in link and "X-Amz-Expires=300" in link
    fetched = requests.get(link, timeout=10)
    assert fetched.status_code == 200
    assert fetched.content[:4] == b"RIFF" and fetched.content[8:12] == b"WAVE"
    assert count(cg, plays) == plays_before + 1
    page.screenshot(path=str(artifacts / "console-voicemail-play.png"), full_page=True)

    page.get_by_role("button", name="Claim").click()
    expect(page.locator(".flash")).to_contain_text("Claimed")
    row = page.locator(f'tr[data-voicemail="{recording.id}"]')
    expect(row).to_contain_text("Claimed by you")
    row.get_by_role("button", name="Done").click()
    expect(page.locator(".flash")).to_contain_text("Marked as done")
    expect(page.locator(f'tr[data-voicemail="{recording.id}"]')).to_have_count(0)
    with cg.services.db.session() as session:
        item = session.scalars(
            select(WorkItem).where(
                WorkItem.call_sid == recording.call_sid, WorkItem.kind == "voicemail"
            )
        ).one()
    assert item.status == "done" and item.claimed_by is not None


def test_a_callback_request_appears_in_the_open_queue_without_a_reload(
    console_gateway: ConsoleGateway,  # noqa: F811
    open_browser: Callable[..., Any],  # noqa: F811
    artifacts: Path,  # noqa: F811
) -> None:
    cg = console_gateway
    page = open_browser()
    sign_in(page, cg, RIVERSIDE_STAFF, "/queue")
    page.evaluate("window.__notReloaded = true")
    result = cg.gw.cli(
        "call", "--to", CLINIC_UK, "--from", CALLBACK_CALLER, "--dial", "busy",
        stdin="I want to talk to someone\n1\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert escalation.CALLBACK_BOOKED in result.stdout
    with cg.services.db.session() as session:
        item = session.scalars(
            select(WorkItem)
            .where(WorkItem.kind == "callback", WorkItem.phone == CALLBACK_CALLER)
            .order_by(WorkItem.id.desc())
        ).first()
    assert item is not None and item.clinic_id == "riverside-physio"

    row = page.locator(f'tr[data-item="{item.id}"]')
    expect(row).to_be_visible(timeout=20_000)  # the page's poller brought it in
    assert page.evaluate("window.__notReloaded") is True
    expect(row).to_contain_text("Callback request")
    expect(row).to_contain_text(mask(CALLBACK_CALLER))
    expect(page.locator("#queue-announce")).to_contain_text("new item")
    page.screenshot(path=str(artifacts / "console-queue.png"), full_page=True)

    row.get_by_role("button", name="Claim").click()
    row = page.locator(f'tr[data-item="{item.id}"]')
    expect(row).to_contain_text("Claimed by you")
    row.get_by_role("button", name="Show").click()  # staff need the number to ring back
    expect(page.get_by_role("link", name=CALLBACK_CALLER)).to_have_attribute(
        "href", f"tel:{CALLBACK_CALLER}"
    )
    page.get_by_role("link", name="Back").click()
    page.locator(f'tr[data-item="{item.id}"]').get_by_role("button", name="Done").click()
    expect(page.locator(f'#queue-rows tr[data-item="{item.id}"]')).to_have_count(0)


def test_staff_of_another_clinic_get_403(
    console_gateway: ConsoleGateway,  # noqa: F811
    left_voicemail: tuple[Recording, str],
    open_browser: Callable[..., Any],  # noqa: F811
) -> None:
    cg = console_gateway
    recording, _ = left_voicemail
    page = open_browser()
    sign_in(page, cg, SPREE_STAFF, "/voicemails?show=all")
    expect(page.locator(f'tr[data-voicemail="{recording.id}"]')).to_have_count(0)
    response = page.goto(cg.console + "/calls?clinic=riverside-physio")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="Not your clinic")).to_be_visible()
    # A well-formed form, with this user's valid CSRF token, for the other clinic's voicemail.
    page.goto(cg.console + "/voicemails")
    with page.expect_navigation() as navigation:
        page.evaluate(
            """id => {
                const token = document.querySelector('input[name=csrf_token]').value;
                const form = document.createElement('form');
                form.method = 'post';
                form.action = `/console/voicemails/${id}/play`;
                form.innerHTML = `<input type="hidden" name="csrf_token" value="${token}">`;
                document.body.appendChild(form);
                form.submit();
            }""",
            recording.id,
        )
    assert navigation.value.status == 403
    assert "X-Amz" not in page.content()


def test_a_form_without_its_csrf_token_is_refused_then_sign_out_ends_the_session(
    console_gateway: ConsoleGateway,  # noqa: F811
    open_browser: Callable[..., Any],  # noqa: F811
) -> None:
    cg = console_gateway
    page = open_browser()
    sign_in(page, cg, RIVERSIDE_STAFF, "/consent")
    with page.expect_navigation() as navigation:
        page.evaluate(
            """phone => {
                const form = document.createElement('form');
                form.method = 'post';
                form.action = '/console/consent/record';
                for (const [k, v] of [['clinic', 'riverside-physio'], ['phone', phone],
                                      ['state', 'opted_out']]) {
                    const input = document.createElement('input');
                    input.type = 'hidden'; input.name = k; input.value = v;
                    form.appendChild(input);
                }
                document.body.appendChild(form);
                form.submit();
            }""",
            CALLBACK_CALLER,
        )
    assert navigation.value.status == 400
    expect(page.get_by_role("heading")).to_contain_text("Form expired or not sent")
    status = cg.services.consent.status("riverside-physio", CALLBACK_CALLER)
    assert status.state != "opted_out"

    page.goto(cg.console + "/queue")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(cg.console + "/login")
    expect(page.locator(".flash")).to_contain_text("signed out")
    page.goto(cg.console + "/queue")
    expect(page).to_have_url(re.compile(r"/console/login\?next="))


PAGES = [
    ("queue", "/queue"),
    ("voicemails", "/voicemails?show=all"),
    ("calls", "/calls"),
    ("messages", "/messages?show=all"),
    ("consent", "/consent"),
    ("dashboard", "/dashboard"),
]


@pytest.mark.parametrize("size", ["laptop", "phone"])
def test_main_pages_fit_the_screen_are_labelled_and_are_saved_as_screenshots(
    console_gateway: ConsoleGateway,  # noqa: F811
    left_voicemail: tuple[Recording, str],
    open_browser: Callable[..., Any],  # noqa: F811
    artifacts: Path,  # noqa: F811
    size: str,
) -> None:
    cg = console_gateway
    cg.gw.cli("sms", "--to", CLINIC_UK, "--from", PATIENT, "Running ten minutes late, sorry")
    page = open_browser(LAPTOP if size == "laptop" else PHONE)
    sign_in(page, cg, RIVERSIDE_STAFF, "/queue")
    for name, path in PAGES:
        response = page.goto(cg.console + path)
        assert response is not None and response.status == 200, path
        if name == "consent":
            page.get_by_label("Phone number").fill(PATIENT)
            page.get_by_role("button", name="Look up").click()
            expect(page.locator("#consent-status")).to_be_visible()
        if name == "dashboard":
            expect(page.locator("svg.chart[role=img]")).to_have_count(4)
            expect(page.locator("table.numbers")).to_have_count(4)
        # Usable at this width: nothing makes the page scroll sideways.
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, (path, size, overflow)
        # Every visible form control has an accessible name.
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea, button')]
                .filter(el => el.type !== 'hidden' && el.offsetParent !== null)
                .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                              && !(el.textContent || '').trim())
                .map(el => el.outerHTML)"""
        )
        assert unlabelled == [], (path, unlabelled)
        page.screenshot(path=str(artifacts / f"console-{name}-{size}.png"), full_page=True)
    assert "Running ten minutes late" in page.goto(cg.console + "/messages?show=all").text()


def test_front_desk_reads_a_booking_calls_story_and_plays_a_voicemail_from_its_call_page(
    console_gateway: ConsoleGateway,  # noqa: F811
    left_voicemail: tuple[Recording, str],
    open_browser: Callable[..., Any],  # noqa: F811
    artifacts: Path,  # noqa: F811
) -> None:
    cg = console_gateway
    caller = "+447700900556"
    booking = cg.gw.cli(
        "call", "--to", CLINIC_UK, "--from", caller,
        stdin="I'd like to book an initial assessment next Tuesday afternoon\nyes please\n"
        "no thanks, that's all\n",
    )  # fmt: skip
    assert booking.returncode == 0, booking.stderr
    with cg.services.db.session() as session:
        ref = session.scalars(select(Appointment.ref).where(Appointment.phone == caller)).one()
    page = open_browser()
    sign_in(page, cg, RIVERSIDE_STAFF, "/calls")
    page.get_by_label("Caller's number").fill("07700 900556")  # as a receptionist types it
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#calls tbody tr")
    expect(rows).to_have_count(1)
    rows.first.get_by_role("link", name=re.compile("Open")).click()
    expect(page).to_have_url(re.compile(r"/console/calls/\d+$"))
    transcript = page.locator("#transcript")
    expect(transcript).to_contain_text("book an initial assessment next Tuesday afternoon")
    expect(transcript.locator(".action-offer")).to_contain_text("Offered")
    expect(transcript.locator(".action-booked")).to_contain_text(f"ref {ref}")
    expect(page.locator("#appointments")).to_contain_text(ref)
    expect(page.locator("dl.facts")).to_contain_text(mask(caller))
    assert caller not in page.content()
    page.screenshot(path=str(artifacts / "console-call-page.png"), full_page=True)

    recording, _ = left_voicemail
    plays = select(func.count()).where(AuditEntry.action == "console.voicemail.play")
    plays_before = count(cg, plays)
    page.goto(cg.console + "/voicemails?show=all")
    page.locator(f'tr[data-voicemail="{recording.id}"]').get_by_role(
        "link", name=re.compile("Open call")
    ).click()
    expect(page.locator("#transcript")).to_contain_text("can I speak to someone")
    page.get_by_role("button", name=re.compile("Play the voicemail")).click()
    expect(page.locator("#recordings audio")).to_have_count(1)
    # The browser loads the audio through the presigned link, under the page's CSP. Polled
    # from here: wait_for_function's own polling evaluates strings, which that CSP forbids.
    deadline = time.monotonic() + 15
    ready = "document.querySelector('#recordings audio').readyState"
    while page.evaluate(ready) < 1:
        assert time.monotonic() < deadline, "the audio did not load"
        page.wait_for_timeout(100)
    assert count(cg, plays) == plays_before + 1
    page.screenshot(path=str(artifacts / "console-call-page-voicemail.png"), full_page=True)


def test_staff_of_another_clinic_get_403_for_a_call_page(
    console_gateway: ConsoleGateway,  # noqa: F811
    left_voicemail: tuple[Recording, str],
    open_browser: Callable[..., Any],  # noqa: F811
) -> None:
    cg = console_gateway
    recording, _ = left_voicemail
    page = open_browser()
    sign_in(page, cg, SPREE_STAFF, "/queue")
    response = page.goto(cg.console + f"/calls/sid/{recording.call_sid}")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="Not your clinic")).to_be_visible()


def test_front_desk_answers_a_text_and_is_told_why_not_for_a_number_that_texted_stop(
    console_gateway: ConsoleGateway,  # noqa: F811
    open_browser: Callable[..., Any],  # noqa: F811
    artifacts: Path,  # noqa: F811
) -> None:
    cg = console_gateway
    late, stopped = "+447700900558", "+447700900559"  # numbers of this test alone
    cg.gw.cli("sms", "--to", CLINIC_UK, "--from", late, "Stuck in traffic, twelve minutes late")
    cg.gw.cli("sms", "--to", CLINIC_UK, "--from", stopped, "Is parking free?")
    cg.gw.cli("sms", "--to", CLINIC_UK, "--from", stopped, "STOP")
    page = open_browser()
    sign_in(page, cg, RIVERSIDE_STAFF, "/messages?show=all")

    row = page.locator("#messages tr", has_text="Stuck in traffic, twelve minutes late")
    row.locator("summary", has_text="Reply").click()
    row.get_by_label("Your reply").fill("No problem, see you soon.")
    row.get_by_role("button", name="Send reply").click()
    expect(page.locator(".flash")).to_contain_text("Reply sent.")
    expect(
        page.locator("#messages tr", has_text="Stuck in traffic, twelve minutes late")
    ).to_contain_text("Replied: No problem, see you soon.")
    # What Twilio was asked (the dev fake's request log, numbers masked there).
    log = requests.get(cg.gw.env["TWILIO_API_BASE"] + "/_dev/log", timeout=5).json()
    replies = [e for e in log if e["path"].endswith("/Messages.json")]
    assert replies[-1]["form"]["Body"] == "No problem, see you soon."
    assert replies[-1]["form"]["StatusCallback"] == cg.gw.base_url + "/twilio/outbound/sms/status"
    page.screenshot(path=str(artifacts / "console-reply.png"), full_page=True)

    sent_before = len(replies)
    row = page.locator("#messages tr", has_text="Is parking free?")
    row.locator("summary", has_text="Reply").click()
    row.get_by_label("Your reply").fill("Yes it is.")
    row.get_by_role("button", name="Send reply").click()
    expect(page.locator(".flash")).to_contain_text("Not sent: this number has opted out")
    log = requests.get(cg.gw.env["TWILIO_API_BASE"] + "/_dev/log", timeout=5).json()
    assert len([e for e in log if e["path"].endswith("/Messages.json")]) == sent_before


def test_front_desk_calls_a_patient_back_from_the_call_page(
    console_gateway: ConsoleGateway,  # noqa: F811
    left_voicemail: tuple[Recording, str],
    open_browser: Callable[..., Any],  # noqa: F811
    artifacts: Path,  # noqa: F811
) -> None:
    cg = console_gateway
    recording, _ = left_voicemail
    desk_phone = "+447700900901"
    added = cg.gw.cli("users", "set-phone", "--email", RIVERSIDE_STAFF, "--phone", desk_phone)
    assert added.returncode == 0, added.stderr
    page = open_browser()
    sign_in(page, cg, RIVERSIDE_STAFF, "/queue")
    page.goto(cg.console + f"/calls/sid/{recording.call_sid}")
    page.get_by_role("button", name="Call the patient").click()
    expect(page.locator(".flash")).to_contain_text("Calling your phone now")
    # Twilio (the dev fake) was asked to ring the desk phone from the clinic's number.
    log = requests.get(cg.gw.env["TWILIO_API_BASE"] + "/_dev/log", timeout=5).json()
    placed = [e for e in log if e["path"].endswith("/Calls.json")][-1]["form"]
    assert placed["To"] == mask(desk_phone) and placed["From"] == mask(CLINIC_UK)
    assert placed["Url"].startswith(cg.gw.base_url + "/twilio/console/callback/connect?callback=")
    # Twilio's side, signed: the desk phone answers, then the patient's leg completes.
    connect_url = placed["Url"]
    form = {
        "AccountSid": ACCOUNT_SID,
        "CallSid": "CA" + "1" * 32,
        "CallStatus": "in-progress",
        "Direction": "outbound-api",
        "From": CLINIC_UK,
        "To": desk_phone,
    }
    twiml = requests.post(
        connect_url, data=form, headers={"X-Twilio-Signature": sign(connect_url, form)}, timeout=10
    ).text
    assert f'callerId="{CLINIC_UK}"' in twiml and f"<Number>{PATIENT}</Number>" in twiml
    dialled_url = re.search(r'action="([^"]+)"', twiml).group(1).replace("&amp;", "&")
    result = {**form, "DialCallStatus": "completed", "DialCallDuration": "60"}
    requests.post(
        dialled_url,
        data=result,
        headers={"X-Twilio-Signature": sign(dialled_url, result)},
        timeout=10,
    )
    page.reload()
    expect(page.locator("#callbacks")).to_contain_text("spoke to the patient")
    page.screenshot(path=str(artifacts / "console-call-back.png"), full_page=True)


def test_an_admin_requires_a_sign_in_code_and_disables_a_leaver(
    console_gateway: ConsoleGateway,  # noqa: F811
    open_browser: Callable[..., Any],  # noqa: F811
    artifacts: Path,  # noqa: F811
) -> None:
    import pyotp

    from callgateway.console import second_factor

    cg = console_gateway
    admin, enrolling, leaver = "admin@group.example", "nurse@spree.example", "leaver@spree.example"
    for email, args in (
        (admin, ["--all", "--role", "admin"]),
        (enrolling, ["--clinic", "spree-hausarzt"]),
        (leaver, ["--clinic", "spree-hausarzt"]),
    ):
        added = cg.gw.cli("users", "add", "--email", email, *args, stdin=PASSWORD + "\n")
        assert added.returncode == 0 or "already exists" in added.stderr, added.stderr
    try:
        boss = open_browser()
        sign_in(boss, cg, admin, "/users")
        require = "Require a sign-in code at Hausarztpraxis an der Spree"
        boss.get_by_role("button", name=require).click()
        expect(boss.locator(".flash")).to_contain_text("a sign-in code is now required")

        # A Spree nurse signs in: password, then sets up the authenticator and types its code.
        nurse = open_browser(PHONE)
        nurse.goto(cg.console + "/queue")
        nurse.get_by_label("Email").fill(enrolling)
        nurse.get_by_label("Password").fill(PASSWORD)
        nurse.get_by_role("button", name="Sign in").click()
        expect(nurse.get_by_role("heading", name="Set up your sign-in code")).to_be_visible()
        secret = nurse.locator("#totp-secret").inner_text().replace(" ", "")
        nurse.screenshot(path=str(artifacts / "console-totp-enrol-phone.png"), full_page=True)
        nurse.get_by_label("Code").fill(pyotp.TOTP(secret).now())
        nurse.get_by_role("button", name="Finish set-up and sign in").click()
        expect(nurse).to_have_url(cg.console + "/queue")

        # A leaver, signed in elsewhere, is disabled by the admin and is out at once.
        gone = open_browser()
        gone.goto(cg.console + "/queue")
        gone.get_by_label("Email").fill(leaver)
        gone.get_by_label("Password").fill(PASSWORD)
        gone.get_by_role("button", name="Sign in").click()
        expect(gone.get_by_role("heading", name="Set up your sign-in code")).to_be_visible()
        gone.get_by_label("Code").fill(
            pyotp.TOTP(gone.locator("#totp-secret").inner_text().replace(" ", "")).now()
        )
        gone.get_by_role("button", name="Finish set-up and sign in").click()
        expect(gone).to_have_url(cg.console + "/queue")
        boss.reload()
        boss.get_by_role("button", name=f"Disable {leaver}").click()
        expect(boss.locator(".flash")).to_contain_text("is disabled and signed out everywhere")
        boss.screenshot(path=str(artifacts / "console-users.png"), full_page=True)
        gone.reload()
        expect(gone).to_have_url(re.compile(r"/console/login\?next="))
    finally:
        with cg.services.db.session() as db:
            second_factor.set_required(db, "spree-hausarzt", False, datetime.now(UTC))


def test_the_badge_and_tab_title_follow_the_queue_and_an_ended_session_says_so(
    console_gateway: ConsoleGateway,  # noqa: F811
    open_browser: Callable[..., Any],  # noqa: F811
    artifacts: Path,  # noqa: F811
) -> None:
    from callgateway.console import sessions
    from callgateway.db.models import StaffUser

    cg = console_gateway
    page = open_browser()
    sign_in(page, cg, RIVERSIDE_STAFF, "/queue")
    open_now = int(page.locator("#open-count").inner_text())
    cg.gw.cli(
        "call", "--to", CLINIC_UK, "--from", "+447700900560", "--dial", "no-answer",
        stdin="can I speak to someone\n1\n",
    )  # fmt: skip
    with cg.services.db.session() as session:
        waiting = session.scalar(
            select(func.count()).where(
                WorkItem.clinic_id == "riverside-physio",
                WorkItem.status == "open",
                WorkItem.kind.in_(("escalation", "callback")),
            )
        )
    assert waiting is not None and waiting > open_now
    # The page polls every POLL_SECONDS: give each change two polls and a slow response.
    polled = (2 * POLL_SECONDS + 5) * 1000
    expect(page.locator("#open-count")).to_have_text(str(waiting), timeout=polled)
    expect(page).to_have_title(re.compile(rf"^\({waiting}\) Queue"), timeout=polled)
    # The session ends behind the page's back (idle, the day's cap, disabled...).
    with cg.services.db.session() as session:
        user_id = session.scalars(
            select(StaffUser.id).where(StaffUser.email == RIVERSIDE_STAFF)
        ).one()
    sessions.end_all(cg.services.redis, user_id)
    banner = page.locator("#signed-out")
    expect(banner).to_be_visible(timeout=polled)
    expect(banner).to_contain_text("You have been signed out")
    page.screenshot(path=str(artifacts / "console-signed-out.png"), full_page=True)
    banner.get_by_role("link", name="Sign in again").click()
    expect(page).to_have_url(re.compile(r"/console/login"))
