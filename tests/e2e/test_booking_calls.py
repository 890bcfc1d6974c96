"""Whole booking calls against the live gateway, driven by `callgateway call`.

The gateway runs on the real clock, so dates are computed here the same way a caller
would say them. Each change is copied to the UK bucket (callgw-uk, eu-west-2) by
`callgateway outbox drain`, the sweeper, since no RQ worker runs in this fixture.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from callgateway.db import migrate
from callgateway.db.models import Appointment, Call
from devtools.services import Service, create_buckets
from tests.support.cli import cli_env
from tests.support.live_gateway import (
    Gateway,
    assert_log_holds_no_number_or_speech,
    fake_twilio,
    serving,
)
from tests.support.settings import EXAMPLE_CONFIG
from tests.support.twilio import CLINIC_UK

LONDON = ZoneInfo("Europe/London")
REGIONS = {
    "callgw-uk": "eu-west-2",
    "callgw-eu": "eu-central-1",
    "callgw-us": "us-east-1",
    "callgw-ca": "ca-central-1",
    "callgw-au": "ap-southeast-2",
}


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory, redis_server: Service, s3_server: Service
) -> Iterator[Gateway]:
    """A gateway of this module's own (its own database and Redis db), with the dev fake of
    Twilio's REST API: the UK clinic records, and no test may reach api.twilio.com."""
    workdir = tmp_path_factory.mktemp("booking-gateway")
    database_url = f"sqlite:///{workdir / 'gateway.db'}"
    migrate.upgrade(database_url)
    with fake_twilio(workdir / "twilio.log") as twilio_url:
        env = cli_env(
            DATABASE_URL=database_url,
            REDIS_URL=redis_server.url.rsplit("/", 1)[0] + "/6",
            AWS_ENDPOINT_URL=s3_server.url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            TWILIO_API_BASE=twilio_url,
        )
        create_buckets(EXAMPLE_CONFIG, env)
        log_path = workdir / "gateway.log"
        with serving(env, log_path) as base_url:
            gateway = Gateway(
                base_url, {**env, "PUBLIC_BASE_URL": base_url}, database_url, log_path
            )
            yield gateway
    # Stopped, so its log is complete: after every test of this module, whatever their
    # order, nothing they fed it is there in clear (a finding errors the last test).
    assert_log_holds_no_number_or_speech(gateway)


def call(gw: Gateway, caller: str, *lines: str) -> str:
    result = gw.cli("call", "--to", CLINIC_UK, "--from", caller, stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    return result.stdout


def rows(gw: Gateway, model: type, **where: object) -> list:
    engine = create_engine(gw.database_url)
    with Session(engine) as s:
        stmt = select(model).filter_by(**where).order_by(model.id)
        out = list(s.scalars(stmt))
    engine.dispose()
    return out


def s3_client(gw: Gateway, region: str) -> Any:
    return boto3.client(
        "s3",
        region_name=region,
        endpoint_url=gw.env["AWS_ENDPOINT_URL"],
        aws_access_key_id=gw.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=gw.env["AWS_SECRET_ACCESS_KEY"],
    )


def bucket_keys(gw: Gateway, prefix: str) -> dict[str, list[str]]:
    out = {}
    for bucket, region in REGIONS.items():
        s3 = s3_client(gw, region)
        listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
        out[bucket] = [o["Key"] for o in listing.get("Contents", [])]
    return out


def stored(gw: Gateway, key: str) -> tuple[dict, dict[str, str]]:
    s3 = s3_client(gw, "eu-west-2")
    doc = json.loads(s3.get_object(Bucket="callgw-uk", Key=key)["Body"].read())
    tags = s3.get_object_tagging(Bucket="callgw-uk", Key=key)["TagSet"]
    return doc, {t["Key"]: t["Value"] for t in tags}


def drain(gw: Gateway) -> dict[str, int]:
    """Run the sweeper: the bucket copy and the confirmation SMS (to the fake Twilio) both go."""
    result = gw.cli("outbox", "drain")
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0 and counts["retry"] == 0, result.stdout + result.stderr
    return counts


def spoken_day(day: date) -> str:
    suffix = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd", 31: "st"}
    return f"the {day.day}{suffix.get(day.day, 'th')} of {day:%B}"


def test_book_move_and_cancel_by_phone_each_leave_the_json_in_the_uk_bucket_only(
    gw: Gateway,
) -> None:
    caller = "+447700900123"
    out = call(
        gw, caller,
        "Hello, I'd like to book an initial assessment next Tuesday afternoon please",
        "yes please",
        "no thanks, that's all",
    )  # fmt: skip
    assert "Calls are recorded" in out and "How can I help you today?" in out
    assert "The first initial assessment I have is Tuesday" in out
    assert "Your initial assessment is booked for Tuesday" in out
    assert "Goodbye." in out
    (appointment,) = rows(gw, Appointment, phone=caller, status="booked")
    local = appointment.starts_at.astimezone(LONDON)
    assert local.weekday() == 1 and 12 <= local.hour < 17
    assert f"Your reference is {' '.join(appointment.ref)}." in out
    call_row = rows(gw, Call)[-1]
    assert (call_row.handled_by, call_row.outcome) == ("ai", "booked")

    key = f"clinics/riverside-physio/appointments/{appointment.ref}.json"
    assert drain(gw)["done"] >= 1
    # Every appointment of the clinic (this one, and any an earlier test of this module's
    # gateway booked) has its copy in the UK bucket and nowhere else.
    prefix = "clinics/riverside-physio/appointments/"
    held = sorted(
        f"{prefix}{a.ref}.json" for a in rows(gw, Appointment, clinic_id="riverside-physio")
    )
    assert key in held
    assert bucket_keys(gw, prefix) == {
        "callgw-uk": held, "callgw-eu": [], "callgw-us": [], "callgw-ca": [], "callgw-au": [],
    }  # fmt: skip
    doc, tags = stored(gw, key)
    assert doc["status"] == "booked" and doc["ref"] == appointment.ref
    assert tags == {
        "data-category": "appointment",
        "retention-until": appointment.retention_until.isoformat(),
    }

    out = call(
        gw, caller,
        "I need to move my appointment",
        f"it's on {spoken_day(local.date())}",
        "the next free one",
        "yes",
        "no that's all",
    )  # fmt: skip
    assert "I have your initial assessment on Tuesday" in out
    assert "Done. Your initial assessment is now on" in out
    (moved,) = rows(gw, Appointment, phone=caller, status="booked")
    assert moved.ref == appointment.ref and moved.starts_at != appointment.starts_at
    drain(gw)
    doc, _ = stored(gw, key)
    assert doc["starts_at"] == moved.starts_at.astimezone(LONDON).isoformat()
    assert rows(gw, Call)[-1].outcome == "moved"

    new_day = moved.starts_at.astimezone(LONDON).date()
    out = call(
        gw, caller,
        "I'm afraid I have to cancel my appointment",
        f"it's {spoken_day(new_day)}",
        "yes cancel it",
        "no thanks",
    )  # fmt: skip
    assert "Shall I cancel it?" in out and "is cancelled." in out
    assert rows(gw, Appointment, phone=caller)[0].status == "cancelled"
    drain(gw)
    doc, tags = stored(gw, key)
    assert doc["status"] == "cancelled"
    assert tags["data-category"] == "appointment"
    assert bucket_keys(gw, "clinics/riverside-physio/")["callgw-uk"] == [key]
    assert all(
        not keys for bucket, keys in bucket_keys(gw, "clinics/").items() if bucket != "callgw-uk"
    )
    assert rows(gw, Call)[-1].outcome == "cancelled"


def test_on_the_first_open_day_after_a_dst_change_the_wall_clock_time_is_booked(
    gw: Gateway,
) -> None:
    now = datetime.now(UTC)
    day = now.astimezone(LONDON).date() + timedelta(days=1)
    offset = datetime(day.year, day.month, day.day, 12, tzinfo=LONDON).utcoffset()
    while datetime(day.year, day.month, day.day, 12, tzinfo=LONDON).utcoffset() == offset:
        day += timedelta(days=1)
    while day.weekday() > 3:  # Riverside is open Monday to Friday
        day += timedelta(days=1)
    caller = "+447700900777"
    out = call(
        gw, caller, f"can I book a follow-up session on {spoken_day(day)} at 10am", "yes", "bye"
    )
    assert f"{day:%A} {day.day} {day:%B} at 10 am" in out
    (appointment,) = rows(gw, Appointment, phone=caller)
    assert appointment.starts_at == datetime(day.year, day.month, day.day, 10, tzinfo=LONDON)
    assert appointment.starts_at.astimezone(UTC).hour == 10 - int(
        datetime(day.year, day.month, day.day, 10, tzinfo=LONDON).utcoffset().total_seconds()
        // 3600
    )


def test_asking_for_a_person_mid_booking_rings_the_clinic(gw: Gateway) -> None:
    out = call(
        gw, "+447700900321",
        "I'd like to book a follow-up session next week",
        "actually can I talk to a receptionist",
    )  # fmt: skip
    assert "The first follow-up session I have is" in out
    # Open: the clinic's phone rings; closed (the real clock decides): a message for staff.
    assert "[ringing +44******0000" in out or "leave a message" in out
    assert rows(gw, Appointment, phone="+447700900321") == []


def test_silence_twice_then_a_person_and_nonsense_is_answered_safely(gw: Gateway) -> None:
    out = call(gw, "+447700900654", "", "", "")
    assert out.count("Sorry, I didn't hear anything.") == 2
    assert "I'm sorry, I'm having trouble understanding." in out
    assert "[ringing" in out or "leave a message" in out
    out = call(gw, "+447700900655", "flibbertigibbet wobble sprocket", "bye")
    assert "You can book, move or cancel an appointment" in out and "Goodbye." in out


def test_a_closed_day_is_named_with_the_nearest_free_time(gw: Gateway) -> None:
    out = call(gw, "+447700900656", "an initial assessment on Sunday please", "bye")
    assert "We're closed on Sunday" in out and "The nearest initial assessment I have is" in out


def test_opting_out_by_voice_hands_over_and_the_next_call_skips_the_ai(gw: Gateway) -> None:
    caller = "+447700900657"
    out = call(gw, caller, "please stop calling me and opt me out")
    assert "I've noted that you don't want automated calls or messages" in out
    status = gw.cli("consent", "status", "--clinic", "riverside-physio", "--phone", caller)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["state"] == "opted_out"
    again = call(gw, caller, "I want to book")
    assert "How can I help you today?" not in again
    assert "Calls are recorded" in again  # the announcement still plays first


@pytest.fixture
def a_conversation(gw: Gateway) -> None:
    """A caller who speaks and is answered, so the log has a turn and a phrase to look for
    whichever tests ran before; it books nothing (no "yes")."""
    call(gw, "+447700900999", "I would like to book an appointment")


@pytest.mark.usefixtures("a_conversation")
def test_the_log_holds_no_number_and_no_speech(gw: Gateway) -> None:
    log = gw.log_text()
    assert '"path": "/twilio/voice/turn"' in log
    for number in gw.numbers:
        assert number not in log and number[-10:] not in log
    for phrase in gw.said:
        assert phrase not in log
