"""A clinic's objects land only in its region's bucket, tagged and encrypted; anything
aimed elsewhere is refused before a request leaves the process."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import pytest
import yaml

from callgateway.adapters.storage import RegionStorage, RegionViolation, subject_prefix
from callgateway.wiring import Services
from tests.support.cli import cli_env, run_cli
from tests.support.regions import all_objects, s3
from tests.support.settings import EXAMPLE_CONFIG

pytest_plugins = ["tests.support.region_fixtures"]

UNTIL = date(2031, 3, 4)


def test_each_clinic_writes_only_to_its_own_regions_bucket_with_tags_and_sse(
    stored_services: Services, aws_env: str
) -> None:
    svc = stored_services
    assert svc.storage is not None
    written = {}
    for clinic in svc.directory.all():
        key = f"clinics/{clinic.id}/recordings/{uuid.uuid4().hex}.wav"
        svc.storage.put(clinic, key, b"RIFF-audio", category="recording", retention_until=UNTIL)
        written[clinic.region] = key
    assert sorted(written) == ["au", "ca", "eu", "uk", "us"]

    # Each bucket holds exactly its own region's clinic's object, and nothing else.
    assert all_objects(aws_env, svc.config) == {code: [key] for code, key in written.items()}
    for code, key in written.items():
        region = svc.config.regions[code]
        client = s3(aws_env, region.aws_region)
        location = client.get_bucket_location(Bucket=region.bucket)["LocationConstraint"]
        assert (location or "us-east-1") == region.aws_region
        tags = client.get_object_tagging(Bucket=region.bucket, Key=key)["TagSet"]
        assert {t["Key"]: t["Value"] for t in tags} == {
            "data-category": "recording",
            "retention-until": "2031-03-04",
        }
        head = client.head_object(Bucket=region.bucket, Key=key)
        assert head["ServerSideEncryption"] == "AES256"


def test_a_region_with_a_kms_key_encrypts_with_that_key(
    stored_services: Services, aws_env: str
) -> None:
    key_id = "arn:aws:kms:eu-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    config = stored_services.config
    kms_config = config.model_copy(
        update={
            "regions": {
                **config.regions,
                "uk": config.regions["uk"].model_copy(update={"kms_key_id": key_id}),
            }
        }
    )
    storage = RegionStorage(kms_config, aws_env)
    clinic = stored_services.directory.by_id("riverside-physio")
    assert clinic is not None
    storage.put(
        clinic, "clinics/riverside-physio/x.wav", b"a", category="voicemail", retention_until=UNTIL
    )
    head = s3(aws_env, "eu-west-2").head_object(
        Bucket=config.regions["uk"].bucket, Key="clinics/riverside-physio/x.wav"
    )
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == key_id


@pytest.mark.parametrize("target", ["eu", "us", "ca", "au"])
def test_a_uk_clinics_object_aimed_at_another_region_is_refused_before_any_request(
    stored_services: Services, aws_env: str, target: str
) -> None:
    svc = stored_services
    assert svc.storage is not None
    sent: list[str] = []
    for code in svc.config.regions:  # count every request any region's client would build
        svc.storage.client(code).meta.events.register(
            "before-call.s3", lambda model, **_: sent.append(model.name)
        )
    uk_clinic = svc.directory.by_id("riverside-physio")
    assert uk_clinic is not None
    with pytest.raises(RegionViolation, match="not"):
        svc.storage.put(
            uk_clinic,
            "clinics/riverside-physio/recordings/a.wav",
            b"patient audio",
            category="recording",
            retention_until=UNTIL,
            region_code=target,
        )
    assert sent == []
    assert all_objects(aws_env, svc.config) == {code: [] for code in svc.config.regions}


def test_keys_outside_the_clinics_prefix_are_refused(stored_services: Services) -> None:
    svc = stored_services
    assert svc.storage is not None
    clinic = svc.directory.by_id("riverside-physio")
    assert clinic is not None
    for key in ("clinics/spree-hausarzt/a.wav", "other/a.wav", "clinics/riverside-physio/../x"):
        with pytest.raises(RegionViolation):
            svc.storage.put(clinic, key, b"x", category="recording", retention_until=UNTIL)


def test_a_regions_client_cannot_name_another_regions_bucket(
    stored_services: Services, aws_env: str
) -> None:
    svc = stored_services
    assert svc.storage is not None
    uk_client = svc.storage.client("uk")
    with pytest.raises(RegionViolation, match="may only use bucket"):
        uk_client.put_object(Bucket=svc.config.regions["eu"].bucket, Key="clinics/x", Body=b"x")
    assert all_objects(aws_env, svc.config)["eu"] == []


def test_delete_removes_every_version_in_a_versioned_bucket(
    stored_services: Services, aws_env: str
) -> None:
    svc = stored_services
    assert svc.storage is not None
    clinic = svc.directory.by_id("hudson-family")
    assert clinic is not None
    bucket = svc.config.regions["us"].bucket
    client = s3(aws_env)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    key = f"{subject_prefix(clinic.id, '+12125550111', 'salt')}voicemails/REx.wav"
    for body in (b"one", b"two"):
        svc.storage.put(clinic, key, body, category="voicemail", retention_until=UNTIL)
    assert svc.storage.delete(clinic, key) == 2
    versions = client.list_object_versions(Bucket=bucket, Prefix=key)
    assert versions.get("Versions", []) == [] and versions.get("DeleteMarkers", []) == []


def test_subject_prefix_holds_a_keyed_hash_never_the_number() -> None:
    prefix = subject_prefix("riverside-physio", "+447700900123", "salt")
    assert prefix.startswith("clinics/riverside-physio/subjects/")
    assert "447700900123" not in prefix
    assert subject_prefix("riverside-physio", "anonymous", "salt").endswith("/anonymous/")


def test_storage_init_creates_each_bucket_in_its_region_and_is_idempotent(
    aws_env: str, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    for region in data["regions"].values():
        region["bucket"] = f"{region['bucket']}-{suffix}"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    env = cli_env(
        CALLGATEWAY_CONFIG=str(path),
        AWS_ENDPOINT_URL=aws_env,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )
    first = run_cli(["storage", "init"], env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("(created)") == 5
    second = run_cli(["storage", "init"], env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("(present)") == 5
    for region in data["regions"].values():
        where = s3(aws_env).get_bucket_location(Bucket=region["bucket"])["LocationConstraint"]
        assert (where or "us-east-1") == region["aws_region"]
