"""A release an operator can install: the version comes from the git tag, the wheel holds
the licence and the example config, and the installed command finds that config without a
checkout. The wheel is built offline from a clone of the committed tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.version import Version

from tests.support.cli import run_cli
from tests.support.settings import EXAMPLE_CONFIG, ROOT

PIP = [sys.executable, "-m", "pip"]
OFFLINE = {"PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.test",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.test",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def scm_version(cwd: Path) -> str:
    return subprocess.run(
        [sys.executable, "-m", "setuptools_scm"],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(the wheel, the clone it was built from)."""
    base = tmp_path_factory.mktemp("release")
    clone = base / "clone"
    git(base, "clone", "--quiet", str(ROOT), str(clone))
    subprocess.run(
        [*PIP, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", "dist", "."],
        cwd=clone,
        env={**os.environ, **OFFLINE},
        check=True,
        capture_output=True,
        timeout=240,
    )
    (built,) = (clone / "dist").glob("callgateway-*.whl")
    yield built, clone
    shutil.rmtree(base, ignore_errors=True)


def test_the_version_is_the_git_tag_and_counts_commits_after_it(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    git(tmp_path, "init", "--quiet")
    git(tmp_path, "add", "pyproject.toml")
    git(tmp_path, "commit", "--quiet", "-m", "one")
    # No tag yet: a development build after the first release.
    assert scm_version(tmp_path).startswith("0.1.1.dev1+g")
    git(tmp_path, "tag", "v0.3.0")
    assert scm_version(tmp_path) == "0.3.0"
    (tmp_path / "CHANGES").write_text("more\n")
    git(tmp_path, "add", "CHANGES")
    git(tmp_path, "commit", "--quiet", "-m", "two")
    assert scm_version(tmp_path).startswith("0.3.1.dev1+g")


def test_callgateway_version_prints_the_installed_version() -> None:
    result = run_cli(["--version"], env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"callgateway, version {version('callgateway')}"
    Version(version("callgateway"))  # a valid PEP 440 version


def test_the_wheel_holds_the_licence_the_example_config_and_no_dev_tooling(
    wheel: tuple[Path, Path],
) -> None:
    built, clone = wheel
    names = zipfile.ZipFile(built).namelist()
    expected = scm_version(clone)
    assert built.name.startswith(f"callgateway-{expected}-")
    dist_info = f"callgateway-{expected}.dist-info"
    with zipfile.ZipFile(built) as zf:
        assert zf.read("callgateway/config/example.yaml") == EXAMPLE_CONFIG.read_bytes()
        licence = zf.read(f"{dist_info}/licenses/LICENSE").decode()
        metadata = zf.read(f"{dist_info}/METADATA").decode()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    assert f"Version: {expected}" in metadata and "License-Expression: Apache-2.0" in metadata
    assert not [n for n in names if n.startswith(("devtools/", "tests/", "bench/"))]
    for package in ("callgateway/", "webhooks/", "consent/", "recordings/"):
        assert any(n.startswith(package) for n in names), package


def test_installed_config_check_finds_the_shipped_example_config(
    wheel: tuple[Path, Path], tmp_path: Path
) -> None:
    built, clone = wheel
    target = tmp_path / "site"
    subprocess.run(
        [*PIP, "install", "--quiet", "--no-deps", "--target", str(target), str(built)],
        env={**os.environ, **OFFLINE},
        check=True,
        capture_output=True,
        timeout=120,
    )
    # The installed copy alone (no checkout, no editable finder: -S skips .pth files), its
    # dependencies from this environment, run where there is no config/ directory.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLGATEWAY_", "TWILIO_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(target), sysconfig.get_paths()["purelib"]])
    code = (
        "import sys, callgateway.cli as c; sys.argv[0] = 'callgateway'; "
        "print(c.__file__, file=sys.stderr); c.main()"
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    result = subprocess.run(
        [sys.executable, "-S", "-c", code, "config", "check"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith(str(target))  # the wheel's copy ran, not the checkout
    lines = result.stdout.splitlines()
    assert len(lines) == 5 and lines[0].startswith("riverside-physio: Riverside Physiotherapy")
    version_line = subprocess.run(
        [sys.executable, "-S", "-c", code, "--version"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    assert version_line == f"callgateway, version {scm_version(clone)}"
