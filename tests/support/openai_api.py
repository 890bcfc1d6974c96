"""Chat Completions answers as the OpenAI API sends them (the official SDK parses each), and
the example config with the Riverside clinic on the OpenAI agent."""

from __future__ import annotations

import json
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
