"""The relay as it runs in production: `callgateway serve` and `callgateway relay` as their own
processes, and `callgateway call` (a third process) playing Twilio against both, over a real
WebSocket. A clinic with `relay:` books over it; a line starting with `!` interrupts; the
logs of both processes hold no number and no speech."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from callgateway.db import migrate
from callgateway.db.models import Call, CallTurn
from devtools.services import Service, free_port
from tests.support.cli import CALLGATEWAY, cli_env, run_cli
from tests.support.live_gateway import serving
from tests.support.settings import EXAMPLE_CONFIG, ROOT

LAKESHORE = "+14165550123"
CALLER = "+447700900789"
BOOK = "I'd like to book a cleaning next Tuesday afternoon"


@dataclass
class Processes:
    env: dict[str, str]
    database_url: str
    logs: list[Path]


@pytest.fixture(scope="module")
def processes(
    tmp_path_factory: pytest.TempPathFactory, redis_server: Service, s3_server: Service
) -> Iterator[Processes]:
    workdir = tmp_path_factory.mktemp("relay-e2e")
    config = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    for clinic in config["clinics"]:
        if clinic["id"] == "lakeshore-dental":
            clinic["relay"] = {"enabled": True, "interruptible": "any"}
    config_path = workdir / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    database_url = f"sqlite:///{workdir / 'gateway.db'}"
    migrate.upgrade(database_url)
    port = free_port()
    env = cli_env(
        CALLGATEWAY_CONFIG=str(config_path),
        DATABASE_URL=database_url,
        REDIS_URL=redis_server.url.rsplit("/", 1)[0] + "/7",
        AWS_ENDPOINT_URL=s3_server.url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        TWILIO_API_BASE="http://127.0.0.1:9",  # nothing reaches Twilio
        RELAY_PUBLIC_URL=f"ws://127.0.0.1:{port}",
    )
    relay_log = workdir / "relay.log"
    with relay_log.open("a") as log:
        relay = subprocess.Popen(
            [CALLGATEWAY, "relay", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if relay.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("relay did not start:\n" + relay_log.read_text()[-2000:])
            time.sleep(0.2)
        web_log = workdir / "web.log"
        with serving(env, web_log) as base_url:
            yield Processes(
                {**env, "PUBLIC_BASE_URL": base_url}, database_url, [web_log, relay_log]
            )
    finally:
        relay.terminate()
        try:
            relay.wait(timeout=15)
        except subprocess.TimeoutExpired:
            relay.kill()


def rows(database_url: str, call_sid: str) -> tuple[Call, list[tuple[str, str]]]:
    engine = create_engine(database_url)
    with Session(engine) as s:
        call = s.scalars(select(Call).where(Call.call_sid == call_sid)).one()
        query = select(CallTurn).where(CallTurn.call_sid == call_sid).order_by(CallTurn.seq)
        lines = [(t.role, t.text) for t in s.scalars(query)]
    engine.dispose()
    return call, lines


def last_call_sid(database_url: str) -> str:
    engine = create_engine(database_url)
    with Session(engine) as s:
        sid = s.scalars(select(Call.call_sid).order_by(Call.id.desc()).limit(1)).one()
    engine.dispose()
    return sid


def test_a_caller_books_over_the_relay_interrupts_and_the_transcript_keeps_what_was_heard(
    processes: Processes,
) -> None:
    stdin = f"{BOOK}\n!\nyes please\nno thanks\n"
    result = run_cli(["call", "--to", LAKESHORE, "--from", CALLER], processes.env, stdin)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Thank you for calling Lakeshore Dental." in out
    assert "How can I help you today?" in out  # the relay's welcome greeting
    assert "[you speak over the agent" in out
    assert "Your cleaning is booked for" in out and out.rstrip().endswith("[call ended]")
    # Tokens were printed as they came: a sentence a line.
    assert "\nShall I book that?\n" in out
    call, lines = rows(processes.database_url, last_call_sid(processes.database_url))
    assert (call.handled_by, call.outcome, call.status) == ("ai", "booked", "completed")
    offers = [text for role, text in lines if role == "agent" and "The first cleaning" in text]
    assert offers and "Shall I book that?" not in offers[0]  # only what was heard
    for log in processes.logs:
        text = log.read_text()
        assert CALLER not in text and CALLER[-10:] not in text, log
        assert BOOK not in text and "yes please" not in text, log


def test_a_call_to_a_relay_clinic_with_a_wrong_token_is_refused_in_one_line(
    processes: Processes,
) -> None:
    env = {**processes.env, "TWILIO_AUTH_TOKEN": "not-the-token-0000000000000000000"}
    result = run_cli(["call", "--to", LAKESHORE, "--from", CALLER], env, "hello\n")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "403" in result.stderr
