"""What the booking-call tests share: one caller on one call (`Phone`), the clock pinned to
Monday 23 November 2026 09:00, Services with this test's own region buckets on moto, Twilio's
REST API faked (`rest`), and what was stored.

The fixtures are named `aws`, `svc` and `rest`; import `fixture_aws`, `fixture_svc`,
`fixture_rest` into a test module to use them.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import boto3
import pytest
import responses
from sqlalchemy import select

from callgateway.adapters.clock import fixed
from callgateway.config import Config
from callgateway.db.models import Appointment
from callgateway.wiring import Services
from devtools.services import Service
from tests.support.settings import BASE_URL
from tests.support.twilio import CLINIC_UK, PATIENT, TwilioSim, rest_that_works, sid

MONDAY_9AM = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TURN = "/twilio/voice/turn"


@pytest.fixture(name="aws")
def fixture_aws(monkeypatch: pytest.MonkeyPatch, s3_server: Service) -> str:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    return s3_server.url


def bucketed(config: Config, endpoint: str) -> Config:
    """The example config with this test's own buckets (moto is shared by the session)."""
    suffix = uuid.uuid4().hex[:10]
    regions = {
        code: region.model_copy(update={"bucket": f"{region.bucket}-{suffix}"})
        for code, region in config.regions.items()
    }
    for region in regions.values():
        client = boto3.client("s3", region_name=region.aws_region, endpoint_url=endpoint)
        extra = {}
        if region.aws_region != "us-east-1":
            extra = {"CreateBucketConfiguration": {"LocationConstraint": region.aws_region}}
        client.create_bucket(Bucket=region.bucket, **extra)
    return config.model_copy(update={"regions": regions})


def objects(svc: Services, endpoint: str) -> dict[str, list[str]]:
    out = {}
    for code, region in svc.config.regions.items():
        client = boto3.client("s3", region_name=region.aws_region, endpoint_url=endpoint)
        listing = client.list_objects_v2(Bucket=region.bucket)
        out[code] = [o["Key"] for o in listing.get("Contents", [])]
    return out


@pytest.fixture(name="svc")
def fixture_svc(
    make_services: Callable[..., Services], db_url: str, example_config: Config, aws: str
) -> Services:
    services = make_services(db_url, bucketed(example_config, aws), aws_endpoint_url=aws)
    services.clock = fixed(MONDAY_9AM)
    return services


@pytest.fixture(name="rest")
def fixture_rest() -> Iterator[responses.RequestsMock]:
    with rest_that_works() as mock:
        yield mock


def said(twiml: str) -> str:
    """What the caller hears, in order."""
    return " ".join(re.findall(r"<Say[^>]*>([^<]*)</Say>", twiml)).replace("&#x27;", "'")


class Phone:
    """One caller on one call: dials, follows the recording redirect, then talks."""

    def __init__(self, tw: TwilioSim, from_: str = PATIENT, to: str = CLINIC_UK) -> None:
        self.tw, self.from_, self.to = tw, from_, to
        self.call_sid = sid("CA")
        self.last = ""

    def dial(self) -> str:
        body = self.tw.call(self.call_sid, self.from_, self.to).get_data(as_text=True)
        heard = said(body)
        if "/twilio/voice/recording/start" in body:
            body = self.tw.post(
                "/twilio/voice/recording/start", self.tw.voice_params(self.call_sid, self.from_)
            ).get_data(as_text=True)
            heard += " " + said(body)
        self.last = body
        return heard

    def turn(self, speech: str = "", digits: str = "", confidence: str = "0.92") -> tuple:
        """The (url, form) Twilio posts when the caller answers the last Gather."""
        extra = {"CallStatus": "in-progress"}
        if digits:
            extra["Digits"] = digits
        elif speech:
            extra.update(SpeechResult=speech, Confidence=confidence)
        return self.action, self.tw.voice_params(self.call_sid, self.from_, self.to, **extra)

    @property
    def action(self) -> str:
        """Where the last Gather sends the caller's answer, as Twilio follows it."""
        found = re.search(r'<Gather [^>]*action="([^"]*)"', self.last)
        return html.unescape(found.group(1)) if found else TURN

    def say(self, speech: str = "", digits: str = "", confidence: str = "0.92") -> str:
        response = self.tw.post(*self.turn(speech, digits, confidence))
        assert response.status_code == 200
        self.last = response.get_data(as_text=True)
        return said(self.last)

    def hang_up(self, duration: int = 60) -> None:
        self.tw.status(self.call_sid, "completed", duration)

    @property
    def listening(self) -> bool:
        return f'action="{BASE_URL}{TURN}?step=' in self.last and "<Gather" in self.last

    @property
    def dialled_person(self) -> bool:
        return "<Dial" in self.last and "+442079460000" in self.last


def rows(svc: Services, model: type) -> list:
    with svc.db.session() as s:
        return list(s.scalars(select(model).order_by(model.id)))


def booked(svc: Services) -> list[Appointment]:
    return [a for a in rows(svc, Appointment) if a.status == "booked"]


def book_tuesday_afternoon(tw: TwilioSim, from_: str = PATIENT) -> Phone:
    phone = Phone(tw, from_)
    phone.dial()
    heard = phone.say("I'd like to book an initial assessment next Tuesday afternoon")
    assert "Tuesday 24 November at midday" in heard
    heard = phone.say("yes please")
    assert "is booked for Tuesday 24 November at midday" in heard
    return phone
