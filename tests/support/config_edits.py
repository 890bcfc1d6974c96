"""The example config as the YAML data it is read from (the `raw` fixture: import
`fixture_raw`), and edits that break it in one place, for the tests that check each error
names the key the operator got wrong."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.support.settings import EXAMPLE_CONFIG

Mutation = Callable[[dict[str, Any]], None]


@pytest.fixture(name="raw")
def fixture_raw() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE_CONFIG.read_text())


def clinic(**changes: Any) -> Mutation:
    return lambda r: r["clinics"][0].update(changes)


def misspell_greeting(r: dict[str, Any]) -> None:
    r["clinics"][0]["gretting"] = r["clinics"][0].pop("greeting")


def escalate_to(number: str) -> Mutation:
    return lambda r: r["clinics"][0]["escalation"].update(numbers=[number])
