"""`make dev`'s promise, end to end: after a recorded call from the terminal phone the
recording sits in the clinic's region bucket with its tags and is gone from (the fake)
Twilio; `rights export` lists it, `rights erase` removes it and everything else of the
number, and `retention sweep --now 2040-01-01 --yes` empties what has expired.

Like `make dev`: a real `callgateway serve`, the fake Twilio REST API, a real `rq worker`
and the moto S3 endpoint; the test's own bucket names and database.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests
from sqlalchemy import create_engine, select

from callgateway.db import migrate
from callgateway.db.models import Call
from devtools.services import Service
from tests.support.cli import CALLGATEWAY, cli_env, run_cli
from tests.support.live_gateway import fake_twilio, serving
from tests.support.regions import s3, write_config
from tests.support.settings import ROOT
from tests.support.twilio import CLINIC_UK, PATIENT, PATIENT_2

RQ = str(Path(CALLGATEWAY).parent / "rq")
WORKER = [RQ, "worker", "--worker-class", "callgateway.jobs.worker.Worker"]  # the Procfile's


@dataclass
class DevStack:
    env: dict[str, str]
    twilio_url: str
    endpoint: str
    bucket: str

    def cli(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        result = run_cli(list(args), self.env, stdin)
        assert result.returncode == 0, result.stderr
        return result

    def work(self) -> None:
        """What the dev worker does between calls: run every queued job, then stop."""
        done = subprocess.run(
            [*WORKER, "--burst", "-u", self.env["REDIS_URL"], "default"],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def objects(self) -> list[str]:
        listing = s3(self.endpoint, "eu-west-2").list_objects_v2(Bucket=self.bucket)
        return [o["Key"] for o in listing.get("Contents", [])]

    def fake_recordings(self, call_sid: str) -> list[dict[str, object]]:
        url = f"{self.twilio_url}/_dev/calls/{call_sid}/recordings"
        return requests.get(url, timeout=5).json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def dev_stack(
    tmp_path_factory: pytest.TempPathFactory, redis_server: Service, s3_server: Service
) -> Iterator[DevStack]:
    workdir = tmp_path_factory.mktemp("devstack")
    config_path = workdir / "config.yaml"
    config = write_config(config_path, uuid.uuid4().hex[:10])
    database_url = f"sqlite:///{workdir / 'gateway.db'}"
    migrate.upgrade(database_url)
    redis_url = redis_server.url.rsplit("/", 1)[0] + "/7"
    redis.Redis.from_url(redis_url).flushdb()
    with fake_twilio(workdir / "twilio.log") as twilio_url:
        env = cli_env(
            CALLGATEWAY_CONFIG=str(config_path),
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            AWS_ENDPOINT_URL=s3_server.url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            TWILIO_API_BASE=twilio_url,
        )
        assert run_cli(["storage", "init"], env).returncode == 0
        with serving(env, workdir / "gateway.log", workers=1) as base_url:
            yield DevStack(
                {**env, "PUBLIC_BASE_URL": base_url},
                twilio_url,
                s3_server.url,
                config.regions["uk"].bucket,
            )


def call_sid_of(stack: DevStack, caller: str) -> str:
    engine = create_engine(stack.env["DATABASE_URL"])
    with engine.connect() as conn:
        sid = conn.execute(
            select(Call.call_sid).where(Call.cli == caller).order_by(Call.id.desc())
        ).scalar_one()
    engine.dispose()
    return str(sid)


def test_a_recorded_call_ends_in_the_region_bucket_and_is_deleted_at_twilio(
    dev_stack: DevStack,
) -> None:
    call = dev_stack.cli("call", "--to", CLINIC_UK, "--from", PATIENT, stdin="")
    assert "Calls are recorded for quality and training." in call.stdout
    call_sid = call_sid_of(dev_stack, PATIENT)
    (at_twilio,) = dev_stack.fake_recordings(call_sid)
    assert at_twilio["has_media"] and not at_twilio["deleted"]

    dev_stack.work()

    (after,) = dev_stack.fake_recordings(call_sid)
    assert after["deleted"]
    (key,) = dev_stack.objects()
    assert key.startswith("clinics/riverside-physio/subjects/")
    assert key.endswith(f"/recordings/{at_twilio['sid']}.wav")
    client = s3(dev_stack.endpoint, "eu-west-2")
    tags = client.get_object_tagging(Bucket=dev_stack.bucket, Key=key)["TagSet"]
    assert {t["Key"] for t in tags} == {"data-category", "retention-until"}
    assert {t["Key"]: t["Value"] for t in tags}["data-category"] == "recording"
    head = client.head_object(Bucket=dev_stack.bucket, Key=key)
    assert head["ServerSideEncryption"] == "AES256"
    assert client.get_object(Bucket=dev_stack.bucket, Key=key)["Body"].read()[:4] == b"RIFF"

    export = json.loads(dev_stack.cli("rights", "export", "--phone", PATIENT).stdout)
    (listed,) = export["recordings"]
    assert (listed["key"], listed["region"], listed["at_twilio"]) == (key, "uk", False)

    erased = dev_stack.cli(
        "rights", "erase", "--phone", PATIENT, "--clinic", "riverside-physio", "--yes"
    )
    assert json.loads(erased.stdout)["erased"] is True
    assert dev_stack.objects() == []
    empty = json.loads(dev_stack.cli("rights", "export", "--phone", PATIENT).stdout)
    assert [empty[k] for k in ("calls", "recordings", "voicemails", "messages")] == [[], [], [], []]
    again = dev_stack.cli(
        "rights", "erase", "--phone", PATIENT, "--clinic", "riverside-physio", "--yes"
    )
    assert json.loads(again.stdout)["erased"] is False


def test_a_sweep_in_2040_empties_what_has_expired(dev_stack: DevStack) -> None:
    dev_stack.cli("call", "--to", CLINIC_UK, "--from", PATIENT_2, stdin="")
    dev_stack.work()
    assert len(dev_stack.objects()) == 1

    swept = json.loads(dev_stack.cli("retention", "sweep", "--now", "2040-01-01", "--yes").stdout)

    assert swept["recording"] == 1 and swept["call-metadata"] >= 1
    assert dev_stack.objects() == []
    left = json.loads(dev_stack.cli("rights", "export", "--phone", PATIENT_2).stdout)
    assert left["calls"] == [] and left["recordings"] == []
