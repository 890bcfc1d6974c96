"""Chat Completions answers as the OpenAI API sends them (the official SDK parses each),
whole or streamed as server-sent events, a stub server on loopback that sends them, and the
example config with the Riverside clinic on the OpenAI agent."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from callgateway.config import Config
from callgateway.config import OpenAIAgent as OpenAIAgentConfig

MODEL = "gpt-4o-mini"


def completion(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-" + "a" * 29,
        "object": "chat.completion",
        "created": 1795424400,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {"prompt_tokens": 412, "completion_tokens": 19, "total_tokens": 431},
        "system_fingerprint": "fp_0ba0d124f1",
    }


def text(content: str) -> tuple[int, dict[str, Any]]:
    return 200, completion({"role": "assistant", "content": content, "refusal": None})


def tool_call(name: str, arguments: dict[str, Any] | str, call_id: str = "call_1") -> tuple:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    message = {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
        ],
    }
    return 200, completion(message, "tool_calls")


def openai_config(config: Config, timeout: float = 2.0) -> Config:
    clinics = [
        c.model_copy(
            update={"agent": OpenAIAgentConfig(kind="openai", model=MODEL, timeout_seconds=timeout)}
        )
        if c.id == "riverside-physio"
        else c
        for c in config.clinics
    ]
    return config.model_copy(update={"clinics": clinics})


# -- streaming (`stream=True`): the same answers as server-sent events ----------------------

_TOKEN = re.compile(r"\s*\S+")


def stream_chunks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A completion as the API streams it: a first chunk with the role, the content a token
    (a word) at a time, each tool call's id and name first and its arguments in fragments,
    then an empty delta with the finish reason."""
    choice = body["choices"][0]
    message = choice["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": body["id"],
            "object": "chat.completion.chunk",
            "created": body["created"],
            "model": body["model"],
            "system_fingerprint": body["system_fingerprint"],
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    content = message.get("content")
    calls = message.get("tool_calls") or []
    first: dict[str, Any] = {"role": "assistant", "content": "" if content else None}
    first["refusal"] = None
    out = [chunk(first)]
    for token in _TOKEN.findall(content or ""):
        out.append(chunk({"content": token}))
    for index, call in enumerate(calls):
        head = {"index": index, "id": call["id"], "type": "function"}
        head["function"] = {"name": call["function"]["name"], "arguments": ""}
        out.append(chunk({"tool_calls": [head]}))
        args = call["function"]["arguments"]
        for at in range(0, len(args), 7):
            piece = {"index": index, "function": {"arguments": args[at : at + 7]}}
            out.append(chunk({"tool_calls": [piece]}))
    out.append(chunk({}, choice["finish_reason"]))
    return out


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    payload: dict[str, Any],
    streamed: bool,
    first_token: float = 0.0,
    interval: float = 0.0,
) -> bool:
    """Answer a request the way the API does: JSON, or (a 200 to a `stream: true` request)
    `text/event-stream` events `data: {chunk}` ending with `data: [DONE]`, the first token
    after `first_token` seconds and one every `interval` after it. Returns False when the
    client closed the connection before the end (a cancelled stream)."""
    chunked = handler.protocol_version == "HTTP/1.1"
    try:
        if not streamed or status != 200:
            data = json.dumps(payload).encode()
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
            return True
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
        if chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        else:
            handler.send_header("Connection", "close")
        handler.end_headers()
        chunks = stream_chunks(payload) if "choices" in payload else [payload]  # garbage as is
        events = [f"data: {json.dumps(c)}\n\n" for c in chunks]
        events.append("data: [DONE]\n\n")
        for n, event in enumerate(events):
            if n == 1:
                time.sleep(first_token)
            elif n > 1 and interval:
                time.sleep(interval)
            raw = event.encode()
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw) if chunked else raw)
            handler.wfile.flush()
        if chunked:
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


@dataclass
class Stub:
    """The Chat Completions API on loopback (a real HTTP/1.1 server), answering from
    `script`: each step is (status, body) as `text()`/`tool_call()` build them, or a number
    (seconds to stall, then `text("too late")`). An empty script answers `default` (a 500
    unless set). Streams are paced by `first_token` and `interval`; `cut_short` counts the
    streams a client closed before their end."""

    script: list[Any] = field(default_factory=list)
    default: tuple[int, dict[str, Any]] | None = None
    first_token: float = 0.0
    interval: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    cut_short: int = 0
    finished: int = 0
    url: str = ""

    def step(self) -> Any:
        if self.script:
            return self.script.pop(0)
        return self.default or (500, {"error": {"message": "x", "type": "server_error"}})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # a bench's hundreds of callers connect at once


@contextlib.contextmanager
def serve_stub(stub: Stub | None = None) -> Iterator[Stub]:
    stub = stub or Stub()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                stub.requests.append(body)
                step = stub.step()
            if isinstance(step, int | float) and not isinstance(step, bool):
                time.sleep(step)
                step = text("too late")
            status, payload = step
            whole = send(
                self, status, payload, bool(body.get("stream")), stub.first_token, stub.interval
            )
            with lock:
                if whole:
                    stub.finished += 1
                else:
                    stub.cut_short += 1
                    self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stub.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
