"""Structured JSON logs. Nothing personal in clear: numbers are masked before they get here,
and a last-resort filter masks anything that still looks like a phone number."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from callgateway.phone import mask

_NUMBER = re.compile(r"(?<![\w+])\+?\d(?:[\s().-]?\d){7,14}(?!\w)")
# Fields we write ourselves that are never personal (and would trip the number pattern).
_SAFE = {"ts", "latency_ms", "call_sid", "message_sid", "recording_sid"}
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _NUMBER.sub(lambda m: mask(re.sub(r"[^\d+]", "", m.group())), value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            payload["error"] = record.exc_info[0].__name__
        clean = {k: v if k in _SAFE else _scrub(v) for k, v in payload.items()}
        return json.dumps(clean, default=str)


def configure(level: str = "INFO") -> None:
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    # Library loggers that would print URLs with numbers in them at INFO/DEBUG.
    for name in ("twilio", "botocore", "urllib3", "httpx", "openai", "werkzeug"):
        logging.getLogger(name).setLevel(logging.WARNING)
