"""A check-in call nobody answers, end to end: the CLI adds the schedule, a real
`rq worker --with-scheduler` process against real Redis places the call through Twilio's
REST API (a local HTTP stub recording every request), Twilio's no-answer status callback
reaches the gateway signed, and the worker alerts the receivers: an SMS and a call each,
except the one who texted STOP, who gets nothing.

The web side runs in-process (the Flask app on the same database, Redis and base URL);
the worker and the CLI are separate processes, as in production."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text

from callgateway.app import create_app
from callgateway.config import Config
from callgateway.wiring import bootstrap
from devtools.services import Service, free_port
from tests.support.cli import cli_env, run_cli
from tests.support.settings import BASE_URL, ROOT, make_settings
from tests.support.twilio import ACCOUNT_SID, CLINIC_UK, PATIENT_2, TwilioSim

CARER = "+447700900731"
OPTED_OUT_RECEIVER = "+447700900732"
RQ = str(Path(sys.executable).parent / "rq")
WORKER = [RQ, "worker", "--worker-class", "callgateway.jobs.worker.Worker"]  # the Procfile's


@dataclass
class StubTwilio:
    """Twilio's REST API as far as the worker uses it: every POST recorded, a sid back."""

    url: str = ""
    requests: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def posted(self, resource: str, to: str) -> list[dict[str, list[str]]]:
        with self.lock:
            return [f for path, f in self.requests if path.endswith(resource) and f["To"] == [to]]


@pytest.fixture
def stub_twilio() -> Iterator[StubTwilio]:
    stub = StubTwilio()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            with stub.lock:
                stub.requests.append((self.path, form))
            prefix = "CA" if self.path.endswith("/Calls.json") else "SM"
            body = json.dumps({"sid": prefix + secrets.token_hex(16), "status": "queued"})
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    stub.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield stub
    server.shutdown()


@dataclass
class Deployment:
    env: dict[str, str]
    database_url: str
    gateway: TwilioSim
    worker_log: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(list(args), self.env)


@pytest.fixture
def deployment(
    sqlite_url: str,
    redis_url: str,
    s3_server: Service,
    example_config: Config,
    stub_twilio: StubTwilio,
    tmp_path: Path,
) -> Iterator[Deployment]:
    env = cli_env(
        DATABASE_URL=sqlite_url,
        REDIS_URL=redis_url,
        PUBLIC_BASE_URL=BASE_URL,
        TWILIO_API_BASE=stub_twilio.url,
        AWS_ENDPOINT_URL=s3_server.url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )
    web = bootstrap(make_settings(sqlite_url, redis_url), example_config)
    gateway = TwilioSim(create_app({"TESTING": True}, services=web).test_client(), BASE_URL)
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [*WORKER, "--with-scheduler", "-u", redis_url, "default"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    yield Deployment(env, sqlite_url, gateway, log_path)
    proc.terminate()
    proc.wait(timeout=15)
    web.db.dispose()
    web.redis.close()


def wait_for(what: str, check: Callable[[], Any], timeout: float = 40.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def alerts_settled(database_url: str, phone: str) -> bool:
    """One alert row per channel for `phone`, none still sending or given back for a retry
    (only those are ever sent again: callgateway/outbound/alerts.py)."""
    engine = create_engine(database_url)
    with engine.connect() as conn:
        statuses = conn.execute(
            text("SELECT channel, status FROM checkin_alerts WHERE phone = :phone"),
            {"phone": phone},
        ).all()
    engine.dispose()
    channels = {channel for channel, _ in statuses}
    unsettled = {status for _, status in statuses} & {"sending", "retry"}
    return channels == {"sms", "call"} and not unsettled


def test_unanswered_check_in_alerts_the_receivers_through_a_real_worker(
    deployment: Deployment, stub_twilio: StubTwilio
) -> None:
    gw = deployment
    assert gw.gateway.sms("STOP", from_=OPTED_OUT_RECEIVER).status_code == 200
    added = gw.cli(
        "checkins", "add", "--clinic", "riverside-physio", "--phone", PATIENT_2,
        "--days", "daily", "--time", "09:00", "--message", "Good morning, this is Riverside.",
        "--alert", CARER, "--alert", OPTED_OUT_RECEIVER, "--name", "Mr Jones", "--retries", "0",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    schedule_id = json.loads(added.stdout)["id"]
    now = gw.cli("checkins", "call-now", "--clinic", "riverside-physio", "--id", str(schedule_id))
    assert now.returncode == 0, now.stderr
    at = datetime.fromisoformat(json.loads(now.stdout)["occurrence"])
    local_at = at.astimezone(ZoneInfo("Europe/London")).strftime("%H:%M")

    (call,) = wait_for("the check-in call", lambda: stub_twilio.posted("Calls.json", PATIENT_2))
    assert call["From"] == [CLINIC_UK]
    assert call["MachineDetection"] == ["Enable"]
    status_url = call["StatusCallback"][0]
    assert status_url.startswith(BASE_URL + "/twilio/outbound/call/status?attempt=")

    # Twilio: nobody picked up. The signed callback goes to the URL the worker gave it.
    call_sid = "CA" + secrets.token_hex(16)
    for call_status in ("initiated", "ringing", "no-answer"):
        response = gw.gateway.post(
            status_url,
            {
                "AccountSid": ACCOUNT_SID,
                "CallSid": call_sid,
                "CallStatus": call_status,
                "CallDuration": "0",
                "Direction": "outbound-api",
                "From": CLINIC_UK,
                "To": PATIENT_2,
            },
        )
        assert response.status_code == 200

    (sms,) = wait_for("the alert SMS", lambda: stub_twilio.posted("Messages.json", CARER))
    assert sms["From"] == [CLINIC_UK]
    assert sms["Body"] == [
        "Riverside Physiotherapy check-in alert: Mr Jones did not answer today's "
        f"{local_at} check-in call (1 call). Please check on them."
    ]
    assert sms["StatusCallback"] == [BASE_URL + "/twilio/outbound/sms/status"]
    (alert_call,) = wait_for("the alert call", lambda: stub_twilio.posted("Calls.json", CARER))
    assert alert_call["Url"][0].startswith(BASE_URL + "/twilio/outbound/alert/call?alert=")

    # Both of the opted-out receiver's alerts (SMS and call) have reached a final state, so
    # nothing more can go to them: an empty record now means nothing was sent.
    wait_for(
        "the opted-out receiver's alerts to settle",
        lambda: alerts_settled(gw.database_url, OPTED_OUT_RECEIVER),
    )
    assert stub_twilio.posted("Messages.json", OPTED_OUT_RECEIVER) == []
    assert stub_twilio.posted("Calls.json", OPTED_OUT_RECEIVER) == []

    engine = create_engine(gw.database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT purpose, direction, cli FROM calls WHERE direction = 'outbound'")
        ).all()
        skipped = conn.execute(
            text("SELECT phone FROM checkin_alerts WHERE status = 'skipped'")
        ).all()
    engine.dispose()
    assert sorted(tuple(r) for r in rows) == [
        ("alert", "outbound", CARER),
        ("checkin", "outbound", PATIENT_2),
    ]
    assert {r[0] for r in skipped} == {OPTED_OUT_RECEIVER}
    worker_log = gw.worker_log.read_text()
    for number in (PATIENT_2, CARER, OPTED_OUT_RECEIVER):
        assert number not in worker_log
