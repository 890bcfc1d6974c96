"""The agent's Gather action: one caller turn (speech, a key, or silence)."""

from __future__ import annotations

from flask import Response, request

from callgateway import events
from callgateway.calls import gather
from callgateway.calls.twiml import apology_and_hangup
from webhooks.blueprint import bp, services, twiml
from webhooks.forms import BadEvent, ascii_int, our_number, sid, text_field, their_number

MALFORMED = "Sorry, something went wrong with this call. Please try again later."


def _confidence(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw else None
    except ValueError:
        return None
    return value if value is not None and 0.0 <= value <= 1.0 else None


def _step(raw: str | None) -> int | None:
    """The Gather action's `?step=`: which turn of the call this answers (calls/once)."""
    step = ascii_int(raw)
    return step if step is not None and 0 < step <= gather.MAX_STEP else None


@bp.post("/voice/turn")
def agent_turn() -> Response:
    try:
        call_sid = sid(request.form, "CallSid", "CA")
    except BadEvent:
        return twiml(apology_and_hangup(MALFORMED))
    digits = text_field(request.form, "Digits", 12).strip()
    event = events.TurnEvent(
        call_sid=call_sid,
        speech=text_field(request.form, "SpeechResult", 1000),
        confidence=_confidence(request.form.get("Confidence")),
        digits=digits if digits.isdigit() or digits in ("*", "#") else "",
        cli=their_number(request.form.get("From")),
        called=our_number(request.form.get("To")),
        step=_step(request.args.get("step")),
    )
    return twiml(gather.turn(services(), event))
