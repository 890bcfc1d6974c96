"""A second terminal's `callgateway ...` finds the services `make dev` started."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from callgateway.cli.common import load_dev_env


@pytest.fixture
def dev_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    saved = dict(os.environ)
    for key in ("CALLGATEWAY_ENV", "AWS_ENDPOINT_URL", "REDIS_URL", "TWILIO_API_BASE"):
        os.environ.pop(key, None)
    (tmp_path / "var" / "dev").mkdir(parents=True)
    (tmp_path / "var" / "dev" / "env.json").write_text(
        json.dumps({"AWS_ENDPOINT_URL": "http://127.0.0.1:5055", "REDIS_URL": "redis://x/0"})
    )
    yield tmp_path
    # load_dev_env writes os.environ directly: put it back, or boto3 in later tests would
    # follow AWS_ENDPOINT_URL to a dev endpoint that isn't there.
    os.environ.clear()
    os.environ.update(saved)


def test_dev_commands_pick_up_make_devs_services(dev_dir: Path) -> None:
    load_dev_env()
    assert os.environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5055"


def test_variables_the_user_set_win(dev_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://mine:6379/2")
    load_dev_env()
    assert os.environ["REDIS_URL"] == "redis://mine:6379/2"


def test_production_never_reads_the_dev_file(
    dev_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLGATEWAY_ENV", "production")
    load_dev_env()
    assert "AWS_ENDPOINT_URL" not in os.environ
