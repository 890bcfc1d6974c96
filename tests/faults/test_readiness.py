"""A real service stopped: /readyz says 503 naming it (and nothing personal or secret),
/healthz stays 200, and /readyz is ready again once the service is back."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient

from callgateway.app import OPS_APP, create_app
from callgateway.config import Config
from callgateway.ops.blueprint import READINESS
from callgateway.wiring import Services
from devtools.services import Service
from tests.support.regions import create_buckets
from tests.support.services import service_stopped

pytest_plugins = ["tests.support.region_fixtures"]


def client_for(svc: Services) -> FlaskClient:
    return create_app({"TESTING": True}, services=svc).test_client()


def assert_unready_naming(client: FlaskClient, failing: list[str], secret: str) -> dict:
    health = client.get("/healthz")
    assert health.status_code == 200 and health.get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 503
    body = ready.get_json()
    assert body["status"] == "unavailable" and body["failing"] == failing
    assert secret not in ready.get_data(as_text=True)  # no URL, so no password
    return body


def test_redis_stopped_makes_readyz_503_naming_redis_while_healthz_stays_200(
    stored_services: Services, redis_server: Service
) -> None:
    client = client_for(stored_services)
    assert client.get("/readyz").status_code == 200
    with service_stopped(redis_server):
        body = assert_unready_naming(client, ["redis"], str(redis_server.port))
        assert body["checks"]["redis"] == {"ok": False, "error": "ConnectionError"}
        assert body["checks"]["database"] == {"ok": True}
        assert "journal" not in body["checks"]  # it lives in Redis: Redis is the failure
    assert client.get("/readyz").status_code == 200


def test_postgresql_stopped_makes_readyz_503_naming_the_database(
    make_services: Callable[..., Services],
    pg_url: str,
    region_config: Config,
    aws_env: str,
    postgres_server: Service,
) -> None:
    svc = make_services(pg_url, region_config, aws_endpoint_url=aws_env)
    create_buckets(svc)
    client = client_for(svc)
    assert client.get("/readyz").status_code == 200
    with service_stopped(postgres_server):
        body = assert_unready_naming(client, ["database"], "postgresql://")
        assert body["checks"]["database"] == {"ok": False, "error": "OperationalError"}
        assert body["checks"]["redis"] == {"ok": True}
    assert client.get("/readyz").status_code == 200


def test_s3_stopped_makes_readyz_503_naming_every_regions_bucket(
    stored_services: Services, s3_server: Service
) -> None:
    app = create_app({"TESTING": True}, services=stored_services)
    client = app.test_client()
    with service_stopped(s3_server):
        body = assert_unready_naming(
            client,
            sorted(f"bucket:{code}" for code in stored_services.config.regions),
            str(s3_server.port),
        )
        assert body["checks"]["bucket:uk"] == {"ok": False, "error": "EndpointConnectionError"}
    # moto comes back empty: the buckets are made again, then it is ready once the
    # cached answer (a few seconds) has expired.
    create_buckets(stored_services)
    app.extensions[OPS_APP].extensions[READINESS].bucket_ttl = 0
    assert client.get("/readyz").status_code == 200
