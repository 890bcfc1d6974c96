"""The regional cell's CloudFormation template passes cfn-lint (run as a subprocess). What
the template says is tests/unit/test_cell_template.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "cloudformation" / "cell.yaml"
CFN_LINT = str(Path(sys.executable).parent / "cfn-lint")


def test_cfn_lint_passes() -> None:
    done = subprocess.run([CFN_LINT, str(TEMPLATE)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
