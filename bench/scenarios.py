"""The benchmark scenarios, in one place: change a path or a target here and nowhere else.

Each scenario is a server ("floor" = the bare Flask app, "signed" and "minimal" = the
references of bench.floor, "app" = CallGateway), a path
(with query, if any: it is part of the signed URL) and a function building the POST form
for request number ``i``. Scenarios run in the order listed; ``uses_calls`` scenarios act
on the CallSids that the ``voice`` run actually created, so the agent really runs.

Calls go to a clinic that does not record (the first such clinic in the config): its
first voice answer is the greeting and the agent's Gather, so the voice figure covers the
whole first answer (call row, consent gate, live state, transcript) and the turns land on
a live conversation. A recording clinic's first answer is only the announcement and a
redirect, which is cheaper and would flatter the figure.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

# The agent's Gather action, as the voice TwiML names it (callgateway.calls.gather).
# Paths may name form fields, filled per request: "/twilio/voice/turn?call={CallSid}".
TURN_PATH = "/twilio/voice/turn"
RECORDING_PATH = "/twilio/voice/recording/status?kind=recording"

ACCOUNT_SID = "AC" + "b" * 32
API_VERSION = "2010-04-01"
# One caller booking with the rules agent, turn by turn: intent, type, time, confirm,
# goodbye. No emergency phrase, no opt-out, no request for a person. The time is each
# caller's own when the run has them (Context.when, bench.diary), else this one.
CONVERSATION = (
    "I'd like to book an appointment",
    "a consultation please",
    "next Tuesday afternoon",
    "yes",
    "no thanks",
)


@dataclass
class Context:
    """Run-wide facts the request builders need."""

    to_number: str  # a clinic number from the config, so calls are routed, not rejected
    to_country: str = "GB"
    call_sids: list[str] = field(default_factory=list)  # the calls a scenario acts on
    # Calls per block of a conversation layout (see `conversation_step`); a multiple of
    # wrk's thread count and well above its connection count.
    block: int = 256
    # Distinct times callers ask for (bench.diary), by call; empty: all say CONVERSATION's.
    when: tuple[str, ...] = ()
    when_base: int = 0  # call k of this run asks for when[when_base + k]


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex  # Twilio SIDs: 2 letters + 32 hex


def caller(i: int) -> str:
    # Ofcom's drama range +447700900000-999: realistic UK mobiles that can never be real.
    return f"+447700900{i % 1000:03d}"


def conversation_step(i: int, calls: int, steps: int, block: int) -> tuple[int, int]:
    """Request ``i`` of a layout where every call takes ``steps`` requests, in order.

    Calls go in blocks of ``block``: step 0 for each call of the block, then step 1 for
    each, and so on; then the next block. Two steps of one call are ``block`` lines apart,
    so with fewer connections than that in flight they are never sent concurrently (one
    call's Gather results come one at a time from Twilio too). With ``block`` a multiple
    of wrk's thread count, all of a call's lines go to the same wrk thread (replay.lua
    gives thread k the lines k, k+T, ...). Returns (call index, step); past the end it
    wraps and the conversations repeat.
    """
    total = calls * steps
    i %= total
    full = (calls // block) * block * steps
    if i < full:
        n, r = divmod(i, block * steps)
        start, width = n * block, block
    else:  # the last, narrower block
        start = calls // block * block
        width, r = calls - start, i - full
    step, pos = divmod(r, width)
    return start + pos, step


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
        "ToCity": "",
        "ToState": "",
        "ToZip": "",
    }


def _caller_index(call_sid: str) -> int:
    # The same caller number for every request of one call, as Twilio sends it.
    return int(call_sid[-6:], 16)


def voice_params(ctx: Context, i: int) -> dict[str, str]:
    sid = new_sid("CA")
    return _call_fields(ctx, sid, _caller_index(sid), "ringing")


TIME_STEP = 2  # the CONVERSATION line that names a time


def turn_form(ctx: Context, call_sid: str, step: int, call: int) -> dict[str, str]:
    """Turn `step` of call number `call` (which picks the time the caller asks for)."""
    p = _call_fields(ctx, call_sid, _caller_index(call_sid), "in-progress")
    step %= len(CONVERSATION)
    said = CONVERSATION[step]
    if step == TIME_STEP and ctx.when:
        said = ctx.when[(ctx.when_base + call) % len(ctx.when)]
    p.update(SpeechResult=said, Confidence="0.92")
    return p


def status_form(ctx: Context, call_sid: str, i: int) -> dict[str, str]:
    p = _call_fields(ctx, call_sid, _caller_index(call_sid), "completed")
    duration = 30 + i % 240
    p.update(
        CallDuration=str(duration),
        Duration=str(duration // 60 + 1),
        CallbackSource="call-progress-events",
        SequenceNumber="0",
    )
    return p


def turn_params(ctx: Context, i: int) -> dict[str, str]:
    call, step = conversation_step(i, len(ctx.call_sids), len(CONVERSATION), ctx.block)
    return turn_form(ctx, ctx.call_sids[call], step, call)


def status_params(ctx: Context, i: int) -> dict[str, str]:
    return status_form(ctx, ctx.call_sids[i % len(ctx.call_sids)], i)


WHOLE_CALL_STEPS = 2 + len(CONVERSATION)  # voice, the conversation's turns, status


def whole_call(ctx: Context, call_sid: str, step: int) -> tuple[str, dict[str, str]]:
    """Step ``step`` of one whole call as Twilio sends it: (path, form)."""
    if step == 0:
        return "/twilio/voice", _call_fields(ctx, call_sid, _caller_index(call_sid), "ringing")
    if step <= len(CONVERSATION):
        return TURN_PATH, turn_form(ctx, call_sid, step - 1, _caller_index(call_sid))
    return "/twilio/voice/status", status_form(ctx, call_sid, _caller_index(call_sid))


def recording_params(ctx: Context, i: int) -> dict[str, str]:
    """Twilio's recording status callback: a new recording (RecordingSid) every request."""
    call_sid = ctx.call_sids[i % len(ctx.call_sids)]
    rec = new_sid("RE")
    return {
        "AccountSid": ACCOUNT_SID,
        "CallSid": call_sid,
        "RecordingSid": rec,
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{rec}",
        "RecordingStatus": "completed",
        "RecordingDuration": str(20 + i % 300),
        "RecordingChannels": "1",
        "RecordingSource": "StartCallRecordingAPI",
        "RecordingStartTime": "Tue, 03 Mar 2026 10:00:00 +0000",
        "ErrorCode": "0",
    }


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
    server: Literal["floor", "signed", "minimal", "app"]
    path: str
    params: Callable[[Context, int], dict[str, str]]
    min_ratio: float | None = None  # of the floor's req/s
    max_p99_ms: float | None = None  # at one request per worker (no queueing)
    uses_calls: bool = False  # acts on the calls the voice run created
    # Requests per call before the data repeats (turn: the conversation, status: one);
    # None: every request carries a new id, as many as the run can send.
    steps_per_call: int | None = None

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
    # References (bench.floor): the floor plus the signature check; plus a log line and one
    # Redis XADD. Reported, no target: they show how much of the floor any webhook keeps.
    Scenario("signed", "signed", "/twilio/voice", voice_params),
    Scenario("minimal", "minimal", "/twilio/voice", voice_params),
    Scenario("voice", "app", "/twilio/voice", voice_params, min_ratio=0.5, max_p99_ms=25),
    # turn before status: a Gather result on a completed call would measure the wrong path.
    Scenario(
        "turn",
        "app",
        TURN_PATH,
        turn_params,
        min_ratio=0.4,
        max_p99_ms=50,
        uses_calls=True,
        steps_per_call=len(CONVERSATION),
    ),
    Scenario(
        "status", "app", "/twilio/voice/status", status_params, uses_calls=True, steps_per_call=1
    ),
    Scenario("recording", "app", RECORDING_PATH, recording_params, uses_calls=True),
    Scenario("sms", "app", "/twilio/sms", sms_params),
)

BY_NAME = {s.name: s for s in SCENARIOS}
