"""How the terminal phone finds the dev fake of Twilio's REST API, and the audio it uploads.
The fake itself, on a loopback port, is tests/integration/test_devtwilio.py."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import pytest

from callgateway.cli.terminal_phone import dev_twilio_base, silent_wav


def test_the_terminal_phone_uses_only_a_loopback_fake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert dev_twilio_base("http://127.0.0.1:5056/") == "http://127.0.0.1:5056"
    assert dev_twilio_base("https://api.twilio.com") is None
    (tmp_path / "var" / "dev").mkdir(parents=True)
    (tmp_path / "var" / "dev" / "devtwilio.url").write_text("http://127.0.0.1:5056\n")
    assert dev_twilio_base("https://api.twilio.com") == "http://127.0.0.1:5056"
    (tmp_path / "var" / "dev" / "devtwilio.url").write_text("https://api.twilio.com\n")
    assert dev_twilio_base("https://api.twilio.com") is None


def test_silent_wav_is_a_valid_wav() -> None:
    with wave.open(io.BytesIO(silent_wav(3))) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getnframes()) == (1, 8000, 24000)
