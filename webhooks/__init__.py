"""Flask blueprints for Twilio: signature check, form -> typed event, one service, TwiML."""

from webhooks.blueprint import bp

__all__ = ["bp"]
