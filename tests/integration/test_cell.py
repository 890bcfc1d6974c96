"""A production cell (`CALLGATEWAY_CELL=uk`) holds one region's clinics and touches only
that region's bucket: it refuses, at start-up, a config with clinics of other regions."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml

from callgateway.app import create_app
from callgateway.config import ConfigError
from callgateway.wiring import bootstrap
from tests.support.cli import cli_env, run_cli
from tests.support.regions import s3
from tests.support.settings import EXAMPLE_CONFIG, make_settings

pytest_plugins = ["tests.support.region_fixtures"]


def uk_only_config(path: Path, suffix: str) -> Path:
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data["clinics"] = [c for c in data["clinics"] if c["region"] == "uk"]
    for region in data["regions"].values():
        region["bucket"] = f"{region['bucket']}-{suffix}"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_app_factory_refuses_other_regions_clinics_in_a_uk_cell(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    monkeypatch.setenv("CALLGATEWAY_CELL", "uk")
    monkeypatch.setenv("CALLGATEWAY_CONFIG", str(EXAMPLE_CONFIG))
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    with pytest.raises(ConfigError, match=r"clinics\[1\]\.region: .*'eu'.*'uk'"):
        create_app()


def test_serve_in_a_uk_cell_stops_with_one_line_naming_the_clinic(tmp_path: Path) -> None:
    result = run_cli(["serve", "--port", "1"], cli_env(CALLGATEWAY_CELL="uk"))
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: clinics[1].region") and "spree-hausarzt" in line


def test_a_uk_cell_wires_only_the_uk_bucket(
    tmp_path: Path, aws_env: str, sqlite_url: str, redis_url: str
) -> None:
    suffix = uuid.uuid4().hex[:8]
    path = uk_only_config(tmp_path / "uk.yaml", suffix)
    services = bootstrap(make_settings(sqlite_url, redis_url, config_path=path, cell="uk"))
    assert [c.region for c in services.directory.all()] == ["uk"]
    assert services.storage is not None
    assert services.storage.region_codes(services.settings.cell) == ["uk"]

    env = cli_env(
        CALLGATEWAY_CONFIG=str(path),
        CALLGATEWAY_CELL="uk",
        AWS_ENDPOINT_URL=aws_env,
        DATABASE_URL=sqlite_url,
    )
    result = run_cli(["storage", "init"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"uk: bucket callgw-uk-{suffix} in eu-west-2 (created)"]
    names = {b["Name"] for b in s3(aws_env).list_buckets()["Buckets"]}
    assert f"callgw-uk-{suffix}" in names
    assert not any(n.endswith(suffix) and not n.startswith("callgw-uk") for n in names)
    services.db.dispose()
