"""The live gateway the e2e tests share (`callgateway serve` against real services).

When it stops, after the last test that used it whatever their order, its whole log is
scanned for every number and phrase any test fed it (tests/e2e/test_log_scan.py runs the
same scan mid-session, under a name SECURITY.md can cite).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from callgateway.db import migrate
from devtools.services import Service
from tests.support.cli import cli_env
from tests.support.live_gateway import (
    Gateway,
    assert_log_holds_no_number_or_speech,
    fake_twilio,
    serving,
)
from tests.support.twilio import CLINIC_UK, PATIENT, PATIENT_2

# Numbers the tests use without always naming them on a command line.
E2E_NUMBERS = (PATIENT, PATIENT_2, CLINIC_UK)


@pytest.fixture(scope="session")
def live_gateway(
    tmp_path_factory: pytest.TempPathFactory, redis_server: Service, s3_server: Service
) -> Iterator[Gateway]:
    workdir = tmp_path_factory.mktemp("gateway")
    database_url = f"sqlite:///{workdir / 'gateway.db'}"
    migrate.upgrade(database_url)
    log_path = workdir / "gateway.log"
    with fake_twilio(workdir / "twilio.log") as twilio_url:
        env = cli_env(
            DATABASE_URL=database_url,
            REDIS_URL=redis_server.url.rsplit("/", 1)[0] + "/5",
            AWS_ENDPOINT_URL=s3_server.url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            TWILIO_API_BASE=twilio_url,
        )
        with serving(env, log_path) as base_url:
            gateway = Gateway(
                base_url, {**env, "PUBLIC_BASE_URL": base_url}, database_url, log_path
            )
            yield gateway
    # The gateway has stopped, so its log is complete: a finding fails the session (as an
    # error at the teardown of the last test).
    assert_log_holds_no_number_or_speech(gateway, E2E_NUMBERS)
