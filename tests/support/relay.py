"""Twilio's side of ConversationRelay in tests: the relay app under a real uvicorn on a
loopback port, and a caller whose call opens it (`RelayPhone`): the signed webhooks through
the Flask test client, then a real WebSocket client, signed like Twilio, that sends `setup`,
`prompt`, `dtmf` and `interrupt` and reads what the relay sends back."""

from __future__ import annotations

import inspect
import json
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from websockets.sync.client import ClientConnection, connect

from callgateway.config import Config, Relay
from callgateway.relay.app import WS_PROTOCOL, create_relay_app
from callgateway.wiring import Services
from devtools.services import free_port
from tests.support.twilio import ACCOUNT_SID, PATIENT, TOKEN, TwilioSim, sid, sign

DONE = "/twilio/voice/relay/done"
# websockets 17 wants `with connect(...)` unless told the connection is used directly.
_DIRECT = {"legacy": True} if "legacy" in inspect.signature(connect).parameters else {}


def relay_config(config: Config, *clinic_ids: str, **relay: Any) -> Config:
    """The config with ConversationRelay on for these clinics."""
    clinics = [
        c.model_copy(update={"relay": Relay(**relay)}) if c.id in clinic_ids else c
        for c in config.clinics
    ]
    return config.model_copy(update={"clinics": clinics})


@dataclass
class RelayServer:
    """The relay app served by uvicorn in this process (it shares the test's Services)."""

    url: str  # ws://127.0.0.1:PORT/twilio/relay: where the client connects
    signed_url: str  # the public URL Twilio signs (the TwiML's url)


@contextmanager
def serving_relay(
    services: Services, threads: int = 8, port: int | None = None
) -> Iterator[RelayServer]:
    port = port or free_port()
    config = uvicorn.Config(
        create_relay_app(services, threads=threads),
        host="127.0.0.1",
        port=port,
        ws=WS_PROTOCOL,
        log_config=None,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="relay-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the relay server did not start")
        time.sleep(0.02)
    try:
        yield RelayServer(f"ws://127.0.0.1:{port}/twilio/relay", services.settings.relay_url)
    finally:
        server.should_exit = True
        thread.join(15)


def open_socket(
    server: RelayServer, signature: str | None = None, token: str = TOKEN
) -> ClientConnection:
    """A handshake as Twilio makes it: X-Twilio-Signature over the relay's public URL."""
    sig = sign(server.signed_url, {}, token) if signature is None else signature
    headers = {"X-Twilio-Signature": sig} if sig else {}
    return connect(server.url, additional_headers=headers, open_timeout=10, **_DIRECT)


def setup_message(call_sid: str, from_: str = PATIENT, to: str = "", **extra: Any) -> str:
    message = {
        "type": "setup",
        "sessionId": sid("VX"),
        "accountSid": ACCOUNT_SID,
        "parentCallSid": "",
        "callSid": call_sid,
        "from": from_,
        "to": to,
        "forwardedFrom": to,
        "callType": "PSTN",
        "callerName": "",
        "direction": "inbound",
        "callStatus": "IN-PROGRESS",
        "customParameters": {},
    }
    message.update(extra)
    return json.dumps(message)


@dataclass
class Heard:
    """What the relay sent for one turn: text tokens, and `end` if it handed over."""

    tokens: list[str] = field(default_factory=list)
    end: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    @property
    def handoff(self) -> dict[str, Any] | None:
        return json.loads(self.end["handoffData"]) if self.end else None


class RelayPhone:
    """One caller whose call opens the relay: webhooks first, then the socket."""

    def __init__(self, tw: TwilioSim, server: RelayServer, from_: str, to: str) -> None:
        self.tw, self.server, self.from_, self.to = tw, server, from_, to
        self.call_sid = sid("CA")
        self.twiml = ""
        self.ws: ClientConnection | None = None

    def dial(self) -> str:
        """The incoming call (and the recording redirect): the TwiML that opens the relay."""
        body = self.tw.call(self.call_sid, self.from_, self.to).get_data(as_text=True)
        if "/twilio/voice/recording/start" in body:
            params = self.tw.voice_params(self.call_sid, self.from_, self.to)
            body = self.tw.post("/twilio/voice/recording/start", params).get_data(as_text=True)
        self.twiml = body
        return body

    @property
    def relay_element(self) -> ET.Element | None:
        return ET.fromstring(self.twiml).find("Connect/ConversationRelay")

    def connect(self) -> RelayPhone:
        self.ws = open_socket(self.server)
        self.ws.send(setup_message(self.call_sid, self.from_, self.to))
        return self

    def send(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        self.ws.send(json.dumps(message))

    def say(self, speech: str) -> Heard:
        self.send({"type": "prompt", "voicePrompt": speech, "lang": "en-GB", "last": True})
        return self.listen()

    def press(self, digit: str) -> Heard:
        self.send({"type": "dtmf", "digit": digit})
        return self.listen()

    def interrupt(self, heard: str, ms: int = 900) -> None:
        self.send(
            {
                "type": "interrupt",
                "utteranceUntilInterrupt": heard,
                "durationUntilInterruptMs": ms,
            }
        )

    def listen(self, timeout: float = 15.0) -> Heard:
        """Messages until the reply's last token (and an `end` right after it), or `end`."""
        assert self.ws is not None
        heard = Heard()
        after_last = False
        while True:
            try:
                message = json.loads(self.ws.recv(timeout=timeout))
            except TimeoutError:
                if after_last:
                    return heard
                raise
            if message["type"] == "end":
                heard.end = message
                return heard
            if message["type"] == "text":
                if message["token"]:  # the closing `last` token may carry no words
                    heard.tokens.append(message["token"])
                if message.get("last"):
                    after_last, timeout = True, 0.3  # an `end` may follow the last words

    def done(self, handoff: dict[str, Any] | None, **extra: str) -> str:
        """Twilio posts the <Connect> action when the session ends."""
        params = self.tw.voice_params(
            self.call_sid, self.from_, self.to, CallStatus="in-progress", **extra
        )
        params.setdefault("SessionId", sid("VX"))
        params.setdefault("SessionStatus", "ended")
        if handoff is not None:
            params["HandoffData"] = json.dumps(handoff)
        response = self.tw.post(DONE, params)
        assert response.status_code == 200
        return response.get_data(as_text=True)

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
