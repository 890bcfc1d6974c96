"""The benchmark scenarios, in one place: change a path or a target here and nowhere else.

Each scenario is a server ("floor" = the bare Flask app, "app" = CallGateway), a path
(with query, if any: it is part of the signed URL) and a function building the POST form
for request number ``i``. Scenarios run in the order listed; ``uses_calls`` scenarios
replay the CallSids that the ``voice`` run actually sent, so they act on real calls.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

# The agent's gather action. Owned by the app team: if they move it, change this line.
# Paths may name form fields, filled per request: "/twilio/voice/gather?call={CallSid}".
TURN_PATH = "/twilio/voice/gather"

ACCOUNT_SID = "AC" + "b" * 32
API_VERSION = "2010-04-01"
# Benign, deterministic caller speech: no emergency phrase, no opt-out, no escalation.
TURN_SPEECH = (
    "what time are you open on tuesday",
    "I would like to book an initial assessment",
    "do you have anything next week",
)


@dataclass
class Context:
    """Run-wide facts the request builders need."""

    to_number: str  # a clinic number from the config, so calls are routed, not rejected
    to_country: str = "GB"
    call_sids: list[str] = field(default_factory=list)  # filled after the voice run


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex  # Twilio SIDs: 2 letters + 32 hex


def caller(i: int) -> str:
    # Ofcom's drama range +447700900000-999: realistic UK mobiles that can never be real.
    return f"+447700900{i % 1000:03d}"


def _call_fields(ctx: Context, call_sid: str, i: int, status: str) -> dict[str, str]:
    frm = caller(i)
    return {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": API_VERSION,
        "CallSid": call_sid,
        "CallStatus": status,
        "Direction": "inbound",
        "From": frm,
        "Caller": frm,
        "FromCountry": "GB",
        "CallerCountry": "GB",
        "FromCity": "",
        "FromState": "",
        "FromZip": "",
        "To": ctx.to_number,
        "Called": ctx.to_number,
        "ToCountry": ctx.to_country,
        "CalledCountry": ctx.to_country,
        "ToCity": "LONDON",
        "ToState": "",
        "ToZip": "",
    }


def voice_params(ctx: Context, i: int) -> dict[str, str]:
    return _call_fields(ctx, new_sid("CA"), i, "ringing")


def status_params(ctx: Context, i: int) -> dict[str, str]:
    p = _call_fields(ctx, ctx.call_sids[i % len(ctx.call_sids)], i, "completed")
    duration = str(30 + i % 240)
    p.update(
        CallDuration=duration,
        Duration=str(int(duration) // 60 + 1),
        CallbackSource="call-progress-events",
        SequenceNumber="0",
    )
    return p


def turn_params(ctx: Context, i: int) -> dict[str, str]:
    p = _call_fields(ctx, ctx.call_sids[i % len(ctx.call_sids)], i, "in-progress")
    p.update(SpeechResult=TURN_SPEECH[i % len(TURN_SPEECH)], Confidence="0.92")
    return p


def sms_params(ctx: Context, i: int) -> dict[str, str]:
    sid = new_sid("SM")
    return {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": API_VERSION,
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": "hello",
        "NumMedia": "0",
        "NumSegments": "1",
        "From": caller(i),
        "FromCountry": "GB",
        "To": ctx.to_number,
        "ToCountry": ctx.to_country,
    }


@dataclass(frozen=True)
class Scenario:
    name: str
    server: Literal["floor", "app"]
    path: str
    params: Callable[[Context, int], dict[str, str]]
    min_ratio: float | None = None  # of the floor's req/s
    max_p99_ms: float | None = None
    uses_calls: bool = False

    @property
    def has_target(self) -> bool:
        return self.min_ratio is not None or self.max_p99_ms is not None

    def target_text(self) -> str:
        parts = []
        if self.min_ratio is not None:
            parts.append(f">={self.min_ratio:g}x")
        if self.max_p99_ms is not None:
            parts.append(f"p99<{self.max_p99_ms:g}ms")
        return " ".join(parts) or "report"


SCENARIOS: tuple[Scenario, ...] = (
    # The floor gets the same body and headers as `voice`, so the ratio isolates the app.
    Scenario("floor", "floor", "/twilio/voice", voice_params),
    Scenario("voice", "app", "/twilio/voice", voice_params, min_ratio=0.5, max_p99_ms=25),
    # turn before status: a gather on a completed call would measure the wrong path.
    Scenario("turn", "app", TURN_PATH, turn_params, min_ratio=0.4, max_p99_ms=50, uses_calls=True),
    Scenario("status", "app", "/twilio/voice/status", status_params, uses_calls=True),
    Scenario("sms", "app", "/twilio/sms", sms_params),
)

BY_NAME = {s.name: s for s in SCENARIOS}
