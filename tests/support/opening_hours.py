"""Instants the escalation tests pin the clock to, by what the example clinics make of them."""

from __future__ import annotations

from datetime import UTC, datetime

# Tuesday 24 November 2026: 10:00 in London, 11:00 in Berlin (both open).
OPEN = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
# Sunday: every example clinic in Europe is closed.
CLOSED = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
