"""What the bench tests share: the scenario context for the example's clinic without
recording (its first answer is the agent). Import `fixture_ctx` to get the `ctx` fixture."""

from __future__ import annotations

import pytest

from bench.procs import clinic_number
from bench.scenarios import Context
from tests.support.settings import EXAMPLE_CONFIG


@pytest.fixture(name="ctx")
def fixture_ctx() -> Context:
    number, country = clinic_number(EXAMPLE_CONFIG)
    return Context(to_number=number, to_country=country)
