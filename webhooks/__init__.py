"""Flask blueprints for Twilio: signature check, form -> typed event, one service, TwiML."""

from webhooks import (  # noqa: F401
    console_callback,
    dial,
    outbound,
    recordings,
    relay,
    sms,
    turn,
    unavailable,
    voice,
)
from webhooks.blueprint import bp

# Each route module above adds its views to `bp` when imported.
__all__ = ["bp"]
