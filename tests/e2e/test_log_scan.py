"""The gateway's whole log so far — every webhook, every call and message the e2e scripts
made, and a conversation of this test's own — holds no number and no speech in clear.

It depends on no order: its own call makes sure there is something to scan, whichever
tests ran before it, and the live gateway's fixture runs the same scan once more when the
gateway stops, after whichever tests ran after it (tests/e2e/conftest.py)."""

from __future__ import annotations

import pytest

from tests.support.live_gateway import Gateway
from tests.support.twilio import CLINIC_UK, PATIENT, PATIENT_2


@pytest.fixture
def a_conversation(live_gateway: Gateway) -> None:
    """A call that speaks and is answered, so the log has a webhook and a phrase to look for."""
    said = live_gateway.cli(
        "call", "--to", CLINIC_UK, "--from", PATIENT, stdin="I would like to book an appointment\n"
    )
    assert said.returncode == 0, said.stderr


@pytest.mark.usefixtures("a_conversation")
def test_no_number_or_speech_from_any_e2e_script_is_in_the_log(live_gateway: Gateway) -> None:
    log = live_gateway.log_text()
    assert '"msg": "webhook"' in log  # the scan would be empty proof otherwise
    numbers = live_gateway.numbers | {PATIENT, PATIENT_2, CLINIC_UK}
    for number in numbers:
        assert number not in log
        assert number[-10:] not in log  # national form, no country code
    for phrase in live_gateway.said:
        assert phrase not in log
