"""Where the config is when CALLGATEWAY_CONFIG is not set: the checkout's example, else (dev
and test only) the copy inside the installed package; production never falls back."""

from __future__ import annotations

from pathlib import Path

import pytest

from callgateway.config.settings import EXAMPLE_CONFIG, PACKAGED_EXAMPLE_CONFIG, Settings
from tests.support.settings import ROOT


def test_a_checkout_uses_its_own_example_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert Settings.from_env({}).config_path == EXAMPLE_CONFIG


def test_outside_a_checkout_dev_uses_the_packaged_copy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert Settings.from_env({}).config_path == PACKAGED_EXAMPLE_CONFIG
    assert PACKAGED_EXAMPLE_CONFIG.read_bytes() == (ROOT / EXAMPLE_CONFIG).read_bytes()


def test_production_never_falls_back_on_the_example_clinics(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {
        "CALLGATEWAY_ENV": "production",
        "TWILIO_AUTH_TOKEN": "t" * 32,
        "SECRET_KEY": "s" * 32,
        "CALLGATEWAY_SUBJECT_SALT": "n" * 32,
    }
    assert Settings.from_env(env).config_path == EXAMPLE_CONFIG  # not found: start-up fails
    assert Settings.from_env({**env, "CALLGATEWAY_CONFIG": "/etc/cg.yaml"}).config_path == Path(
        "/etc/cg.yaml"
    )
