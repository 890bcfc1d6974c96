"""A person at the clinic answers a patient's text from the console.

Never to a number that has opted out at the clinic: Twilio would refuse it with 21610 if
they texted STOP, and whatever the channel of the opt-out, the patient asked for no texts.
We refuse first, with the reason in words. A state we cannot read refuses too (fail closed).
The reply goes through `delivery.send_sms` (message row first, signed status callback,
21610 recorded as an opt-out), keyed by the form's request id so that a double submit is
one message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from callgateway.adapters.twilio_rest import AmbiguousError, PermanentError, TransientError
from callgateway.config import Clinic
from callgateway.phone import ANONYMOUS
from callgateway.sms import delivery
from consent import gate as consent_gate

if TYPE_CHECKING:
    from callgateway.wiring import Services

MAX_BODY = 1600  # Twilio's limit for one message's body
KIND = "staff-reply"


class ReplyRefused(Exception):
    """Not sent; the message is a sentence for the member of staff."""


@dataclass(frozen=True)
class Sent:
    message_sid: str


def key(message_id: int, request_id: str) -> str:
    return f"reply:{message_id}:{request_id}"


def reply(
    services: Services, clinic: Clinic, to: str, body: str, message_id: int, request_id: str
) -> Sent:
    text = (body or "").strip()
    if not text:
        raise ReplyRefused("Not sent: the reply is empty.")
    if len(text) > MAX_BODY:
        raise ReplyRefused(f"Not sent: a text can be at most {MAX_BODY} characters.")
    if not to or to == ANONYMOUS:
        raise ReplyRefused("Not sent: the sender's number is withheld.")
    decision = services.gate.may(clinic.id, to, "automated_sms", ledger_only=True)
    if decision.reason == consent_gate.OPTED_OUT:
        raise ReplyRefused(
            "Not sent: this number has opted out of texts from the clinic (for example by "
            "texting STOP). Twilio would refuse it too. Call them instead, or record their "
            "opt-in on the Consent page if they ask to hear from you again."
        )
    if not decision.allowed:
        raise ReplyRefused(
            "Not sent: the number's consent could not be checked just now. Try again in a minute."
        )
    if services.twilio is None:
        raise ReplyRefused("Not sent: texting is not set up for this gateway (no Twilio account).")
    try:
        sid = delivery.send_sms(
            services, clinic, to, text, kind=KIND, idempotency_key=key(message_id, request_id)
        )
    except delivery.OptedOutAtTwilio:
        raise ReplyRefused(
            "Not sent: Twilio says this number has opted out (they texted STOP). It is now "
            "recorded as opted out here too."
        ) from None
    except AmbiguousError:
        raise ReplyRefused(
            "Twilio did not answer in time: the text may or may not have gone. Press Send "
            "again to check and send it only if it did not."
        ) from None
    except TransientError:
        raise ReplyRefused("Not sent: Twilio is not answering. Try again in a minute.") from None
    except PermanentError as exc:
        raise ReplyRefused(f"Not sent: Twilio refused the text (error {exc.code}).") from None
    return Sent(sid)
