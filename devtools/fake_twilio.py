"""A tiny fake of Twilio's REST API for `make dev` (and the end-to-end tests). Never used in
production: it answers on loopback only and keeps everything in memory.

What it does:
- `POST .../Calls/{CallSid}/Recordings.json` (the gateway starting a recording) makes a
  recording resource for the call and remembers its status callback;
- `GET /_dev/calls/{CallSid}/recordings` lets the terminal phone find those at hang-up;
- `PUT /_dev/recordings/{RecordingSid}` takes the media the terminal phone "recorded";
- `GET .../Recordings/{RecordingSid}[.wav|.mp3]` serves it, `DELETE .../{sid}.json` removes
  it (404 once gone, as Twilio does), `GET .../Recordings/{sid}.json` describes it;
- `POST .../Messages.json` and `POST .../Calls.json` are answered like Twilio and written to
  the request log (`GET /_dev/log`, and a JSON-lines file when given), numbers masked.

Run: `python -m devtools.fake_twilio --port 8081 [--log var/dev/twilio.jsonl]`.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from callgateway.phone import mask

_ACCOUNT = r"/2010-04-01/Accounts/(?P<account>AC\w+)"
_START = re.compile(_ACCOUNT + r"/Calls/(?P<call>CA\w+)/Recordings\.json$")
_MEDIA = re.compile(_ACCOUNT + r"/Recordings/(?P<sid>RE\w+?)(?P<ext>\.wav|\.mp3|\.json)?$")
_MESSAGES = re.compile(_ACCOUNT + r"/Messages\.json$")
_CALLS = re.compile(_ACCOUNT + r"/Calls\.json$")
_CALL = re.compile(_ACCOUNT + r"/Calls/(?P<call>CA\w+)\.json$")
_DEV_CALL_RECORDINGS = re.compile(r"/_dev/calls/(?P<call>CA\w+)/recordings$")
_DEV_MEDIA = re.compile(r"/_dev/recordings/(?P<sid>RE\w+)$")
_NUMBER_FIELDS = ("To", "From", "CallerId")


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


@dataclass
class FakeRecording:
    sid: str
    call_sid: str
    account_sid: str
    status_callback: str | None = None
    media: bytes | None = None
    deleted: bool = False
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


@dataclass
class State:
    recordings: dict[str, FakeRecording] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)
    log_path: Path | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.log.append(entry)
            if self.log_path is not None:
                with self.log_path.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(entry) + "\n")


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "devtwilio/1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: we keep our own log
            return

        # -- plumbing ---------------------------------------------------------------------
        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _form(self) -> dict[str, list[str]]:
            return parse_qs(self._body().decode("utf-8", "replace"), keep_blank_values=True)

        def _send(
            self,
            status: int,
            payload: Any = None,
            *,
            raw: bytes | None = None,
            content_type: str = "application/json",
        ) -> None:
            body = (
                raw
                if raw is not None
                else (b"" if payload is None else json.dumps(payload).encode())
            )
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _not_found(self) -> None:
            self._send(
                404,
                {"code": 20404, "message": "The requested resource was not found", "status": 404},
            )

        def _path(self) -> str:
            return urlsplit(self.path).path

        def _note(self, form: dict[str, list[str]] | None = None) -> None:
            fields = {
                k: (mask(v[0]) if k in _NUMBER_FIELDS else v[0] if len(v) == 1 else v)
                for k, v in (form or {}).items()
            }
            state.note(
                {
                    "at": datetime.now(UTC).isoformat(),
                    "method": self.command,
                    "path": self._path(),
                    "form": fields,
                }
            )

        # -- verbs ------------------------------------------------------------------------
        def do_GET(self) -> None:
            path = self._path()
            if path == "/_dev/log":
                with state.lock:
                    return self._send(200, list(state.log))
            if m := _DEV_CALL_RECORDINGS.match(path):
                with state.lock:
                    found = [
                        {
                            "sid": r.sid,
                            "status_callback": r.status_callback,
                            "deleted": r.deleted,
                            "has_media": r.media is not None,
                        }
                        for r in state.recordings.values()
                        if r.call_sid == m["call"]
                    ]
                return self._send(200, found)
            if m := _CALL.match(path):
                return self._not_found()  # the gateway logged the call itself in dev
            if m := _MEDIA.match(path):
                self._note()
                rec = state.recordings.get(m["sid"])
                if rec is None or rec.deleted:
                    return self._not_found()
                if m["ext"] == ".json":
                    return self._send(200, _describe(rec))
                if rec.media is None:
                    return self._not_found()
                kind = "audio/mpeg" if m["ext"] == ".mp3" else "audio/x-wav"
                return self._send(200, raw=rec.media, content_type=kind)
            self._not_found()

        def do_PUT(self) -> None:
            if m := _DEV_MEDIA.match(self._path()):
                media = self._body()
                query = parse_qs(urlsplit(self.path).query)
                with state.lock:
                    rec = state.recordings.get(m["sid"])
                    if rec is None:
                        rec = FakeRecording(
                            m["sid"], query.get("call", [""])[0], query.get("account", [""])[0]
                        )
                        state.recordings[rec.sid] = rec
                    rec.media = media
                return self._send(204)
            self._not_found()

        def do_DELETE(self) -> None:
            m = _MEDIA.match(self._path())
            if m and m["ext"] in (None, ".json"):
                self._note()
                with state.lock:
                    rec = state.recordings.get(m["sid"])
                    if rec is None or rec.deleted:
                        return self._not_found()
                    rec.deleted, rec.media = True, None
                return self._send(204)
            self._not_found()

        def do_POST(self) -> None:
            path = self._path()
            form = self._form()
            self._note(form)
            if m := _START.match(path):
                rec = FakeRecording(
                    new_sid("RE"),
                    m["call"],
                    m["account"],
                    (form.get("RecordingStatusCallback") or [None])[0],
                )
                with state.lock:
                    state.recordings[rec.sid] = rec
                return self._send(201, {**_describe(rec), "status": "in-progress"})
            if m := _MESSAGES.match(path):
                return self._send(
                    201,
                    {
                        "sid": new_sid("SM"),
                        "account_sid": m["account"],
                        "status": "queued",
                        "to": _first(form, "To"),
                        "from": _first(form, "From"),
                    },
                )
            if m := _CALLS.match(path):
                return self._send(
                    201,
                    {
                        "sid": new_sid("CA"),
                        "account_sid": m["account"],
                        "status": "queued",
                        "to": _first(form, "To"),
                        "from": _first(form, "From"),
                    },
                )
            self._not_found()

    return Handler


def _first(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def _describe(rec: FakeRecording) -> dict[str, Any]:
    return {
        "sid": rec.sid,
        "account_sid": rec.account_sid,
        "call_sid": rec.call_sid,
        "status": "completed" if rec.media is not None else "in-progress",
        "date_created": rec.created_at,
        "uri": f"/2010-04-01/Accounts/{rec.account_sid}/Recordings/{rec.sid}.json",
    }


def make_server(port: int, log_path: Path | None = None) -> ThreadingHTTPServer:
    """Bound to 127.0.0.1 only: this holds "patient" audio, however fake."""
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(State(log_path=log_path)))
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.fake_twilio")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--log", type=Path, default=None, help="JSON-lines request log")
    args = parser.parse_args(argv)
    if args.log:
        args.log.parent.mkdir(parents=True, exist_ok=True)
    server = make_server(args.port, args.log)
    print(f"devtwilio: fake Twilio REST API on http://127.0.0.1:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
