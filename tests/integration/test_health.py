"""/healthz says the process serves; /readyz says whether it can serve a caller end to end:
database, Redis, each region's bucket, and the call journal's backlog."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from flask import Flask

from callgateway.app import OPS_APP, create_app
from callgateway.calls.journal import STREAM
from callgateway.config import Config
from callgateway.ops.blueprint import READINESS
from callgateway.ops.health import Readiness
from callgateway.wiring import Services
from tests.support.regions import create_buckets, s3

pytest_plugins = ["tests.support.region_fixtures"]
REGIONS = ["bucket:au", "bucket:ca", "bucket:eu", "bucket:uk", "bucket:us"]


def readiness(app: Flask) -> Readiness:
    return app.extensions[OPS_APP].extensions[READINESS]


def test_healthz_answers_ok_without_touching_anything(services: Services) -> None:
    response = create_app({"TESTING": True}, services=services).test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert "Set-Cookie" not in response.headers  # no console session for a probe


def test_readyz_is_200_naming_every_check_when_all_pass(stored_services: Services) -> None:
    client = create_app({"TESTING": True}, services=stored_services).test_client()
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status"] == "ready" and body["failing"] == []
    assert sorted(body["checks"]) == sorted(["database", "redis", "journal", *REGIONS])
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["journal"] == {"ok": True, "pending": 0, "max": 10_000}
    assert response.headers["Cache-Control"] == "no-store"


def test_a_missing_bucket_makes_the_process_unready_naming_the_region(
    stored_services: Services, aws_env: str
) -> None:
    eu = stored_services.config.regions["eu"]
    s3(aws_env, eu.aws_region).delete_bucket(Bucket=eu.bucket)
    response = create_app({"TESTING": True}, services=stored_services).test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["failing"] == ["bucket:eu"]
    assert body["checks"]["bucket:eu"] == {"ok": False, "error": "404"}


def test_a_regional_cell_checks_only_its_own_bucket(
    make_services: Callable[..., Services], sqlite_url: str, region_config: Config, aws_env: str
) -> None:
    svc = make_services(sqlite_url, region_config, aws_endpoint_url=aws_env)
    create_buckets(svc)
    cell = make_services(
        sqlite_url, region_config.model_copy(), aws_endpoint_url=aws_env, cell="uk"
    )
    body = create_app({"TESTING": True}, services=cell).test_client().get("/readyz").get_json()
    assert [name for name in body["checks"] if name.startswith("bucket:")] == ["bucket:uk"]


def test_the_bucket_probe_is_cached_for_a_few_seconds(
    stored_services: Services, aws_env: str
) -> None:
    app = create_app({"TESTING": True}, services=stored_services)
    client = app.test_client()
    now = [1000.0]
    readiness(app).clock = lambda: now[0]
    assert client.get("/readyz").status_code == 200
    uk = stored_services.config.regions["uk"]
    s3(aws_env, uk.aws_region).delete_bucket(Bucket=uk.bucket)
    # Within the cache's lifetime a poll costs no S3 request, and so still says ready.
    now[0] += 4.0
    assert client.get("/readyz").status_code == 200
    now[0] += 1.5
    response = client.get("/readyz")
    assert response.status_code == 503 and response.get_json()["failing"] == ["bucket:uk"]


def test_a_poll_with_everything_up_is_cheap(stored_services: Services) -> None:
    client = create_app({"TESTING": True}, services=stored_services).test_client()
    client.get("/readyz")  # the first poll probes the buckets; the next ones use the cache
    started = time.perf_counter()
    for _ in range(20):
        assert client.get("/readyz").status_code == 200
    per_poll_ms = (time.perf_counter() - started) / 20 * 1000
    assert per_poll_ms < 50, per_poll_ms


def test_a_journal_backlog_over_the_bound_makes_the_process_unready(
    stored_services: Services,
) -> None:
    app = create_app({"TESTING": True}, services=stored_services)
    readiness(app).journal_max = 3
    for n in range(4):  # entries no drainer applies (the database is not reached here)
        stored_services.redis.xadd(STREAM, {"kind": "note", "data": json.dumps({"n": n})})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["failing"] == ["journal"]
    assert body["checks"]["journal"] == {"ok": False, "pending": 4, "max": 3}
