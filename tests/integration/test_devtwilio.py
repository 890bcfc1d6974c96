"""The dev fake of Twilio's REST API, served on a loopback port and driven by the real REST
client. How the terminal phone finds it is tests/unit/test_devtwilio.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from callgateway.adapters.twilio_rest import NotFound, TwilioRest
from callgateway.cli.terminal_phone import silent_wav
from devtools.fake_twilio import make_server
from devtools.services import free_port

ACCOUNT = "AC" + "0" * 32
CALL = "CA" + "1" * 32


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[str]:
    server = make_server(free_port(), tmp_path / "requests.jsonl")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_recording_started_by_rest_is_served_once_uploaded_and_deleted_like_twilio(
    fake: str, tmp_path: Path
) -> None:
    rest = TwilioRest(ACCOUNT, "token", fake)
    started = rest.start_recording(CALL, "http://127.0.0.1:8000/twilio/voice/recording/status")
    sid = started["sid"]
    (listed,) = requests.get(f"{fake}/_dev/calls/{CALL}/recordings", timeout=5).json()
    assert listed["status_callback"].endswith("/recording/status")
    with pytest.raises(NotFound):  # no audio until the call ends
        rest.fetch_recording_media(sid)
    requests.put(f"{fake}/_dev/recordings/{sid}", data=silent_wav(2), timeout=5)
    assert rest.fetch_recording_media(sid) == silent_wav(2)
    assert rest.delete_recording(sid) is True
    assert rest.delete_recording(sid) is False  # 404: already gone
    with pytest.raises(NotFound):
        rest.fetch_recording_media(sid)


def test_messages_and_calls_are_answered_and_logged_with_numbers_masked(
    fake: str, tmp_path: Path
) -> None:
    rest = TwilioRest(ACCOUNT, "token", fake)
    assert rest.send_sms("+447700900123", "+442071234567", "Reminder")["sid"].startswith("SM")
    assert rest.create_call(To="+447700900123", From="+442071234567", Url="http://x")["sid"]
    log = (tmp_path / "requests.jsonl").read_text()
    assert "+447700900123" not in log and "+44******0123" in log and "Reminder" in log
