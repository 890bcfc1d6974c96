"""Check-in calls and their alerts on SQLite and PostgreSQL with real Redis; Twilio's REST
API faked with `responses`, its webhooks played signed through the app."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest
import responses
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from callgateway.adapters.clock import fixed
from callgateway.config.settings import DEV_ACCOUNT_SID
from callgateway.db.models import Call, Message
from callgateway.db.models_outbound import CheckinAlert, CheckinAttempt
from callgateway.outbound import alerts, checkins
from callgateway.wiring import Services
from tests.support.settings import BASE_URL
from tests.support.twilio import CLINIC_UK, PATIENT, TwilioSim, sid

API = f"https://api.twilio.com/2010-04-01/Accounts/{DEV_ACCOUNT_SID}"
CARER = "+447700900777"
NEIGHBOUR = "+447700900888"
NOW = datetime(2037, 6, 8, 7, 0, tzinfo=UTC)  # Monday 08:00 BST
OCCURRENCE = datetime(2037, 6, 8, 8, 0, tzinfo=UTC)  # Monday 09:00 BST


@pytest.fixture
def svc(make_services: Callable[..., Services], db_url: str) -> Services:
    services = make_services(db_url)
    services.clock = fixed(NOW)
    return services


@pytest.fixture
def twilio_api() -> Iterator[responses.RequestsMock]:
    def created(prefix: str) -> Callable[[object], tuple[int, dict[str, str], str]]:
        return lambda _request: (201, {}, f'{{"sid": "{sid(prefix)}", "status": "queued"}}')

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.POST, f"{API}/Messages.json", callback=created("SM"))
        rsps.add_callback(responses.POST, f"{API}/Calls.json", callback=created("CA"))
        yield rsps


def sent(rsps: responses.RequestsMock, what: str) -> list[dict[str, list[str]]]:
    return [parse_qs(str(c.request.body)) for c in rsps.calls if str(c.request.url).endswith(what)]


def add(svc: Services, **overrides: object) -> int:
    spec = {
        "clinic_id": "riverside-physio",
        "phone": PATIENT,
        "days": "daily",
        "local_time": "09:00",
        "alert_numbers": [CARER, NEIGHBOUR],
        "message_text": "Good morning, this is your daily call from Riverside.",
        "display_name": "Mrs Patel",
        "retries": 1,
        "retry_minutes": 5,
    }
    spec.update(overrides)
    return checkins.add_schedule(svc, checkins.ScheduleSpec(**spec))  # type: ignore[arg-type]


def pending(svc: Services, job_id: str) -> datetime | None:
    """When the job will run: its scheduled time, NOW-ish if queued, None if absent."""
    registry = ScheduledJobRegistry(queue=svc.queue)
    if job_id in registry.get_job_ids():
        return registry.get_scheduled_time(job_id)
    if job_id in svc.queue.job_ids:  # type: ignore[union-attr]
        return NOW
    return None


def attempts(svc: Services) -> list[CheckinAttempt]:
    with svc.db.session() as s:
        return list(s.scalars(select(CheckinAttempt).order_by(CheckinAttempt.id)))


def alert_rows(svc: Services) -> list[CheckinAlert]:
    with svc.db.session() as s:
        return list(s.scalars(select(CheckinAlert).order_by(CheckinAlert.id)))


def first_call(svc: Services, schedule_id: int) -> CheckinAttempt:
    svc.clock = fixed(OCCURRENCE)
    assert checkins.run_attempt(svc, schedule_id, OCCURRENCE, 1) == "calling"
    return attempts(svc)[-1]


def said(body: str) -> str:
    return " ".join((e.text or "") for e in ET.fromstring(body).iter("Say"))


def status(tw: TwilioSim, attempt: CheckinAttempt, call_status: str, **extra: str) -> None:
    params = tw.voice_params(attempt.call_sid or "", CallStatus=call_status, **extra)
    response = tw.post(f"/twilio/outbound/call/status?attempt={attempt.id}", params)
    assert response.status_code == 200


def test_new_schedule_queues_its_first_call_at_the_local_time(svc: Services) -> None:
    schedule_id = add(svc)
    assert pending(svc, checkins.attempt_job_id(schedule_id, OCCURRENCE, 1)) == OCCURRENCE


def test_check_in_call_payload_call_log_and_the_next_day(
    svc: Services, twilio_api: responses.RequestsMock
) -> None:
    schedule_id = add(svc)
    attempt = first_call(svc, schedule_id)
    (payload,) = sent(twilio_api, "Calls.json")
    assert payload == {
        "To": [PATIENT],
        "From": [CLINIC_UK],
        "Url": [f"{BASE_URL}/twilio/outbound/checkin/call?attempt={attempt.id}"],
        "Method": ["POST"],
        "StatusCallback": [f"{BASE_URL}/twilio/outbound/call/status?attempt={attempt.id}"],
        "StatusCallbackMethod": ["POST"],
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "Timeout": ["30"],
        "MachineDetection": ["Enable"],
    }
    assert attempt.status == "calling" and attempt.call_sid
    with svc.db.session() as s:
        (call,) = s.scalars(select(Call)).all()
    assert (call.direction, call.purpose, call.cli, call.called) == (
        "outbound",
        "checkin",
        PATIENT,
        CLINIC_UK,
    )
    tomorrow = OCCURRENCE + timedelta(days=1)
    assert pending(svc, checkins.attempt_job_id(schedule_id, tomorrow, 1)) == tomorrow
    assert pending(svc, f"checkin-watchdog-{attempt.id}") == OCCURRENCE + checkins.WATCHDOG


def test_duplicate_job_delivery_places_one_call(
    svc: Services, twilio_api: responses.RequestsMock
) -> None:
    schedule_id = add(svc)
    first_call(svc, schedule_id)
    assert checkins.run_attempt(svc, schedule_id, OCCURRENCE, 1) == "duplicate"
    assert len(sent(twilio_api, "Calls.json")) == 1


def test_pressing_1_confirms_and_nobody_is_alerted(
    svc: Services, tw: TwilioSim, twilio_api: responses.RequestsMock
) -> None:
    schedule_id = add(svc)
    attempt = first_call(svc, schedule_id)
    body = tw.post(
        f"/twilio/outbound/checkin/call?attempt={attempt.id}",
        tw.voice_params(attempt.call_sid or "", AnsweredBy="human", Direction="outbound-api"),
    ).get_data(as_text=True)
    assert "Good morning, this is your daily call from Riverside." in said(body)
    assert "press 1 or say I'm fine" in said(body)
    answer = tw.post(
        f"/twilio/outbound/checkin/answer?attempt={attempt.id}&try=1",
        tw.voice_params(attempt.call_sid or "", Digits="1"),
    ).get_data(as_text=True)
    assert "glad you are well" in said(answer)
    status(tw, attempt, "completed", CallDuration="20")
    assert attempts(svc)[0].status == "confirmed"
    assert pending(svc, checkins.attempt_job_id(schedule_id, OCCURRENCE, 2)) is None
    assert pending(svc, checkins.alerts_job_id(schedule_id, OCCURRENCE)) is None


@pytest.mark.parametrize(
    ("speech", "verdict"),
    [
        ("I'm fine thanks", "fine"),
        ("yes I'm okay", "fine"),
        ("I'm not fine", "help"),
        ("I've fallen and I need help", "help"),
        ("what", None),
    ],
)
def test_what_the_patient_says_is_read_safely(speech: str, verdict: str | None) -> None:
    assert checkins.classify("", speech) == verdict


def test_asking_for_help_alerts_at_once(
    svc: Services, tw: TwilioSim, twilio_api: responses.RequestsMock
) -> None:
    schedule_id = add(svc)
    attempt = first_call(svc, schedule_id)
    answer = tw.post(
        f"/twilio/outbound/checkin/answer?attempt={attempt.id}&try=1",
        tw.voice_params(attempt.call_sid or "", SpeechResult="I'm not fine", Confidence="0.9"),
    ).get_data(as_text=True)
    assert "let your contacts know" in said(answer) and "9 9 9" in said(answer)
    assert attempts(svc)[0].status == "help"
    assert pending(svc, checkins.alerts_job_id(schedule_id, OCCURRENCE)) is not None
    status(tw, attempt, "completed", CallDuration="30")
    assert pending(svc, checkins.attempt_job_id(schedule_id, OCCURRENCE, 2)) is None


def test_unanswered_call_retries_then_alerts(
    svc: Services, tw: TwilioSim, twilio_api: responses.RequestsMock
) -> None:
    schedule_id = add(svc)
    attempt = first_call(svc, schedule_id)
    status(tw, attempt, "no-answer")
    status(tw, attempt, "no-answer")  # Twilio retries the callback: one retry, not two
    retry_at = OCCURRENCE + timedelta(minutes=5)
    assert pending(svc, checkins.attempt_job_id(schedule_id, OCCURRENCE, 2)) == retry_at
    assert pending(svc, checkins.alerts_job_id(schedule_id, OCCURRENCE)) is None

    svc.clock = fixed(retry_at)
    assert checkins.run_attempt(svc, schedule_id, OCCURRENCE, 2) == "calling"
    second = attempts(svc)[-1]
    status(tw, second, "busy")
    assert [a.status for a in attempts(svc)] == ["unanswered", "unanswered"]
    job = Job.fetch(checkins.alerts_job_id(schedule_id, OCCURRENCE), connection=svc.redis)
    assert job.args == (schedule_id, OCCURRENCE.isoformat(), "unanswered")


def test_answering_machine_counts_as_unanswered(
    svc: Services, tw: TwilioSim, twilio_api: responses.RequestsMock
) -> None:
    schedule_id = add(svc, retries=0)
    attempt = first_call(svc, schedule_id)
    body = tw.post(
        f"/twilio/outbound/checkin/call?attempt={attempt.id}",
        tw.voice_params(attempt.call_sid or "", AnsweredBy="machine_start"),
    ).get_data(as_text=True)
    assert "<Hangup />" in body and "<Say" not in body
    status(tw, attempt, "completed", CallDuration="3", AnsweredBy="machine_start")
    assert attempts(svc)[0].status == "machine"
    job = Job.fetch(checkins.alerts_job_id(schedule_id, OCCURRENCE), connection=svc.redis)
    assert job.args[2] == "machine"


def test_answered_but_never_confirmed_alerts_as_unconfirmed(
    svc: Services, tw: TwilioSim, twilio_api: responses.RequestsMock
) -> None:
    schedule_id = add(svc, retries=0)
    attempt = first_call(svc, schedule_id)
    tw.post(
        f"/twilio/outbound/checkin/call?attempt={attempt.id}",
        tw.voice_params(attempt.call_sid or "", AnsweredBy="human"),
    )
    last = tw.post(
        f"/twilio/outbound/checkin/answer?attempt={attempt.id}&try=2",
        tw.voice_params(attempt.call_sid or ""),
    ).get_data(as_text=True)
    assert "We did not hear from you" in said(last)
    status(tw, attempt, "completed", CallDuration="40")
    assert attempts(svc)[0].status == "unconfirmed"


def test_lost_status_callback_is_ended_by_the_watchdog(
    svc: Services, twilio_api: responses.RequestsMock
) -> None:
    schedule_id = add(svc, retries=0)
    attempt = first_call(svc, schedule_id)
    svc.clock = fixed(OCCURRENCE + checkins.WATCHDOG)
    assert checkins.watchdog(svc, attempt.id) == "alerts"
    assert checkins.watchdog(svc, attempt.id) == "ended"
    assert (attempts(svc)[0].status, attempts(svc)[0].reason) == (
        "unanswered",
        "no-status-callback",
    )


def test_alerts_go_to_every_receiver_once_by_sms_and_call(
    svc: Services, tw: TwilioSim, twilio_api: responses.RequestsMock
) -> None:
    schedule_id = add(svc, retries=0)
    first_call(svc, schedule_id)
    for _ in range(2):  # a duplicated job sends nothing more
        assert alerts.raise_alerts(svc, schedule_id, OCCURRENCE, "unanswered") == "alerted"
    texts = sent(twilio_api, "Messages.json")
    assert texts == [
        {
            "To": [receiver],
            "From": [CLINIC_UK],
            "Body": [
                "Riverside Physiotherapy check-in alert: Mrs Patel did not answer today's 09:00 "
                "check-in call (1 call). Please check on them."
            ],
            "StatusCallback": [f"{BASE_URL}/twilio/outbound/sms/status"],
        }
        for receiver in (CARER, NEIGHBOUR)
    ]
    rows = alert_rows(svc)
    call_rows = [r for r in rows if r.channel == "call"]
    calls_made = sent(twilio_api, "Calls.json")[1:]  # the first is the check-in call itself
    assert [c["To"] for c in calls_made] == [[CARER], [NEIGHBOUR]]
    assert [c["Url"] for c in calls_made] == [
        [f"{BASE_URL}/twilio/outbound/alert/call?alert={r.id}"] for r in call_rows
    ]
    assert {c["MachineDetection"][0] for c in calls_made} == {"DetectMessageEnd"}
    assert {r.status for r in rows} == {"sent"}
    body = tw.post(
        f"/twilio/outbound/alert/call?alert={call_rows[0].id}",
        tw.voice_params(call_rows[0].twilio_sid or "", To=CARER, AnsweredBy="human"),
    ).get_data(as_text=True)
    assert "Mrs Patel did not answer today's 09:00 check-in call" in said(body)
    with svc.db.session() as s:
        purposes = sorted(c.purpose for c in s.scalars(select(Call)))
        kinds = sorted(m.kind for m in s.scalars(select(Message)))
    assert purposes == ["alert", "alert", "checkin"]
    assert kinds == ["checkin-alert", "checkin-alert"]


def test_alert_without_a_name_never_spells_out_the_patients_number(
    svc: Services, tw: TwilioSim, twilio_api: responses.RequestsMock
) -> None:
    schedule_id = add(svc, retries=0, display_name=None, alert_numbers=[CARER])
    first_call(svc, schedule_id)
    alerts.raise_alerts(svc, schedule_id, OCCURRENCE, "unanswered")
    (text,) = sent(twilio_api, "Messages.json")
    assert "the patient on +44******0123" in text["Body"][0]
    assert PATIENT not in text["Body"][0]
    call_row = next(r for r in alert_rows(svc) if r.channel == "call")
    body = tw.post(
        f"/twilio/outbound/alert/call?alert={call_row.id}",
        tw.voice_params(call_row.twilio_sid or "", To=CARER),
    ).get_data(as_text=True)
    assert "the patient whose number ends 0 1 2 3" in said(body)
    assert PATIENT not in body and "7700" not in body


def test_opted_out_patient_is_not_called_and_nobody_is_alerted(
    svc: Services, twilio_api: responses.RequestsMock
) -> None:
    schedule_id = add(svc)
    svc.consent.record_opt_out("riverside-physio", PATIENT, "sms", sid("SM"))
    svc.clock = fixed(OCCURRENCE)
    assert checkins.run_attempt(svc, schedule_id, OCCURRENCE, 1) == "opted-out"
    assert sent(twilio_api, "Calls.json") == []
    assert (attempts(svc)[0].status, attempts(svc)[0].reason) == ("skipped", "opted-out")
    assert pending(svc, checkins.alerts_job_id(schedule_id, OCCURRENCE)) is None


def test_opted_out_receiver_gets_nothing_and_the_other_is_still_alerted(
    svc: Services, twilio_api: responses.RequestsMock
) -> None:
    schedule_id = add(svc, retries=0)
    first_call(svc, schedule_id)
    svc.consent.record_opt_out("riverside-physio", NEIGHBOUR, "sms", sid("SM"))
    alerts.raise_alerts(svc, schedule_id, OCCURRENCE, "unanswered")
    assert [t["To"] for t in sent(twilio_api, "Messages.json")] == [[CARER]]
    assert [c["To"] for c in sent(twilio_api, "Calls.json")] == [[PATIENT], [CARER]]
    skipped = [(r.phone, r.channel, r.detail) for r in alert_rows(svc) if r.status == "skipped"]
    assert skipped == [(NEIGHBOUR, "sms", "opted-out"), (NEIGHBOUR, "call", "opted-out")]


def test_paused_schedule_places_no_call(svc: Services, twilio_api: responses.RequestsMock) -> None:
    schedule_id = add(svc)
    checkins.set_active(svc, schedule_id, "riverside-physio", False)
    svc.clock = fixed(OCCURRENCE)
    assert checkins.run_attempt(svc, schedule_id, OCCURRENCE, 1) == "inactive"
    assert sent(twilio_api, "Calls.json") == []


def test_changed_time_makes_the_old_job_a_no_op(
    svc: Services, twilio_api: responses.RequestsMock
) -> None:
    schedule_id = add(svc)
    spec = checkins.ScheduleSpec(
        clinic_id="riverside-physio",
        phone=PATIENT,
        days="daily",
        local_time="10:30",
        alert_numbers=[CARER],
        message_text="Hello",
    )
    checkins.update_schedule(svc, schedule_id, spec)
    svc.clock = fixed(OCCURRENCE)
    assert checkins.run_attempt(svc, schedule_id, OCCURRENCE, 1) == "stale"
    assert sent(twilio_api, "Calls.json") == []
    new = datetime(2037, 6, 8, 9, 30, tzinfo=UTC)
    assert pending(svc, checkins.attempt_job_id(schedule_id, new, 1)) == new


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"alert_numbers": []}, "alert"),
        ({"alert_numbers": [PATIENT]}, "alert"),
        ({"days": "someday"}, "days/time"),
        ({"local_time": "9am"}, "days/time"),
        ({"message_text": None}, "message"),
        ({"retries": 9}, "retries"),
        ({"recording_key": "clinics/other-clinic/x.mp3"}, "recording"),
    ],
)
def test_bad_schedule_is_refused_naming_the_field(
    svc: Services, overrides: dict[str, object], field: str
) -> None:
    with pytest.raises(checkins.ScheduleError) as err:
        add(svc, **overrides)
    assert str(err.value).startswith(field + ":")
