"""The local services really start, answer, stop and come back; and the `make dev` driver."""

from __future__ import annotations

import json
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest
import redis
import sqlalchemy as sa

from devtools.services import Service, ServiceError, start_redis
from tests.support.services import restart_service, service_stopped, stop_service

REPO = Path(__file__).resolve().parents[2]
AWS_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


@pytest.fixture(autouse=True)
def _devtools_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """devtools is not installed (not in the wheel): a driver subprocess, which runs in a
    temporary directory, imports it from this checkout."""
    paths = [str(REPO), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))


def _redis(service: Service) -> redis.Redis:
    return redis.Redis.from_url(service.url, socket_timeout=2, socket_connect_timeout=2)


def _s3(service: Service, region: str) -> object:
    return boto3.client(
        "s3",
        region_name=region,
        endpoint_url=service.url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def _select_one(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("select 1")).scalar_one())
    finally:
        engine.dispose()


def test_redis_set_get(redis_server: Service) -> None:
    client = _redis(redis_server)
    client.set("devservices:probe", "hello")
    assert client.get("devservices:probe") == b"hello"


def test_postgres_select_one(postgres_server: Service) -> None:
    assert postgres_server.url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    assert postgres_server.url.endswith("/callgateway")
    assert _select_one(postgres_server.url) == 1


def test_postgres_runs_as_postgres_user_not_root(postgres_server: Service) -> None:
    assert postgres_server.pid is not None
    owner = pwd.getpwuid(os.stat(f"/proc/{postgres_server.pid}").st_uid).pw_name
    assert owner != "root"
    if os.geteuid() == 0:
        assert owner == "postgres"
    engine = sa.create_engine(postgres_server.url)
    with engine.connect() as conn:
        data_dir = conn.execute(sa.text("show data_directory")).scalar_one()
    engine.dispose()
    assert pwd.getpwuid(os.stat(data_dir).st_uid).pw_name == owner


def test_fresh_postgres_url_is_a_new_empty_database(
    fresh_postgres_url: str, postgres_server: Service
) -> None:
    assert fresh_postgres_url != postgres_server.url
    engine = sa.create_engine(fresh_postgres_url)
    with engine.connect() as conn:
        tables = conn.execute(
            sa.text("select count(*) from information_schema.tables where table_schema='public'")
        ).scalar_one()
    engine.dispose()
    assert tables == 0


def test_s3_bucket_put_get(s3_server: Service) -> None:
    s3 = _s3(s3_server, "eu-west-2")
    bucket = f"devservices-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
    s3.put_object(Bucket=bucket, Key="clinics/x/hello.txt", Body=b"hello")
    body = s3.get_object(Bucket=bucket, Key="clinics/x/hello.txt")["Body"].read()
    assert body == b"hello"
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "eu-west-2"


def test_redis_stop_and_restart_on_the_same_port(redis_server: Service) -> None:
    port = redis_server.port
    stop_service(redis_server)
    assert not redis_server.running
    with pytest.raises(redis.ConnectionError):
        _redis(redis_server).ping()
    restart_service(redis_server)
    assert redis_server.port == port
    assert _redis(redis_server).ping()


def test_service_stopped_brings_postgres_back(postgres_server: Service) -> None:
    with service_stopped(postgres_server), pytest.raises(sa.exc.OperationalError):
        _select_one(postgres_server.url)
    assert _select_one(postgres_server.url) == 1


def test_a_service_that_cannot_start_names_itself_and_shows_its_log(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServiceError) as failure:
            start_redis(port, tmp_path, timeout=10)
    message = str(failure.value)
    assert message.startswith(f"redis on port {port} ")
    assert "already in use" in message  # the tail of redis's own log


# --- the `make dev` driver, with services given through the environment -----------------


def _driver_env(tmp_path: Path, redis_url: str, s3_url: str) -> dict[str, str]:
    config = tmp_path / "config.yaml"
    config.write_text(
        "regions:\n"
        "  uk: {aws_region: eu-west-2, bucket: drv-uk-" + tmp_path.name[-8:].lower() + "}\n"
        "  us: {aws_region: us-east-1, bucket: drv-us-" + tmp_path.name[-8:].lower() + "}\n"
        "clinics: []\n"
    )
    return {
        **os.environ,
        **AWS_ENV,
        "REDIS_URL": redis_url,
        "AWS_ENDPOINT_URL": s3_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'dev.db'}",
        "CALLGATEWAY_CONFIG": str(config),
    }


def _driver(*cmd: str) -> list[str]:
    return [sys.executable, "-m", "devtools.services", "run", "--", *cmd]


def test_run_uses_given_services_migrates_creates_buckets_and_runs_cmd(
    tmp_path: Path, redis_server: Service, s3_server: Service
) -> None:
    env = _driver_env(tmp_path, redis_server.url, s3_server.url)
    show = "import os; print('CMD', os.environ['REDIS_URL'], os.environ['AWS_ENDPOINT_URL'])"
    done = subprocess.run(
        _driver(sys.executable, "-c", show),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"redis: using REDIS_URL {redis_server.url}" in done.stdout
    assert f"s3: using AWS_ENDPOINT_URL {s3_server.url}" in done.stdout
    assert f"CMD {redis_server.url} {s3_server.url}" in done.stdout
    assert "started" not in done.stdout.replace("rq worker started", "")
    buckets = {b["Name"] for b in _s3(s3_server, "us-east-1").list_buckets()["Buckets"]}
    suffix = tmp_path.name[-8:].lower()
    assert {f"drv-uk-{suffix}", f"drv-us-{suffix}"} <= buckets
    tables = sa.inspect(sa.create_engine(env["DATABASE_URL"])).get_table_names()
    assert "alembic_version" in tables
    assert _redis(redis_server).ping()  # given services are left running


def test_run_fails_in_one_line_when_redis_url_is_unreachable(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]  # bound, never listening: connection refused
        env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{dead}/0"}
        done = subprocess.run(
            _driver("true"), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        f"devservices: REDIS_URL=redis://127.0.0.1:{dead}/0 is not reachable"
    )


def wait_for_child(parent: int, argv: list[str], timeout: float = 30.0) -> int:
    """The pid of `parent`'s child running `argv`, once it has exec'd (read from /proc)."""
    wanted = ("\0".join(argv) + "\0").encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                ppid = int(proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1])
                if ppid == parent and proc.joinpath("cmdline").read_bytes() == wanted:
                    return int(proc.name)
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile, or not ours to read
        time.sleep(0.05)
    raise AssertionError(f"no child {argv} of pid {parent} within {timeout}s")


def test_run_stops_cmd_and_worker_on_sigterm(
    tmp_path: Path, redis_server: Service, s3_server: Service
) -> None:
    env = _driver_env(tmp_path, redis_server.url, s3_server.url)
    driver = subprocess.Popen(
        _driver("sleep", "60"), env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    worker_pid = None
    assert driver.stdout is not None
    for line in driver.stdout:
        found = re.search(r"rq worker started \(pid (\d+)", line)
        if found:
            worker_pid = int(found.group(1))
            break
    assert worker_pid is not None
    wait_for_child(driver.pid, ["sleep", "60"])  # the driver has reached the foreground command
    started = time.monotonic()
    driver.send_signal(signal.SIGTERM)
    assert driver.wait(timeout=30) == 128 + signal.SIGTERM
    assert time.monotonic() - started < 25
    assert not Path(f"/proc/{worker_pid}").exists()
    assert _redis(redis_server).ping()  # not ours to stop


def test_run_serves_the_conversation_relay_beside_the_gateway_and_stops_it(
    tmp_path: Path, redis_server: Service, s3_server: Service
) -> None:
    env = _driver_env(tmp_path, redis_server.url, s3_server.url)
    env.pop("PUBLIC_BASE_URL", None)
    env.pop("RELAY_PUBLIC_URL", None)
    show = (
        "import os, time; print('CMD', os.environ['RELAY_PUBLIC_URL'], flush=True); time.sleep(60)"
    )
    driver = subprocess.Popen(
        _driver(sys.executable, "-c", show),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert driver.stdout is not None
    relay = None
    for line in driver.stdout:
        relay = relay or re.search(
            r"relay: ConversationRelay on ws://127.0.0.1:(\d+) \(pid (\d+)", line
        )
        if line.startswith("CMD"):
            # The command (the web process in `make dev`) names the relay's own address.
            assert relay is not None and line.split()[1] == f"ws://127.0.0.1:{relay.group(1)}"
            break
    assert relay is not None
    port, pid = int(relay.group(1)), int(relay.group(2))
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                assert json.load(r) == {"status": "ok"}
                break
        except OSError:
            assert time.monotonic() < deadline, "the relay did not answer"
            time.sleep(0.2)
    driver.send_signal(signal.SIGTERM)
    assert driver.wait(timeout=30) == 128 + signal.SIGTERM
    assert not Path(f"/proc/{pid}").exists()
