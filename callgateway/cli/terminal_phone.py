"""A terminal phone: plays Twilio against a running gateway.

It signs every webhook the way Twilio does, follows the TwiML it gets back (Say, Play,
Gather, Record, Dial, Redirect, Hangup), prints what the caller would hear, reads what the
caller says from an input function (one line per turn), and sends the status callback at
hang-up. Used by `callgateway call` and by the end-to-end tests.

When the TwiML opens ConversationRelay (`<Connect><ConversationRelay url>`), it plays
Twilio's side of the WebSocket: a signed handshake, `setup`, one `prompt` per line, digits
as `dtmf`, the agent's `text` tokens printed as they arrive, and after `end` the
`<Connect action>` (with the `handoffData`). A line starting with `!` interrupts: the agent
was heard up to the end of its reply's first sentence, and the rest of the line (if any) is
what the caller says over it.
"""

from __future__ import annotations

import inspect
import json
import re
import secrets
import struct
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import requests
from twilio.request_validator import RequestValidator
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from callgateway.phone import mask

API_VERSION = "2010-04-01"
_DIGITS = re.compile(r"^[0-9#*]{1,12}$")


class PhoneError(RuntimeError):
    """The gateway could not be reached or refused the call; one line for the user."""


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


@dataclass
class Webhook:
    """Signs and posts form-encoded webhooks the way Twilio does."""

    base_url: str
    auth_token: str
    http: requests.Session = field(default_factory=requests.Session)
    timeout: float = 15.0

    def post(self, url: str, params: dict[str, str]) -> requests.Response:
        if url.startswith("/"):
            url = self.base_url.rstrip("/") + url
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        try:
            response = self.http.post(
                url,
                data=urlencode(params),
                headers={
                    "X-Twilio-Signature": signature,
                    "Content-Type": "application/x-www-form-urlencoded",
                    "User-Agent": "TwilioProxy/1.1 (callgateway terminal phone)",
                },
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise PhoneError(f"cannot reach the gateway at {url}: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise PhoneError(f"the gateway answered {response.status_code} to {url}")
        return response


@dataclass
class Call:
    hook: Webhook
    to: str
    from_: str
    account_sid: str
    read: Callable[[], str | None]  # returns None at end of input (caller hangs up)
    write: Callable[[str], None]
    dial_outcome: str = "no-answer"
    twilio_api_base: str = "https://api.twilio.com"
    call_sid: str = field(default_factory=lambda: new_sid("CA"))
    heard: list[str] = field(default_factory=list)
    _started: float = field(default_factory=time.monotonic)
    _carried: str | None = None

    def _params(self, **extra: str) -> dict[str, str]:
        params = {
            "AccountSid": self.account_sid,
            "CallSid": self.call_sid,
            "From": self.from_,
            "To": self.to,
            "Caller": self.from_,
            "Called": self.to,
            "Direction": "inbound",
            "ApiVersion": API_VERSION,
            "CallStatus": "in-progress",
        }
        params.update(extra)
        return params

    def _hear(self, text: str) -> None:
        self.heard.append(text)
        self.write(text)

    def run(self) -> str:
        """Play the whole call; returns the final call status."""
        body = self.hook.post("/twilio/voice", self._params(CallStatus="ringing")).text
        while body is not None:
            body = self._play(body)
        duration = max(1, round(time.monotonic() - self._started))
        self.hook.post(
            "/twilio/voice/status",
            self._params(CallStatus="completed", CallDuration=str(duration)),
        )
        self._finish_rest_recordings(duration)
        return "completed"

    def _play(self, body: str) -> str | None:
        """Play one TwiML document; return the next document, or None when the call ends."""
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            raise PhoneError("the gateway answered something that is not TwiML") from None
        if root.tag != "Response":
            raise PhoneError("the gateway answered XML that is not a TwiML <Response>")
        for verb in root:
            if verb.tag == "Say":
                self._hear((verb.text or "").strip())
            elif verb.tag == "Play":
                self.write(f"[audio {verb.text or ''}]")
            elif verb.tag == "Pause":
                continue
            elif verb.tag == "Gather":
                nxt = self._gather(verb)
                if nxt is not _CONTINUE:
                    return nxt
            elif verb.tag == "Record":
                return self._record(verb)
            elif verb.tag == "Dial":
                nxt = self._dial(verb)
                if nxt is not _CONTINUE:
                    return nxt
            elif verb.tag == "Redirect":
                return self.hook.post((verb.text or "").strip(), self._params()).text
            elif verb.tag in ("Hangup", "Reject"):
                return None
            elif verb.tag == "Start":
                self.write("[recording started]")
            elif verb.tag == "Connect" and verb.find("ConversationRelay") is not None:
                return self._relay(verb)
        return None

    # ConversationRelay: Twilio's side of the WebSocket ---------------------------------
    def _relay(self, connect: ET.Element) -> str | None:
        relay = connect.find("ConversationRelay")
        assert relay is not None
        url = relay.get("url", "")
        signature = RequestValidator(self.hook.auth_token).compute_signature(url, {})
        try:
            ws = ws_connect(
                url,
                additional_headers={"X-Twilio-Signature": signature},
                open_timeout=self.hook.timeout,
                **_DIRECT,
            )
        except InvalidStatus as exc:
            raise PhoneError(
                f"the relay answered {exc.response.status_code} to the handshake at {url}"
            ) from None
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise PhoneError(f"cannot reach the relay at {url}: {type(exc).__name__}") from None
        with ws:
            ended = self._relay_session(ws, relay)
        if ended is _HUNG_UP:
            return None
        action = connect.get("action")
        if not action:
            return None
        extra = {"SessionId": new_sid("VX"), "SessionStatus": "ended"}
        if ended is None:  # the socket dropped without an `end`
            extra.update(SessionStatus="failed", ErrorCode="64105")
        elif isinstance(ended, dict) and ended.get("handoffData"):
            extra["HandoffData"] = str(ended["handoffData"])
        return self.hook.post(action, self._params(**extra)).text

    def _relay_session(self, ws: ClientConnection, relay: ET.Element) -> object:
        """The session until the relay's `end` (returned), the caller's hang-up (_HUNG_UP)
        or the socket closing (None)."""
        ws.send(json.dumps(self._setup()))
        reply: list[str] = []
        greeting = relay.get("welcomeGreeting")
        if greeting:
            self._hear(greeting)
            reply = [greeting]
        try:
            ended = self._relay_reply(ws, [], wait=0.3)  # a refusal comes at once
            while ended is _LISTENING:
                line = self._next_line()
                if line is None:
                    return _HUNG_UP
                line = line.strip()
                if line.startswith("!"):
                    heard = reply[0].strip() if reply else ""
                    ws.send(json.dumps(_interrupt(heard)))
                    self.write(f"[you speak over the agent; it was heard up to: {heard}]")
                    line = line[1:].strip()
                    if not line:
                        continue
                reply = []
                if _DIGITS.match(line):
                    for digit in line:
                        ws.send(json.dumps({"type": "dtmf", "digit": digit}))
                        ended = self._relay_reply(ws, reply)
                        if ended is not _LISTENING:
                            break
                    continue
                prompt = {"type": "prompt", "voicePrompt": line, "lang": "en-GB", "last": True}
                ws.send(json.dumps(prompt))
                ended = self._relay_reply(ws, reply)
            return ended
        except ConnectionClosed:
            return None

    def _relay_reply(
        self, ws: ClientConnection, tokens: list[str], wait: float | None = None
    ) -> object:
        """Print the reply's tokens as they arrive, until its last one (then _LISTENING)
        or `end` (returned). `wait`: how long to wait for a first message."""
        timeout = wait if wait is not None else self.hook.timeout
        while True:
            try:
                message = json.loads(ws.recv(timeout=timeout))
            except TimeoutError:
                return _LISTENING
            if message.get("type") == "end":
                return message
            if message.get("type") == "text":
                token = str(message.get("token") or "")
                tokens.append(token)
                self._hear(token.strip())
                if message.get("last"):
                    timeout = 0.3  # an `end` may follow the reply's last words
            elif message.get("type") == "play":
                self.write(f"[audio {message.get('source', '')}]")

    def _setup(self) -> dict[str, object]:
        return {
            "type": "setup",
            "sessionId": new_sid("VX"),
            "accountSid": self.account_sid,
            "parentCallSid": "",
            "callSid": self.call_sid,
            "from": self.from_,
            "to": self.to,
            "forwardedFrom": self.to,
            "callType": "PSTN",
            "callerName": "",
            "direction": "inbound",
            "callStatus": "IN-PROGRESS",
            "customParameters": {},
        }

    def _next_line(self) -> str | None:
        if self._carried is not None:
            line, self._carried = self._carried, None
            return line
        return self.read()

    def _gather(self, verb: ET.Element) -> str | object | None:
        for child in verb:
            if child.tag == "Say":
                self._hear((child.text or "").strip())
        line = self._next_line()
        if line is None:
            return None  # caller hung up
        line = line.strip()
        if line and not _DIGITS.match(line) and "speech" not in verb.get("input", "dtmf"):
            # A keys-only menu hears nothing of speech: like a real caller's words, the line
            # carries on to the next verb (typically the voicemail <Record>).
            self._carried = line
            line = ""
        if not line:
            # Twilio's behaviour on timeout: carry on with the verb after <Gather>.
            if verb.get("actionOnEmptyResult") == "true":
                return self.hook.post(verb.get("action", ""), self._params()).text
            return _CONTINUE
        if _DIGITS.match(line):
            extra = {"Digits": line}
        else:
            extra = {"SpeechResult": line, "Confidence": "0.91"}
        return self.hook.post(verb.get("action", ""), self._params(**extra)).text

    def _record(self, verb: ET.Element) -> str | None:
        self.write("[beep: recording, type your message]")
        line = self._next_line()
        message = (line or "").strip()
        recording_sid = new_sid("RE")
        media = (
            f"{self.twilio_api_base}/{API_VERSION}/Accounts/{self.account_sid}"
            f"/Recordings/{recording_sid}"
        )
        seconds = str(max(1, len(message.split()) // 2))
        self._upload_media(recording_sid, int(seconds))  # so the worker can fetch it (dev)
        rec = {"RecordingSid": recording_sid, "RecordingUrl": media, "RecordingDuration": seconds}
        nxt = None
        if verb.get("action"):
            nxt = self.hook.post(verb.get("action", ""), self._params(**rec)).text
        callback = verb.get("recordingStatusCallback")
        if callback:
            self.hook.post(
                callback,
                {
                    "AccountSid": self.account_sid,
                    "CallSid": self.call_sid,
                    "RecordingStatus": "completed",
                    "RecordingChannels": "1",
                    "RecordingSource": "RecordVerb",
                    "RecordingStartTime": time.strftime("%a, %d %b %Y %H:%M:%S +0000"),
                    **rec,
                },
            )
        return nxt if line is not None else None

    # Recordings against the dev fake of Twilio (devtools.fake_twilio) --------------------
    def _upload_media(self, recording_sid: str, seconds: int) -> bool:
        """Give the fake Twilio the audio of a recording, as real Twilio would hold it."""
        base = dev_twilio_base(self.twilio_api_base)
        if base is None:
            return False
        try:
            response = requests.put(
                f"{base}/_dev/recordings/{recording_sid}",
                params={"call": self.call_sid, "account": self.account_sid},
                data=silent_wav(seconds),
                timeout=5,
            )
        except requests.RequestException:
            return False
        return response.status_code < 300

    def _finish_rest_recordings(self, seconds: int) -> None:
        """A recording the gateway started through the REST API ends with the call: upload
        its audio and send the status callback Twilio would send after hang-up."""
        base = dev_twilio_base(self.twilio_api_base)
        if base is None:
            return
        try:
            found = requests.get(f"{base}/_dev/calls/{self.call_sid}/recordings", timeout=5)
            recordings = found.json() if found.ok else []
        except (requests.RequestException, ValueError):
            return
        for rec in recordings:
            callback = rec.get("status_callback")
            if rec.get("deleted") or rec.get("has_media") or not callback:
                continue
            if not self._upload_media(rec["sid"], seconds):
                continue
            self.hook.post(
                callback,
                {
                    "AccountSid": self.account_sid,
                    "CallSid": self.call_sid,
                    "RecordingSid": rec["sid"],
                    "RecordingUrl": f"{base}/{API_VERSION}/Accounts/{self.account_sid}"
                    f"/Recordings/{rec['sid']}",
                    "RecordingStatus": "completed",
                    "RecordingDuration": str(seconds),
                    "RecordingChannels": "2",
                    "RecordingSource": "StartCallRecordingAPI",
                    "RecordingStartTime": time.strftime("%a, %d %b %Y %H:%M:%S +0000"),
                },
            )

    def _dial(self, verb: ET.Element) -> str | object | None:
        numbers = [(n.text or "").strip() for n in verb if n.tag == "Number"]
        shown = ", ".join(mask(n) for n in numbers) or (verb.text or "").strip()
        self.write(f"[ringing {shown}: {self.dial_outcome}]")
        action = verb.get("action")
        if not action:
            return None if self.dial_outcome == "completed" else _CONTINUE
        extra = {"DialCallStatus": self.dial_outcome}
        if self.dial_outcome == "completed":
            extra["DialCallDuration"] = "42"
            extra["DialCallSid"] = new_sid("CA")
        return self.hook.post(action, self._params(**extra)).text


_CONTINUE = object()
_LISTENING = object()  # the relay's reply is over; the caller's turn
_HUNG_UP = object()
# websockets 17 wants `with connect(...)` unless told the connection is used directly.
_DIRECT = {"legacy": True} if "legacy" in inspect.signature(ws_connect).parameters else {}


def _interrupt(heard: str) -> dict[str, object]:
    # Twilio's estimate of how long the agent spoke; ~15 characters a second of speech.
    return {
        "type": "interrupt",
        "utteranceUntilInterrupt": heard,
        "durationUntilInterruptMs": len(heard) * 66,
    }


DEV_TWILIO_URL_FILE = Path("var/dev/devtwilio.url")  # written by `make dev`


def dev_twilio_base(api_base: str) -> str | None:
    """The dev fake of Twilio's REST API, if there is one: the configured base when it is on
    loopback, else the one `make dev` started (its URL in var/dev). Never the real Twilio."""
    host = urlsplit(api_base).hostname or ""
    if host in ("127.0.0.1", "localhost", "::1"):
        return api_base.rstrip("/")
    try:
        found = DEV_TWILIO_URL_FILE.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return found if urlsplit(found).hostname == "127.0.0.1" else None


def silent_wav(seconds: int, rate: int = 8000) -> bytes:
    """A valid 8 kHz 8-bit mono WAV of silence: what the terminal phone "recorded"."""
    frames = b"\x80" * (rate * max(1, min(seconds, 600)))
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + len(frames), b"WAVE", b"fmt ", 16, 1, 1, rate, rate, 1, 8,
        b"data", len(frames),
    )  # fmt: skip
    return header + frames


def send_sms(hook: Webhook, account_sid: str, to: str, from_: str, body: str, sid: str) -> str:
    params = {
        "AccountSid": account_sid,
        "MessageSid": sid,
        "SmsSid": sid,
        "SmsMessageSid": sid,
        "From": from_,
        "To": to,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "ApiVersion": API_VERSION,
        "SmsStatus": "received",
    }
    return hook.post("/twilio/sms", params).text
