"""Placing an outbound call: the one place that builds Twilio's Calls request (the TwiML
URL, the status callback, machine detection, how long it rings) and logs the call.

Each sender describes its kind of call once (`CallKind`) and places it by the id of its
own row; the id rides in both URLs' query strings, which Twilio signs with the rest of the
URL, so the webhooks know which reminder, attempt or alert a call is for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from callgateway.adapters.twilio_rest import PermanentError
from callgateway.calls import log as call_log
from callgateway.config import Clinic
from callgateway.sms.delivery import clinic_number

if TYPE_CHECKING:
    from callgateway.wiring import Services

STATUS_PATH = "/twilio/outbound/call/status"
STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]


@dataclass(frozen=True)
class CallKind:
    """One kind of outbound call, as Twilio is asked to place it."""

    purpose: str  # the call log's purpose: reminder | checkin | alert
    twiml_path: str  # the webhook Twilio asks what to say once the call connects
    ref: str  # the query parameter naming the sender's row: reminder | attempt | alert
    # Enable: answered by a person or a machine, known at once. DetectMessageEnd: on a
    # machine, Twilio waits for the beep before it fetches the TwiML.
    machine_detection: Literal["Enable", "DetectMessageEnd"]
    ring_seconds: int = 30


def call_request(
    kind: CallKind, ref_id: int, to: str, from_: str, url: Callable[[str], str]
) -> dict[str, str | list[str]]:
    """Twilio's Calls API fields for one call; `url` makes our paths absolute."""
    query = f"?{kind.ref}={ref_id}"
    return {
        "To": to,
        "From": from_,
        "Url": url(kind.twiml_path + query),
        "Method": "POST",
        "StatusCallback": url(STATUS_PATH + query),
        "StatusCallbackMethod": "POST",
        "StatusCallbackEvent": STATUS_EVENTS,
        "Timeout": str(kind.ring_seconds),
        "MachineDetection": kind.machine_detection,
    }


def place_call(services: Services, clinic: Clinic, to: str, kind: CallKind, ref_id: int) -> str:
    """Ask Twilio to call `to` from the clinic's number; log the call (direction outbound)
    under its CallSid, which is returned.

    The log row's `cli` is the other party's number and `called` the clinic's, as on
    inbound rows, so that the call log, rights export and erase find every call with a
    person by the same column.
    """
    assert services.twilio is not None
    from_ = clinic_number(clinic)
    result = services.twilio.create_call(**call_request(kind, ref_id, to, from_, services.url))
    call_sid = str(result.get("sid") or "")
    if not call_sid:
        raise PermanentError("twilio created a call without a sid")
    with services.db.session() as session:
        call_log.start_call(
            session,
            services.config,
            call_log.CallStart(
                call_sid=call_sid,
                cli=to,
                called=from_,
                clinic=clinic,
                at=services.clock(),
                direction="outbound",
                purpose=kind.purpose,
            ),
        )
    return call_sid
