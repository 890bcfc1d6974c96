"""A turn that goes on listening answers from a cached Gather; it must be exactly the TwiML
the twilio package builds, for any text the agent says."""

from __future__ import annotations

import pytest
from twilio.twiml.voice_response import VoiceResponse

from callgateway.calls.gather import gather, listen
from callgateway.wiring import Services


@pytest.mark.parametrize(
    "text",
    [
        "Which day suits you?",
        "Tom & Jerry <b>bold</b> 'single' \"double\" ]]> café",
        "@@SAID@@ twice @@SAID@@",
        "",
    ],
)
def test_the_cached_listen_answer_is_the_library_built_twiml(services: Services, text: str) -> None:
    for clinic in services.config.clinics:
        built = VoiceResponse()
        gather(services, clinic, built, text)
        assert listen(services, clinic, text) == str(built)
        assert listen(services, clinic, text) == str(built)  # from the cache, the same
