"""infra/systemd: one unit per Procfile line, running the Procfile's command, and each
accepted by `systemd-analyze verify` (its binaries pointed at this environment's)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.support.settings import ROOT

UNITS = ROOT / "infra" / "systemd"
VENV = "/srv/callgateway/venv"


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def exec_lines(unit: str) -> list[str]:
    text = re.sub(r"\\\n\s*", "", unit)  # continuation lines joined
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith("ExecStart=")]


def words(command: str) -> list[str]:
    """The command's words, without paths, shells or variables: what must match."""
    out: list[str] = []
    for word in shlex.split(command.replace("&&", " ")):
        if " " in word:  # the script of `sh -c '...'`
            out.extend(words(word))
            continue
        word = word.rsplit("/", 1)[-1] if word.startswith("/") else word
        if word in ("sh", "-c", "exec") or "$" in word or word.startswith("0.0.0.0"):
            continue
        out.append(word)
    return out


def test_every_procfile_line_has_a_unit_running_its_command() -> None:
    for name, command in procfile().items():
        unit = (UNITS / f"callgateway-{name}.service").read_text()
        ran = " ".join(words(" ".join(exec_lines(unit))))
        for word in words(command):
            if word.startswith("--bind"):
                continue  # the unit binds to loopback behind the reverse proxy
            assert word in ran, f"{name}: {word!r} of the Procfile is not in its unit"


def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    venv = str(Path(sys.executable).parent.parent)  # this environment's, for the binaries
    for path in sorted(UNITS.glob("*.service")):
        (tmp_path / path.name).write_text(path.read_text().replace(VENV, venv))
    units = sorted(str(p) for p in tmp_path.glob("*.service"))
    assert len(units) == len(procfile())
    result = subprocess.run(
        ["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "ignoring" not in result.stderr and "Unknown" not in result.stderr, result.stderr
