"""Outbound pages in the staff console (staff of the clinic only), and the daily summary
as a page and as an e-mail through a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes
from email.message import Message as EmailMessage

import pytest
import responses
from aiosmtpd.controller import Controller
from sqlalchemy import select

from callgateway.adapters.clock import fixed
from callgateway.adapters.mailer import MailError
from callgateway.app import create_app
from callgateway.config import Config
from callgateway.config.settings import DEV_ACCOUNT_SID
from callgateway.db.models import AuditEntry
from callgateway.db.models_outbound import CheckinSchedule
from callgateway.outbound import alerts, checkins, summary
from callgateway.wiring import Services
from devtools.services import free_port
from tests.support.console import Browser, add_user
from tests.support.twilio import PATIENT, sid

API = f"https://api.twilio.com/2010-04-01/Accounts/{DEV_ACCOUNT_SID}"
CARER = "+447700900777"
NOW = datetime(2037, 6, 8, 7, 0, tzinfo=UTC)  # Monday 08:00 BST
OCCURRENCE = datetime(2037, 6, 8, 8, 0, tzinfo=UTC)
DAY = date(2037, 6, 8)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def with_mail(config: Config, port: int) -> Config:
    mail = {
        "to": ["manager@riverside.example"],
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "from": "gateway@riverside.example",
    }
    from callgateway.config import SummaryEmail

    clinics = [
        c.model_copy(update={"summary_email": SummaryEmail.model_validate(mail)})
        if c.id == "riverside-physio"
        else c
        for c in config.clinics
    ]
    return config.model_copy(update={"clinics": clinics})


@pytest.fixture
def svc(make_services: Callable[..., Services], sqlite_url: str) -> Services:
    services = make_services(sqlite_url)
    services.clock = fixed(NOW)
    return services


def browser(svc: Services) -> Browser:
    return Browser(create_app({"TESTING": True}, services=svc).test_client())


def schedules(svc: Services) -> list[CheckinSchedule]:
    with svc.db.session() as s:
        return list(s.scalars(select(CheckinSchedule)))


def missed_check_in(svc: Services) -> int:
    """A schedule whose 09:00 call went unanswered and whose receiver was alerted."""
    schedule_id = checkins.add_schedule(
        svc,
        checkins.ScheduleSpec(
            clinic_id="riverside-physio",
            phone=PATIENT,
            days="daily",
            local_time="09:00",
            alert_numbers=[CARER],
            message_text="Hello",
            display_name="Mrs Patel",
            retries=0,
        ),
    )
    with responses.RequestsMock() as rsps:
        for what, prefix in (("Calls.json", "CA"), ("Messages.json", "SM"), ("Calls.json", "CA")):
            rsps.add(responses.POST, f"{API}/{what}", json={"sid": sid(prefix)}, status=201)
        svc.clock = fixed(OCCURRENCE)
        checkins.run_attempt(svc, schedule_id, OCCURRENCE, 1)
        svc.clock = fixed(OCCURRENCE + checkins.WATCHDOG)
        checkins.watchdog(svc, attempts_of(svc, schedule_id))
        alerts.raise_alerts(svc, schedule_id, OCCURRENCE, "unanswered")
    return schedule_id


def attempts_of(svc: Services, schedule_id: int) -> int:
    from callgateway.db.models_outbound import CheckinAttempt

    with svc.db.session() as s:
        return s.scalars(
            select(CheckinAttempt.id).where(CheckinAttempt.schedule_id == schedule_id)
        ).one()


def test_staff_add_a_schedule_and_its_alert_receivers(svc: Services) -> None:
    add_user(svc, "amy@riverside.example", ["riverside-physio"])
    b = browser(svc)
    b.login("amy@riverside.example")
    page = b.text("/console/outbound/checkins")
    assert "No check-in schedules." in page
    response = b.post(
        "/console/outbound/checkins",
        {
            "clinic": "riverside-physio",
            "phone": PATIENT,
            "name": "Mrs Patel",
            "days": "mon",
            "time": "09:30",
            "message": "Good morning from Riverside.",
            "retries": "2",
            "retry_minutes": "5",
            "alert": f"{CARER}\n+447700900888",
        },
    )
    assert response.status_code == 303
    (row,) = schedules(svc)
    assert (row.days, row.local_time, row.alert_numbers) == (
        "mon",
        "09:30",
        [CARER, "+447700900888"],
    )
    page = b.text("/console/outbound/checkins")
    assert "+44******0123" in page and PATIENT not in page and CARER not in page
    b.post(f"/console/outbound/checkins/{row.id}/alerts", {"alert": CARER})
    assert schedules(svc)[0].alert_numbers == [CARER]
    b.post(f"/console/outbound/checkins/{row.id}/active", {"active": "0"})
    assert schedules(svc)[0].active is False
    with svc.db.session() as s:
        actions = [a.action for a in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions[-3:] == [
        "console.checkins.add",
        "console.checkins.alerts",
        "console.checkins.pause",
    ]


def test_a_bad_schedule_is_not_saved_and_says_why(svc: Services) -> None:
    add_user(svc, "amy@riverside.example", ["riverside-physio"])
    b = browser(svc)
    b.login("amy@riverside.example")
    response = b.post(
        "/console/outbound/checkins",
        {
            "clinic": "riverside-physio",
            "phone": PATIENT,
            "days": "mon",
            "time": "09:30",
            "message": "Hi",
            "alert": "",
        },
    )
    assert response.status_code == 400
    assert "at least one alert receiver" in response.get_data(as_text=True)
    assert schedules(svc) == []


def test_staff_of_another_clinic_can_neither_see_nor_change_a_schedule(svc: Services) -> None:
    schedule_id = missed_check_in(svc)
    add_user(svc, "bob@spree.example", ["spree-hausarzt"])
    b = browser(svc)
    b.login("bob@spree.example")
    assert "+44******0123" not in b.text("/console/outbound/checkins")
    assert b.get("/console/outbound/checkins?clinic=riverside-physio").status_code == 403
    assert b.get("/console/outbound/summary?clinic=riverside-physio").status_code == 403
    assert b.post(f"/console/outbound/checkins/{schedule_id}/delete").status_code == 403
    assert (
        b.post(
            f"/console/outbound/checkins/{schedule_id}/alerts", {"alert": "+447700900999"}
        ).status_code
        == 403
    )
    assert schedules(svc)[0].alert_numbers == [CARER]


def test_forms_without_the_csrf_token_are_refused(svc: Services) -> None:
    schedule_id = missed_check_in(svc)
    add_user(svc, "amy@riverside.example", ["riverside-physio"])
    b = browser(svc)
    b.login("amy@riverside.example")
    response = b.post(
        f"/console/outbound/checkins/{schedule_id}/delete", {"confirm": "yes"}, csrf=False
    )
    assert response.status_code == 400
    assert len(schedules(svc)) == 1


def test_deleting_a_schedule_asks_first_and_deletes_only_when_confirmed(svc: Services) -> None:
    schedule_id = missed_check_in(svc)
    add_user(svc, "amy@riverside.example", ["riverside-physio"])
    b = browser(svc)
    b.login("amy@riverside.example")
    page = b.text("/console/outbound/checkins")
    assert f"/console/outbound/checkins/{schedule_id}/delete" in page
    asked = b.post(f"/console/outbound/checkins/{schedule_id}/delete")
    body = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "Delete this check-in schedule?" in body
    assert "+447700900123" not in body and "No, keep it" in body
    assert len(schedules(svc)) == 1
    done = b.post(f"/console/outbound/checkins/{schedule_id}/delete", {"confirm": "yes"})
    assert done.status_code == 303
    assert schedules(svc) == []


def test_upcoming_reminders_page_lists_only_my_clinics(svc: Services) -> None:
    from callgateway.booking import appointments
    from callgateway.outbound import reminders

    svc.clock = fixed(datetime(2037, 6, 1, 9, 0, tzinfo=UTC))
    clinic = svc.directory.by_id("riverside-physio")
    with svc.db.session() as s:
        appt = appointments.book(
            s,
            svc.config,
            clinic,
            phone=PATIENT,
            type_id="initial",
            start=datetime(2037, 6, 10, 13, 0, tzinfo=UTC),
            now=svc.clock(),
        )
    reminders.on_appointment_changed(svc, appt.id)
    add_user(svc, "amy@riverside.example", ["riverside-physio"])
    add_user(svc, "bob@spree.example", ["spree-hausarzt"])
    amy, bob = browser(svc), browser(svc)
    amy.login("amy@riverside.example")
    bob.login("bob@spree.example")
    page = amy.text("/console/outbound/reminders")
    assert "Tue 09 Jun, 14:00" in page and "+44******0123" in page
    assert "+44******0123" not in bob.text("/console/outbound/reminders")


def test_a_skipped_reminder_says_why_in_words_not_codes(svc: Services) -> None:
    from callgateway.booking import appointments
    from callgateway.outbound import reminders

    svc.clock = fixed(datetime(2037, 6, 10, 9, 0, tzinfo=UTC))
    clinic = svc.directory.by_id("riverside-physio")
    with svc.db.session() as s:
        appt = appointments.book(
            s,
            svc.config,
            clinic,
            phone=PATIENT,
            type_id="initial",
            start=datetime(2037, 6, 10, 11, 0, tzinfo=UTC),  # two hours away
            now=svc.clock(),
        )
    reminders.on_appointment_changed(svc, appt.id)
    add_user(svc, "amy@riverside.example", ["riverside-physio"])
    amy = browser(svc)
    amy.login("amy@riverside.example")
    page = amy.text("/console/outbound/reminders")
    assert "Not sent" in page
    assert "booked too close to the appointment for a reminder" in page
    assert "booked-inside-window" not in page and ">skipped<" not in page


def test_daily_summary_page_shows_the_missed_check_in(svc: Services) -> None:
    missed_check_in(svc)
    add_user(svc, "amy@riverside.example", ["riverside-physio"])
    b = browser(svc)
    b.login("amy@riverside.example")
    page = b.text(f"/console/outbound/summary?clinic=riverside-physio&day={DAY}")
    assert "Mrs Patel" in page and "alerted" in page and "sent 2" in page


def test_daily_summary_is_mailed_once_with_no_personal_details(
    make_services: Callable[..., Services],
    sqlite_url: str,
    example_config: Config,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    svc = make_services(sqlite_url, with_mail(example_config, port))
    svc.clock = fixed(NOW)
    missed_check_in(svc)
    svc.clock = fixed(datetime(2037, 6, 9, 6, 0, tzinfo=UTC))  # 07:00 next morning
    assert summary.send_and_schedule_next(svc, "riverside-physio", DAY) == "sent"
    assert summary.send_email(svc, "riverside-physio", DAY) == "already-sent"
    (mail,) = inbox.messages
    assert mail["To"] == "manager@riverside.example"
    assert mail["From"] == "gateway@riverside.example"
    assert mail["Subject"] == "Riverside Physiotherapy: outbound summary 2037-06-08"
    text = mail.get_payload(decode=True).decode()
    assert "09:00 schedule #1 +44******0123: alerted (unanswered); calls 1; alerts sent 2" in text
    assert "Mrs Patel" not in text and PATIENT not in text and CARER not in text
    next_at = datetime(2037, 6, 10, 6, 0, tzinfo=UTC)  # tomorrow 07:00 BST, for the 9th
    from rq.registry import ScheduledJobRegistry

    registry = ScheduledJobRegistry(queue=svc.queue)
    assert registry.get_scheduled_time("summary-riverside-physio-20370609") == next_at


def test_unreachable_smtp_server_leaves_the_summary_to_retry(
    make_services: Callable[..., Services], sqlite_url: str, example_config: Config
) -> None:
    svc = make_services(sqlite_url, with_mail(example_config, free_port()))
    svc.clock = fixed(NOW)
    with pytest.raises(MailError):
        summary.send_email(svc, "riverside-physio", DAY - timedelta(days=1))
    with pytest.raises(MailError):  # the retry may claim it again
        summary.send_email(svc, "riverside-physio", DAY - timedelta(days=1))
