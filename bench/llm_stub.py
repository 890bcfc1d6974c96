"""A stand-in for the OpenAI Chat Completions API for the bench: `python -m bench.llm_stub
--port N`. Every request is answered with the same short reply, streamed as the real API
streams it (server-sent `chat.completion.chunk` events, `data: [DONE]`): the first token
after `--first-token` seconds, then one every `--interval`. A request without
`"stream": true` gets the whole completion after the same total time.

asyncio on one thread: hundreds of streams at once cost it almost no CPU, so the bench's
two cores go to the gateway. Stdlib only; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re

REPLY = "I have Tuesday at midday, 1 pm or 2 pm. Which would suit you?"
_BASE = {
    "id": "chatcmpl-" + "b" * 29,
    "created": 1795424400,
    "model": "gpt-4o-mini-2024-07-18",
    "system_fingerprint": "fp_0ba0d124f1",
}


def _chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
    body = {
        **_BASE,
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    raw = f"data: {json.dumps(body)}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(raw), raw)


TOKENS = re.findall(r"\s*\S+", REPLY)
FIRST = _chunk({"role": "assistant", "content": "", "refusal": None})
CONTENT = [_chunk({"content": t}) for t in TOKENS]
LAST = _chunk({}, "stop") + b"%x\r\ndata: [DONE]\n\n\r\n0\r\n\r\n" % len(b"data: [DONE]\n\n")
WHOLE = json.dumps(
    {
        **_BASE,
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": REPLY, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 412, "completion_tokens": 16, "total_tokens": 428},
    }
).encode()


async def _answer(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first: float, every: float
) -> None:
    try:
        while True:  # keep-alive: the SDK reuses its connections
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = json.loads(await reader.readexactly(length)) if length else {}
            await asyncio.sleep(first)
            if not body.get("stream"):
                await asyncio.sleep(every * (len(TOKENS) - 1))
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(WHOLE), WHOLE)
                )
                await writer.drain()
                continue
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" + FIRST + CONTENT[0]
            )
            await writer.drain()
            for token in CONTENT[1:]:
                await asyncio.sleep(every)
                writer.write(token)
                await writer.drain()
            writer.write(LAST)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def serve(port: int, first: float, every: float) -> None:
    server = await asyncio.start_server(
        lambda r, w: _answer(r, w, first, every), "127.0.0.1", port, backlog=2048
    )
    print(f"llm stub on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.llm_stub")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--first-token", type=float, default=0.5)
    p.add_argument("--interval", type=float, default=0.02)
    args = p.parse_args()
    asyncio.run(serve(args.port, args.first_token, args.interval))


if __name__ == "__main__":
    main()
