"""The S3 endpoint stopped: no caller notices, nothing is lost, nothing lands elsewhere.

Nothing a caller waits for touches the bucket: the appointment's JSON copy goes through
the outbox and recordings through the lifecycle job, both retried. Once the endpoint is back
(moto restarts empty, so the buckets are made again) each object is written once, to the
clinic's own region, and only then is Twilio's copy of the recording deleted.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import responses
from sqlalchemy import select

from callgateway.adapters.clock import fixed
from callgateway.adapters.storage import StorageError
from callgateway.booking import outbox
from callgateway.db.models import Appointment, OutboxItem, Recording
from callgateway.wiring import Services
from devtools.services import Service
from recordings import lifecycle
from tests.support.booking import MONDAY_9AM, book_tuesday_afternoon
from tests.support.faults import API, app_for, assert_caller_is_served
from tests.support.regions import all_objects, create_buckets
from tests.support.services import service_stopped
from tests.support.twilio import sid

pytest_plugins = ["tests.support.region_fixtures"]
MEDIA = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 8


def test_a_booking_and_a_voicemail_while_s3_is_down_are_stored_once_it_is_back(
    stored_services: Services,
    aws_env: str,
    s3_server: Service,
    twilio_api: responses.RequestsMock,
) -> None:
    svc = stored_services
    svc.clock = fixed(MONDAY_9AM)
    tw = app_for(svc)
    recording_sid = sid("RE")
    twilio_api.get(f"{API}/Recordings/{recording_sid}.wav", body=MEDIA)
    twilio_api.delete(f"{API}/Recordings/{recording_sid}.json", status=204)

    with service_stopped(s3_server):
        phone = book_tuesday_afternoon(tw)  # asserts the caller heard it booked
        assert_caller_is_served(200, phone.last)
        voicemail = tw.post(
            "/twilio/voice/recording/status?kind=voicemail",
            {
                **tw.voice_params(phone.call_sid),
                "RecordingSid": recording_sid,
                "RecordingStatus": "completed",
                "RecordingDuration": "8",
            },
        )
        assert voicemail.status_code == 200
        counts = outbox.sweep(svc)
        assert (counts["done"], counts["retry"]) == (1, 1)  # the SMS went; the copy waits
        rec_id = one(svc, Recording).id
        with pytest.raises(StorageError):  # transient: RQ retries it on its schedule
            lifecycle.transfer(svc.recordings, rec_id, final_attempt=False)
        rec = one(svc, Recording)
        assert (rec.status, rec.deleted_at_twilio) == ("pending", False)
        methods = [c.request.method for c in twilio_api.calls if "/Recordings/RE" in c.request.url]
        assert methods == ["GET"]  # downloaded, never deleted: Twilio's copy is the only one

    create_buckets(svc)  # moto restarted empty
    svc.clock = fixed(MONDAY_9AM + timedelta(hours=1))  # past the outbox's backoff
    assert outbox.sweep(svc)["done"] == 1
    assert lifecycle.transfer(svc.recordings, rec_id, final_attempt=False) == "done"
    assert outbox.sweep(svc) == {"done": 0, "retry": 0, "failed": 0, "skipped": 0}

    objects = all_objects(aws_env, svc.config)
    appointment, rec = one(svc, Appointment), one(svc, Recording)
    assert sorted(objects["uk"]) == sorted(
        [outbox.appointment_key("riverside-physio", appointment.ref), rec.key]
    )
    assert all(objects[code] == [] for code in objects if code != "uk")
    assert (rec.status, rec.deleted_at_twilio) == ("stored", True)
    with svc.db.session() as s:
        assert all(i.done_at is not None for i in s.scalars(select(OutboxItem)))


def one(svc: Services, model: type) -> object:
    with svc.db.session() as s:
        return s.scalars(select(model)).one()
