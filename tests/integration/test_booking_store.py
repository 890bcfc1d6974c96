"""What a booking leaves behind: one appointment per slot (the database decides, even under
concurrency), and a JSON copy in the clinic's region bucket that survives a bucket outage."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime

import boto3
import pytest
import redis
import responses
from rq import Queue

from callgateway.adapters.storage import RegionStorage
from callgateway.booking import appointments, outbox
from callgateway.config import Config
from callgateway.db.models import Appointment, OutboxItem, SlotHold
from callgateway.wiring import Services
from devtools.services import free_port
from tests.support.booking import (  # noqa: F401  (the aws, svc and rest fixtures)
    MONDAY_9AM,
    Phone,
    book_tuesday_afternoon,
    booked,
    bucketed,
    fixture_aws,
    fixture_rest,
    fixture_svc,
    objects,
    rows,
)
from tests.support.twilio import PATIENT, PATIENT_2, TwilioSim

TUESDAY_NOON = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _book(svc: Services, phone: str, start: datetime, type_id: str = "initial") -> Appointment:
    clinic = svc.directory.by_id("riverside-physio")
    assert clinic is not None
    with svc.db.session() as session:
        return appointments.book(
            session, svc.config, clinic, phone=phone, type_id=type_id, start=start, now=MONDAY_9AM
        )


def test_the_database_refuses_a_second_booking_of_an_overlapping_slot(svc: Services) -> None:
    _book(svc, PATIENT, TUESDAY_NOON)  # 12:00-12:45
    with pytest.raises(appointments.SlotTaken):
        _book(svc, PATIENT_2, TUESDAY_NOON.replace(minute=30), "follow-up")  # 12:30-13:00
    assert len(rows(svc, Appointment)) == 1  # the loser's row was rolled back too
    _book(svc, PATIENT_2, TUESDAY_NOON.replace(minute=45), "follow-up")  # adjacent is fine
    assert len(rows(svc, SlotHold)) == 3 + 2


@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_bookings_of_one_slot_on_postgresql_give_exactly_one_appointment(
    make_services: Callable[..., Services], pg_url: str, example_config: Config, attempt: int
) -> None:
    callers = [f"+4477009001{n:02d}" for n in range(8)]
    # One Services (engine, pool, connections) per thread, like separate web workers.
    workers = [make_services(pg_url, example_config) for _ in callers]
    barrier = threading.Barrier(len(callers))
    results: dict[str, str] = {}

    def attempt_booking(svc: Services, phone: str) -> None:
        barrier.wait()
        try:
            _book(svc, phone, TUESDAY_NOON)
            results[phone] = "booked"
        except appointments.SlotTaken:
            results[phone] = "taken"

    threads = [
        threading.Thread(target=attempt_booking, args=(w, p))
        for w, p in zip(workers, callers, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results.values()) == ["booked"] + ["taken"] * (len(callers) - 1)
    (winner,) = rows(workers[0], Appointment)
    assert results[winner.phone] == "booked"
    assert len(rows(workers[0], SlotHold)) == 3


def test_a_booking_is_copied_as_json_to_the_uk_bucket_only_with_tags_and_sse(
    tw: TwilioSim, svc: Services, aws: str, rest: responses.RequestsMock
) -> None:
    book_tuesday_afternoon(tw)
    (appointment,) = booked(svc)
    key = f"clinics/riverside-physio/appointments/{appointment.ref}.json"
    assert objects(svc, aws)["uk"] == []  # nothing before the outbox runs
    counts = outbox.sweep(svc)
    assert counts["done"] == 2  # the bucket copy and the SMS
    assert objects(svc, aws) == {"uk": [key], "eu": [], "us": [], "ca": [], "au": []}
    region = svc.config.regions["uk"]
    s3 = boto3.client("s3", region_name="eu-west-2", endpoint_url=aws)
    assert region.bucket.startswith("callgw-uk-")
    assert s3.get_bucket_location(Bucket=region.bucket)["LocationConstraint"] == "eu-west-2"
    tags = {
        t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=region.bucket, Key=key)["TagSet"]
    }
    assert tags == {"data-category": "appointment", "retention-until": "2033-11-22"}
    obj = s3.get_object(Bucket=region.bucket, Key=key)
    assert obj["ServerSideEncryption"] == "AES256"
    assert obj["ContentType"] == "application/json"
    doc = json.loads(obj["Body"].read())
    assert doc["ref"] == appointment.ref and doc["status"] == "booked"
    assert doc["starts_at"] == "2026-11-24T12:00:00+00:00"
    assert doc["appointment_type"] == {"id": "initial", "name": "Initial assessment", "minutes": 45}
    assert doc["retention_until"] == appointment.retention_until.isoformat() == "2033-11-22"


def test_move_and_cancel_rewrite_the_same_object_with_the_latest_state(
    tw: TwilioSim, svc: Services, aws: str, rest: responses.RequestsMock
) -> None:
    book_tuesday_afternoon(tw)
    (appointment,) = booked(svc)
    phone = Phone(tw)
    phone.dial()
    phone.say("I want to move my appointment on Tuesday")
    phone.say("Wednesday at 10")
    phone.say("yes")
    # Delivered after both changes: the older item must not overwrite the newer state.
    outbox.sweep(svc)
    region = svc.config.regions["uk"]
    s3 = boto3.client("s3", region_name="eu-west-2", endpoint_url=aws)
    key = f"clinics/riverside-physio/appointments/{appointment.ref}.json"
    doc = json.loads(s3.get_object(Bucket=region.bucket, Key=key)["Body"].read())
    assert doc["starts_at"] == "2026-11-25T10:00:00+00:00"
    cancel = Phone(tw)
    cancel.dial()
    cancel.say("cancel my appointment on Wednesday")
    cancel.say("yes")
    outbox.sweep(svc)
    doc = json.loads(s3.get_object(Bucket=region.bucket, Key=key)["Body"].read())
    assert doc["status"] == "cancelled"
    assert objects(svc, aws)["uk"] == [key]


def test_a_bucket_outage_loses_nothing_the_sweeper_delivers_later(
    tw: TwilioSim, svc: Services, aws: str, rest: responses.RequestsMock
) -> None:
    healthy = svc.storage
    svc.storage = RegionStorage(svc.config, f"http://127.0.0.1:{free_port()}")  # nobody there
    book_tuesday_afternoon(tw)
    counts = outbox.sweep(svc)
    assert counts["retry"] == 1 and counts["done"] == 1  # the SMS went; the copy waits
    (item,) = [i for i in rows(svc, OutboxItem) if i.kind == outbox.APPOINTMENT_JSON]
    assert item.done_at is None and item.attempts == 1
    assert item.last_error.startswith("bucket write failed")
    assert item.next_attempt_at > MONDAY_9AM  # backed off: not retried in a tight loop
    assert outbox.sweep(svc)["retry"] == 0 and outbox.pending(svc) == []
    svc.storage = healthy
    svc.clock = lambda: item.next_attempt_at  # the backoff has passed
    assert outbox.sweep(svc)["done"] == 1
    assert len(objects(svc, aws)["uk"]) == 1
    assert all(i.done_at is not None for i in rows(svc, OutboxItem))


def test_bucket_copy_is_enqueued_after_commit_and_kept_when_redis_is_down(
    tw: TwilioSim, svc: Services, aws: str, rest: responses.RequestsMock
) -> None:
    book_tuesday_afternoon(tw)
    ids = [i.id for i in rows(svc, OutboxItem)]
    queue = Queue("default", connection=svc.redis)
    assert {f"outbox-{i}" for i in ids} <= set(queue.job_ids)
    assert queue.fetch_job(f"outbox-{ids[0]}").args == (ids[0],)
    # Redis gone at enqueue time: the committed row waits for the sweeper.
    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.2)
    svc.queue = Queue("default", connection=dead)
    second = Phone(tw, PATIENT_2)
    svc.redis, live = dead, svc.redis
    try:
        outbox.enqueue(svc, [ids[0]])  # no exception reaches the caller
    finally:
        svc.redis = live
    assert outbox.sweep(svc)["done"] == 2
    assert second.call_sid  # (the second caller never needed to ring)


def test_an_anonymous_caller_gets_no_sms_and_nothing_is_written(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    phone = Phone(tw, "Anonymous")
    phone.dial()
    phone.say("book an initial assessment next Tuesday afternoon")
    phone.say("no")
    assert rows(svc, OutboxItem) == [] and rows(svc, Appointment) == []
    assert not [c for c in rest.calls if c.request.url.endswith("Messages.json")]


def test_retention_of_an_appointment_counts_from_the_visit(svc: Services) -> None:
    later = datetime(2027, 5, 4, 9, 0, tzinfo=UTC)
    appointment = _book(svc, PATIENT, later)
    assert appointment.retention_until == date(2034, 5, 2)  # 2555 days after the visit
