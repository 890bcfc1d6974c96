"""Flask blueprints for Twilio: signature check, form -> typed event, one service, TwiML."""

from webhooks import dial, outbound, recordings, sms, turn, unavailable, voice  # noqa: F401
from webhooks.blueprint import bp

# Each route module above adds its views to `bp` when imported.
__all__ = ["bp"]
