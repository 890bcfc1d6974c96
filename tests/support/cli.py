"""Running the `callgateway` command as an operator would: this venv's entry point, a clean
environment (no TWILIO_/CALLGATEWAY_ variables leaking in from the shell), the example config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.settings import EXAMPLE_CONFIG, ROOT
from tests.support.twilio import TOKEN

CALLGATEWAY = str(Path(sys.executable).parent / "callgateway")


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "CALLGATEWAY_"))}
    env.update(
        CALLGATEWAY_ENV="test",
        CALLGATEWAY_CONFIG=str(EXAMPLE_CONFIG),
        TWILIO_AUTH_TOKEN=TOKEN,
    )
    env.update(extra)
    return env


def run_cli(
    args: list[str], env: dict[str, str], stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CALLGATEWAY, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=ROOT,
    )
