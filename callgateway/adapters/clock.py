"""Time as a replaceable dependency: services take a Clock, tests can pin it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def fixed(at: datetime) -> Clock:
    return lambda: at
