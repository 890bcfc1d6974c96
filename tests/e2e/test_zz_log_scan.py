"""Runs after the other e2e tests (file order): the gateway's whole log — every webhook,
every call and message the e2e scripts made — holds no number and no speech in clear."""

from __future__ import annotations

from tests.support.live_gateway import Gateway
from tests.support.twilio import CLINIC_UK, PATIENT, PATIENT_2


def test_no_number_or_speech_from_any_e2e_script_is_in_the_log(live_gateway: Gateway) -> None:
    log = live_gateway.log_text()
    assert '"msg": "webhook"' in log  # the scan would be empty proof otherwise
    numbers = live_gateway.numbers | {PATIENT, PATIENT_2, CLINIC_UK}
    for number in numbers:
        assert number not in log
        assert number[-10:] not in log  # national form, no country code
    for phrase in live_gateway.said:
        assert phrase not in log
