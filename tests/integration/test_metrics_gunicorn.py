"""Under gunicorn with two workers (`callgateway serve`, the Procfile's hooks), /metrics
sums every worker's counters: the webhooks all workers answered are all counted, in
whichever worker answers the scrape."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from callgateway.db import migrate
from devtools.services import Service
from tests.support.cli import cli_env
from tests.support.live_gateway import serving
from tests.support.twilio import ACCOUNT_SID, CLINIC_UK, PATIENT, TOKEN, sid, sign

CALLS = 12


def voice_webhook(base_url: str) -> requests.Response:
    params = {
        "AccountSid": ACCOUNT_SID,
        "CallSid": sid("CA"),
        "From": PATIENT,
        "To": CLINIC_UK,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
    }
    url = base_url + "/twilio/voice"
    return requests.post(
        url,
        data=urlencode(params),
        headers={
            "X-Twilio-Signature": sign(url, params, TOKEN),
            "Content-Type": "application/x-www-form-urlencoded",
            "Connection": "close",  # a new connection each time: any worker may take it
        },
        timeout=10,
    )


@pytest.mark.parametrize("own_folder", [True, False], ids=["configured-dir", "temporary-dir"])
def test_metrics_sum_the_counters_of_every_gunicorn_worker(
    tmp_path: Path, redis_server: Service, own_folder: bool
) -> None:
    database_url = f"sqlite:///{tmp_path / 'gateway.db'}"
    migrate.upgrade(database_url)
    folder = tmp_path / "prometheus"
    env = cli_env(
        DATABASE_URL=database_url,
        REDIS_URL=redis_server.url.rsplit("/", 1)[0] + "/6",
        CALLGATEWAY_JOURNAL="inline",
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if own_folder:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    with serving(env, tmp_path / "gateway.log", workers=2) as base_url:
        for _ in range(CALLS):
            assert voice_webhook(base_url).status_code == 200
        scraped = requests.get(base_url + "/metrics", timeout=10)  # from loopback: allowed
        assert scraped.status_code == 200
        writers = {p.stem.rsplit("_", 1)[-1] for p in folder.glob("histogram_*.db")}
    counted = {
        s.labels["status"]: s.value
        for family in text_string_to_metric_families(scraped.text)
        for s in family.samples
        if s.name == "callgateway_webhook_duration_seconds_count"
        and s.labels.get("route") == "/twilio/voice"
    }
    assert counted == {"200": CALLS}, (counted, writers)
    if own_folder:
        assert writers  # the workers wrote their counts to the operator's directory
