"""The `relay:` clinic key (contract §8) and RELAY_PUBLIC_URL: validated at start, errors
naming the key; and a reply cut into the sentence-sized tokens the relay sends."""

from __future__ import annotations

from typing import Any

import pytest

from callgateway.config import ConfigError, parse_config
from callgateway.config.settings import Settings, SettingsError
from callgateway.relay.speech import sentences
from tests.support.config_edits import clinic, fixture_raw  # noqa: F401  (the raw fixture)


@pytest.mark.parametrize(
    ("relay", "error"),
    [
        ({"interruptible": "sometimes"}, "clinics[0].relay.interruptible: expected any, speech"),
        ({"interruptible": True}, "clinics[0].relay.interruptible: expected any, speech"),
        ({"tts_provider": "Polly2"}, "clinics[0].relay.tts_provider: unknown provider 'Polly2'"),
        (
            {"transcription_provider": "Whisper"},
            "clinics[0].relay.transcription_provider: unknown provider 'Whisper'",
        ),
        ({"languages": ["english"]}, "clinics[0].relay.languages[0]: not a language tag"),
        ({"languages": "en-GB"}, "clinics[0].relay.languages:"),
        ({"voice": ""}, "clinics[0].relay.voice:"),
        ({"enabeld": True}, "clinics[0].relay.enabeld: unknown key"),
        ({"enabled": "maybe"}, "clinics[0].relay.enabled:"),
    ],
)
def test_a_bad_relay_key_stops_start_up_naming_the_key(
    raw: dict[str, Any], relay: dict[str, Any], error: str
) -> None:
    clinic(relay=relay)(raw)
    with pytest.raises(ConfigError) as exc:
        parse_config(raw)
    assert str(exc.value).startswith(error), str(exc.value)


def test_the_relay_key_opts_a_clinic_in_and_enabled_false_opts_it_out(
    raw: dict[str, Any],
) -> None:
    clinic(
        relay={
            "interruptible": "dtmf",
            "tts_provider": "elevenlabs",
            "voice": "UgBBYS2sOqTuMpoF3BR0",
            "transcription_provider": "deepgram",
            "languages": ["en-GB", "fr-FR"],
        }
    )(raw)
    relay_clinic = parse_config(raw).clinics[0]
    assert relay_clinic.uses_relay and relay_clinic.relay is not None
    # Twilio's spelling of the providers, whatever case the config used.
    assert (relay_clinic.relay.tts_provider, relay_clinic.relay.transcription_provider) == (
        "ElevenLabs",
        "Deepgram",
    )
    assert relay_clinic.relay.interruptible == "dtmf"
    assert parse_config(raw).clinics[1].uses_relay is False  # no key: Gather as before
    clinic(relay={"enabled": False})(raw)
    assert parse_config(raw).clinics[0].uses_relay is False
    clinic(relay={})(raw)
    assert parse_config(raw).clinics[0].relay.interruptible == "any"  # the default


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({}, "ws://127.0.0.1:8000/twilio/relay"),
        ({"PUBLIC_BASE_URL": "https://gw.example.com"}, "wss://gw.example.com/twilio/relay"),
        (
            {"PUBLIC_BASE_URL": "https://gw.example.com", "RELAY_PUBLIC_URL": "wss://r.example"},
            "wss://r.example/twilio/relay",
        ),
        ({"RELAY_PUBLIC_URL": "wss://r.example/twilio/relay"}, "wss://r.example/twilio/relay"),
        ({"RELAY_PUBLIC_URL": "https://r.example/"}, "wss://r.example/twilio/relay"),
    ],
)
def test_the_relay_url_is_the_public_base_as_wss_unless_relay_public_url_says(
    env: dict[str, str], url: str
) -> None:
    assert Settings.from_env(env).relay_url == url


@pytest.mark.parametrize("value", ["ftp://r.example", "r.example", "wss://"])
def test_an_unusable_relay_public_url_is_named(value: str) -> None:
    with pytest.raises(SettingsError, match=r"^RELAY_PUBLIC_URL: "):
        Settings.from_env({"RELAY_PUBLIC_URL": value})


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        (
            "That's booked for 10.30. Anything else? Say yes!",
            ["That's booked for 10.30. ", "Anything else? ", "Say yes!"],
        ),
        ("No full stop at the end", ["No full stop at the end"]),
        ("", []),
        ("Wait... what?  Fine.", ["Wait... ", "what?  ", "Fine."]),
    ],
)
def test_a_reply_is_sent_a_sentence_at_a_time_and_nothing_is_lost(
    text: str, tokens: list[str]
) -> None:
    assert sentences(text) == tokens
    assert "".join(sentences(text)) == text


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ('{"next": "person", "reason": "dtmf-0"}', ("person", "dtmf-0")),
        ('{"next": "hangup", "reason": "goodbye"}', ("hangup", "goodbye")),
        ('{"next": "person", "reason": "<script>"}', ("person", "agent")),  # not ours: generic
        ('{"next": "listen"}', None),
        ('{"next": "person"', None),
        ("[]", None),
        ("", None),
    ],
)
def test_the_relay_action_reads_only_the_handoff_our_relay_sends(
    raw: str, decoded: tuple[str, str] | None
) -> None:
    from callgateway.calls.relay import Handoff

    found = Handoff.decode(raw)
    assert (found.next, found.reason) == decoded if decoded else found is None
