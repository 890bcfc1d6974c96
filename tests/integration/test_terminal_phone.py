"""The terminal phone plays TwiML the way Twilio would, without a network."""

from __future__ import annotations

from dataclasses import dataclass, field

import requests

from callgateway.cli.terminal_phone import Call, Webhook


@dataclass
class Scripted(Webhook):
    """A gateway that answers each webhook from a script and remembers what it was sent."""

    answers: list[str] = field(default_factory=list)
    sent: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def post(self, url: str, params: dict[str, str]) -> requests.Response:
        self.sent.append((url, params))
        response = requests.Response()
        response.status_code = 200
        response._content = (self.answers.pop(0) if self.answers else "<Response/>").encode()
        return response


def phone(hook: Scripted, lines: list[str]) -> tuple[Call, list[str]]:
    heard: list[str] = []
    feed = iter(lines)
    call = Call(
        hook=hook,
        to="+442071234567",
        from_="+447700900123",
        account_sid="AC" + "0" * 32,
        read=lambda: next(feed, None),
        write=heard.append,
        twilio_api_base="http://127.0.0.1:9",
    )
    return call, heard


def test_speech_at_a_keys_only_menu_carries_into_the_voicemail() -> None:
    hook = Scripted(
        "http://gw",
        "t",
        answers=[
            '<Response><Gather input="dtmf" numDigits="1" action="/k"><Say>Press 1</Say>'
            '</Gather><Record action="/done"/></Response>',
            "<Response><Hangup/></Response>",
        ],
    )
    call, heard = phone(hook, ["please call me back about my knee"])
    call.run()
    paths = [url for url, _ in hook.sent]
    assert paths == ["/twilio/voice", "/done", "/twilio/voice/status"]
    assert "Press 1" in heard
    assert int(hook.sent[1][1]["RecordingDuration"]) >= 3  # the words were recorded


def test_digits_and_speech_are_sent_as_twilio_sends_them() -> None:
    gather = '<Response><Gather input="speech dtmf" action="/t"><Say>Hi</Say></Gather></Response>'
    hook = Scripted("http://gw", "t", answers=[gather, gather, "<Response><Hangup/></Response>"])
    call, _ = phone(hook, ["0", "book me in"])
    call.run()
    assert hook.sent[1][1]["Digits"] == "0"
    assert hook.sent[2][1]["SpeechResult"] == "book me in"
