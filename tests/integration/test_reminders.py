"""Appointment reminders on SQLite and PostgreSQL with real Redis; Twilio's REST API is faked
at the HTTP layer (`responses`) and every payload asserted field by field."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs

import pytest
import requests
import responses
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from callgateway.adapters.clock import fixed
from callgateway.adapters.twilio_rest import TransientError
from callgateway.app import create_app
from callgateway.booking import appointments
from callgateway.config import Config
from callgateway.config.settings import DEV_ACCOUNT_SID
from callgateway.db.models import Appointment, Call, ConsentEvent, Message
from callgateway.db.models_outbound import Reminder
from callgateway.outbound import reminders
from callgateway.wiring import Services
from consent import cache as consent_cache
from tests.support.settings import BASE_URL
from tests.support.twilio import CLINIC_UK, PATIENT, TwilioSim, sid

API = f"https://api.twilio.com/2010-04-01/Accounts/{DEV_ACCOUNT_SID}"
LONDON = "Europe/London"
# Riverside: sms 24 hours before, quiet hours 20:00-08:00, Europe/London.
BOOKED_AT = datetime(2037, 6, 1, 9, 0, tzinfo=UTC)  # Monday
STARTS = datetime(2037, 6, 10, 13, 0, tzinfo=UTC)  # Wednesday 14:00 BST
DUE = datetime(2037, 6, 9, 13, 0, tzinfo=UTC)  # Tuesday 14:00 BST


@pytest.fixture
def svc(make_services: Callable[..., Services], db_url: str) -> Services:
    services = make_services(db_url)
    services.clock = fixed(BOOKED_AT)
    return services


def with_reminders(config: Config, **plan: object) -> Config:
    clinics = [
        c.model_copy(update={"reminders": c.reminders.model_copy(update=plan)})
        if c.id == "riverside-physio"
        else c
        for c in config.clinics
    ]
    return config.model_copy(update={"clinics": clinics})


@pytest.fixture
def twilio_api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(
            responses.POST,
            f"{API}/Messages.json",
            json={"sid": sid("SM"), "status": "queued"},
            status=201,
        )
        rsps.add(
            responses.POST,
            f"{API}/Calls.json",
            json={"sid": sid("CA"), "status": "queued"},
            status=201,
        )
        yield rsps


def sent(rsps: responses.RequestsMock, what: str = "Messages.json") -> list[dict[str, list[str]]]:
    return [
        parse_qs(str(c.request.body))
        for c in rsps.calls
        if c.request.url and c.request.url.endswith(what)
    ]


def book(svc: Services, start: datetime = STARTS, phone: str = PATIENT) -> int:
    clinic = svc.directory.by_id("riverside-physio")
    assert clinic is not None
    with svc.db.session() as s:
        appt = appointments.book(
            s, svc.config, clinic, phone=phone, type_id="initial", start=start, now=svc.clock()
        )
        appointment_id = appt.id
    reminders.on_appointment_changed(svc, appointment_id)
    return appointment_id


def rows(svc: Services) -> list[Reminder]:
    with svc.db.session() as s:
        return list(s.scalars(select(Reminder).order_by(Reminder.id)))


def scheduled_at(svc: Services, reminder_id: int) -> datetime | None:
    registry = ScheduledJobRegistry(queue=svc.queue)
    job_id = reminders.job_id(reminder_id)
    if job_id not in registry.get_job_ids():
        return None
    return registry.get_scheduled_time(job_id)


def at(svc: Services, when: datetime) -> Services:
    svc.clock = fixed(when)
    return svc


def test_booking_plans_the_sms_reminder_a_day_before_at_the_same_local_time(svc: Services) -> None:
    book(svc)
    (row,) = rows(svc)
    assert (row.channel, row.offset_hours, row.status) == ("sms", 24, "scheduled")
    assert row.due_at == DUE
    assert row.data_category == "appointment"
    assert scheduled_at(svc, row.id) == DUE


def test_planning_twice_adds_nothing(svc: Services) -> None:
    appointment_id = book(svc)
    reminders.on_appointment_changed(svc, appointment_id)
    reminders.on_appointment_changed(svc, appointment_id)
    assert len(rows(svc)) == 1
    assert len(ScheduledJobRegistry(queue=svc.queue).get_job_ids()) == 1


def test_moving_the_appointment_reschedules_and_moving_back_restores(svc: Services) -> None:
    appointment_id = book(svc)
    clinic = svc.directory.by_id("riverside-physio")
    later = STARTS + timedelta(days=2)
    with svc.db.session() as s:
        appointments.move(
            s,
            svc.config,
            clinic,
            appointment_id=appointment_id,
            phone=PATIENT,
            start=later,
            now=BOOKED_AT,
        )
    reminders.on_appointment_changed(svc, appointment_id)
    old, new = rows(svc)
    assert (old.status, old.reason) == ("cancelled", "appointment-moved")
    assert (new.status, new.due_at) == ("scheduled", later - timedelta(days=1))
    assert scheduled_at(svc, old.id) is None
    assert scheduled_at(svc, new.id) == later - timedelta(days=1)

    with svc.db.session() as s:
        appointments.move(
            s,
            svc.config,
            clinic,
            appointment_id=appointment_id,
            phone=PATIENT,
            start=STARTS,
            now=BOOKED_AT,
        )
    reminders.on_appointment_changed(svc, appointment_id)
    old, new = rows(svc)
    assert old.status == "scheduled" and new.status == "cancelled"
    assert scheduled_at(svc, old.id) == DUE


def test_cancelling_the_appointment_cancels_its_reminders(svc: Services) -> None:
    appointment_id = book(svc)
    clinic = svc.directory.by_id("riverside-physio")
    with svc.db.session() as s:
        appointments.cancel(s, clinic, appointment_id=appointment_id, phone=PATIENT, now=BOOKED_AT)
    reminders.on_appointment_changed(svc, appointment_id)
    (row,) = rows(svc)
    assert (row.status, row.reason) == ("cancelled", "appointment-cancelled")
    assert scheduled_at(svc, row.id) is None


def test_reminder_sms_payload_and_its_records(
    svc: Services, twilio_api: responses.RequestsMock
) -> None:
    book(svc)
    (row,) = rows(svc)
    assert reminders.send(at(svc, DUE), row.id) == "sent"
    (payload,) = sent(twilio_api)
    assert payload == {
        "To": [PATIENT],
        "From": [CLINIC_UK],
        "Body": [
            "Reminder from Riverside Physiotherapy: you have an appointment on Wednesday 10 "
            "June at 14:00. To change or cancel it, call 020 7123 4567. Reply STOP to opt out."
        ],
        "StatusCallback": [f"{BASE_URL}/twilio/outbound/sms/status"],
    }
    (row,) = rows(svc)
    assert row.status == "sent" and row.sent_at == DUE and row.twilio_sid
    with svc.db.session() as s:
        (message,) = s.scalars(select(Message)).all()
    assert (message.direction, message.kind, message.phone) == ("out", "reminder", PATIENT)
    assert message.message_sid == row.twilio_sid and message.data_category == "message"


def test_duplicate_delivery_of_the_job_sends_one_sms(
    svc: Services, twilio_api: responses.RequestsMock
) -> None:
    book(svc)
    (row,) = rows(svc)
    at(svc, DUE)
    outcomes = [reminders.send(svc, row.id) for _ in range(3)]
    assert outcomes == ["sent", "already-sent", "already-sent"]
    assert len(sent(twilio_api)) == 1


def test_stop_between_scheduling_and_sending_means_nothing_is_sent(
    svc: Services, twilio_api: responses.RequestsMock
) -> None:
    book(svc)
    tw = TwilioSim(create_app({"TESTING": True}, services=svc).test_client(), BASE_URL)
    assert tw.sms("STOP").status_code == 200
    (row,) = rows(svc)
    assert reminders.send(at(svc, DUE), row.id) == "opted-out"
    assert sent(twilio_api) == []
    (row,) = rows(svc)
    assert (row.status, row.reason) == ("skipped", "opted-out")


def test_a_stop_whose_cache_write_through_was_lost_still_stops_the_reminder(
    svc: Services, twilio_api: responses.RequestsMock
) -> None:
    book(svc)
    tw = TwilioSim(create_app({"TESTING": True}, services=svc).test_client(), BASE_URL)
    assert tw.sms("STOP").status_code == 200
    # A Redis blip ate the write-through: the cache still holds the state before the STOP.
    svc.redis.set(
        consent_cache.key(svc.settings.subject_salt, "riverside-physio", PATIENT), "none:0", ex=60
    )
    assert (
        consent_cache.get(svc.redis, svc.settings.subject_salt, "riverside-physio", PATIENT)
        == "none"
    )
    (row,) = rows(svc)
    assert reminders.send(at(svc, DUE), row.id) == "opted-out"
    assert sent(twilio_api) == []
    (row,) = rows(svc)
    assert (row.status, row.reason) == ("skipped", "opted-out")


def test_a_job_that_runs_in_quiet_hours_waits_for_the_morning(
    svc: Services, twilio_api: responses.RequestsMock
) -> None:
    book(svc)
    (row,) = rows(svc)
    late_evening = datetime(2037, 6, 9, 20, 30, tzinfo=UTC)  # 21:30 BST: a worker ran late
    assert reminders.send(at(svc, late_evening), row.id) == "deferred"
    assert sent(twilio_api) == []
    morning = datetime(2037, 6, 10, 7, 0, tzinfo=UTC)  # 08:00 BST, before the 14:00 visit
    (row,) = rows(svc)
    assert row.status == "scheduled" and row.due_at == morning
    assert scheduled_at(svc, row.id) == morning
    assert reminders.send(at(svc, morning), row.id) == "sent"


def test_appointment_already_started_is_not_reminded(
    svc: Services, twilio_api: responses.RequestsMock
) -> None:
    book(svc)
    (row,) = rows(svc)
    assert reminders.send(at(svc, STARTS + timedelta(minutes=5)), row.id) == "appointment-passed"
    assert sent(twilio_api) == []


def test_appointment_cancelled_without_the_hook_is_still_not_reminded(
    svc: Services, twilio_api: responses.RequestsMock
) -> None:
    appointment_id = book(svc)
    with svc.db.session() as s:
        s.get(Appointment, appointment_id).status = "cancelled"  # type: ignore[union-attr]
    (row,) = rows(svc)
    assert reminders.send(at(svc, DUE), row.id) == "appointment-cancelled"
    assert sent(twilio_api) == []


def test_twilio_21610_on_send_records_an_opt_out(svc: Services) -> None:
    book(svc)
    (row,) = rows(svc)
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.POST,
            f"{API}/Messages.json",
            json={"code": 21610, "message": "Attempt to send to unsubscribed recipient"},
            status=400,
        )
        assert reminders.send(at(svc, DUE), row.id) == "opted-out-at-twilio"
    assert not svc.gate.may("riverside-physio", PATIENT, "reminder_sms").allowed
    with svc.db.session() as s:
        (event,) = s.scalars(select(ConsentEvent)).all()
    assert (event.state, event.channel) == ("opted_out", "sms")
    assert event.source_id == f"twilio-21610:reminder:{row.id}"


def test_status_callback_with_21610_records_one_opt_out(
    svc: Services, twilio_api: responses.RequestsMock
) -> None:
    book(svc)
    (row,) = rows(svc)
    reminders.send(at(svc, DUE), row.id)
    (row,) = rows(svc)
    tw = TwilioSim(create_app({"TESTING": True}, services=svc).test_client(), BASE_URL)
    form = {
        "AccountSid": DEV_ACCOUNT_SID,
        "MessageSid": row.twilio_sid or "",
        "MessageStatus": "failed",
        "ErrorCode": "21610",
        "To": PATIENT,
        "From": CLINIC_UK,
    }
    for _ in range(2):  # Twilio retries
        response = tw.post("/twilio/outbound/sms/status", form)
        assert response.status_code == 200
    with svc.db.session() as s:
        (event,) = s.scalars(select(ConsentEvent)).all()
        (message,) = s.scalars(select(Message)).all()
    assert event.source_id == f"twilio-21610:{row.twilio_sid}"
    assert message.status == "failed"
    (row,) = rows(svc)
    assert (row.status, row.reason) == ("failed", "failed")
    assert svc.consent.status("riverside-physio", PATIENT).state == "opted_out"


def test_unsigned_status_callback_is_refused(svc: Services) -> None:
    tw = TwilioSim(create_app({"TESTING": True}, services=svc).test_client(), BASE_URL)
    form = {
        "MessageSid": sid("SM"),
        "MessageStatus": "failed",
        "ErrorCode": "21610",
        "To": PATIENT,
        "From": CLINIC_UK,
    }
    assert tw.post("/twilio/outbound/sms/status", form, signature="bad").status_code == 403
    with svc.db.session() as s:
        assert s.scalars(select(ConsentEvent)).all() == []


def test_transient_twilio_error_releases_the_claim_for_the_retry(svc: Services) -> None:
    book(svc)
    (row,) = rows(svc)
    at(svc, DUE)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{API}/Messages.json", json={"code": 20500}, status=503)
        with pytest.raises(TransientError):
            reminders.send(svc, row.id)
    assert rows(svc)[0].status == "scheduled"
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{API}/Messages.json", json={"sid": sid("SM")}, status=201)
        assert reminders.send(svc, row.id) == "sent"
        assert len(rsps.calls) == 1


def test_a_reminder_sms_that_timed_out_is_not_sent_twice_when_twilio_has_it(
    svc: Services,
) -> None:
    book(svc)
    (row,) = rows(svc)
    at(svc, DUE)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{API}/Messages.json", body=requests.ReadTimeout("timed out"))
        with pytest.raises(TransientError):
            reminders.send(svc, row.id)
        (body,) = [parse_qs(str(c.request.body))["Body"][0] for c in rsps.calls]
    assert rows(svc)[0].status == "scheduled"  # the job's retry comes back to it
    twilio_has = {
        "sid": "SM" + "9" * 32,
        "body": body,
        "status": "delivered",
        "date_created": format_datetime(DUE),
    }
    with responses.RequestsMock() as rsps:  # no POST registered: a second send would fail
        rsps.add(responses.GET, f"{API}/Messages.json", json={"messages": [twilio_has]})
        assert reminders.send(svc, row.id) == "sent"
    (row,) = rows(svc)
    assert row.status == "sent"
    with svc.db.session() as s:
        (message,) = s.scalars(select(Message).where(Message.direction == "out"))
    assert (message.message_sid, message.status) == ("SM" + "9" * 32, "delivered")


# The reminder call ------------------------------------------------------------------------


@pytest.fixture
def call_svc(
    make_services: Callable[..., Services], db_url: str, example_config: Config
) -> Services:
    services = make_services(
        db_url, with_reminders(example_config, sms_hours_before=[], call_hours_before=[48])
    )
    services.clock = fixed(BOOKED_AT)
    return services


def place_reminder_call(svc: Services, rsps: responses.RequestsMock) -> tuple[int, str, TwilioSim]:
    appointment_id = book(svc)
    (row,) = rows(svc)
    assert row.channel == "call" and row.due_at == STARTS - timedelta(days=2)
    assert reminders.send(at(svc, STARTS - timedelta(days=2)), row.id) == "sent"
    call_sid = rows(svc)[0].twilio_sid
    assert call_sid
    tw = TwilioSim(create_app({"TESTING": True}, services=svc).test_client(), BASE_URL)
    return appointment_id, call_sid, tw


def said(body: str) -> str:
    return " ".join((e.text or "") for e in ET.fromstring(body).iter("Say"))


def test_reminder_call_payload_and_call_log(
    call_svc: Services, twilio_api: responses.RequestsMock
) -> None:
    _appointment_id, call_sid, _tw = place_reminder_call(call_svc, twilio_api)
    (payload,) = sent(twilio_api, "Calls.json")
    (row,) = rows(call_svc)
    assert payload == {
        "To": [PATIENT],
        "From": [CLINIC_UK],
        "Url": [f"{BASE_URL}/twilio/outbound/reminder/call?reminder={row.id}"],
        "Method": ["POST"],
        "StatusCallback": [f"{BASE_URL}/twilio/outbound/call/status?reminder={row.id}"],
        "StatusCallbackMethod": ["POST"],
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "Timeout": ["30"],
        "MachineDetection": ["DetectMessageEnd"],
    }
    with call_svc.db.session() as s:
        (call,) = s.scalars(select(Call)).all()
    assert (call.call_sid, call.direction, call.purpose) == (call_sid, "outbound", "reminder")
    assert (call.cli, call.called, call.clinic_id) == (PATIENT, CLINIC_UK, "riverside-physio")


def test_reminder_call_says_the_appointment_and_press_1_confirms(
    call_svc: Services, twilio_api: responses.RequestsMock
) -> None:
    _appointment_id, call_sid, tw = place_reminder_call(call_svc, twilio_api)
    (row,) = rows(call_svc)
    body = tw.post(
        f"/twilio/outbound/reminder/call?reminder={row.id}",
        tw.voice_params(call_sid, Direction="outbound-api", AnsweredBy="human"),
    ).get_data(as_text=True)
    assert "reminder of your appointment on Wednesday 10 June at 14:00" in said(body)
    assert "To confirm, press 1. To cancel, press 2." in said(body)
    answer = tw.post(
        f"/twilio/outbound/reminder/answer?reminder={row.id}",
        tw.voice_params(call_sid, Digits="1"),
    ).get_data(as_text=True)
    assert "your appointment is confirmed" in said(answer)
    assert rows(call_svc)[0].response == "confirmed"


def test_reminder_call_press_2_twice_cancels_through_the_booking_service(
    call_svc: Services, twilio_api: responses.RequestsMock
) -> None:
    appointment_id, call_sid, tw = place_reminder_call(call_svc, twilio_api)
    (row,) = rows(call_svc)
    first = tw.post(
        f"/twilio/outbound/reminder/answer?reminder={row.id}", tw.voice_params(call_sid, Digits="2")
    ).get_data(as_text=True)
    assert "press 2 again" in said(first)
    with call_svc.db.session() as s:
        assert s.get(Appointment, appointment_id).status == "booked"  # type: ignore[union-attr]
    second = tw.post(
        f"/twilio/outbound/reminder/answer?reminder={row.id}&step=cancel",
        tw.voice_params(call_sid, Digits="2"),
    ).get_data(as_text=True)
    assert "Your appointment has been cancelled" in said(second)
    with call_svc.db.session() as s:
        assert s.get(Appointment, appointment_id).status == "cancelled"  # type: ignore[union-attr]
    assert rows(call_svc)[0].response == "cancelled"


def test_reminder_call_press_0_reaches_a_person(
    call_svc: Services, twilio_api: responses.RequestsMock
) -> None:
    _appointment_id, call_sid, tw = place_reminder_call(call_svc, twilio_api)
    (row,) = rows(call_svc)
    call_svc.clock = fixed(datetime(2037, 6, 8, 10, 0, tzinfo=UTC))  # Monday 11:00: open
    body = tw.post(
        f"/twilio/outbound/reminder/answer?reminder={row.id}", tw.voice_params(call_sid, Digits="0")
    ).get_data(as_text=True)
    numbers = [n.text for n in ET.fromstring(body).iter("Number")]
    assert numbers == ["+442079460000"]
    assert ET.fromstring(body).find("Dial").get("callerId") == CLINIC_UK  # type: ignore[union-attr]


def test_reminder_call_to_a_voicemail_leaves_no_appointment_details(
    call_svc: Services, twilio_api: responses.RequestsMock
) -> None:
    _appointment_id, call_sid, tw = place_reminder_call(call_svc, twilio_api)
    (row,) = rows(call_svc)
    body = tw.post(
        f"/twilio/outbound/reminder/call?reminder={row.id}",
        tw.voice_params(call_sid, AnsweredBy="machine_end_beep"),
    ).get_data(as_text=True)
    assert "reminder about your upcoming appointment" in said(body)
    assert "June" not in body and "14:00" not in body and "<Gather" not in body


def test_reminder_call_status_callback_completes_the_call_log(
    call_svc: Services, twilio_api: responses.RequestsMock
) -> None:
    _appointment_id, call_sid, tw = place_reminder_call(call_svc, twilio_api)
    (row,) = rows(call_svc)
    params = tw.voice_params(call_sid, CallStatus="no-answer", CallDuration="0")
    for _ in range(2):
        assert tw.post(f"/twilio/outbound/call/status?reminder={row.id}", params).status_code == 200
    with call_svc.db.session() as s:
        (call,) = s.scalars(select(Call)).all()
    assert (call.status, call.outcome) == ("no-answer", "missed")
    assert (rows(call_svc)[0].status, rows(call_svc)[0].reason) == ("failed", "no-answer")
