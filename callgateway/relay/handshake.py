"""The WebSocket handshake's X-Twilio-Signature: the same validator and token as the
webhooks, over the relay's public URL (RELAY_PUBLIC_URL, else PUBLIC_BASE_URL as wss)
plus the query, never the Host the process happens to see behind a proxy.

A handshake has no form, so its signature covers the URL alone and is the same for every
session on that URL: a captured handshake could be replayed. What it opens is therefore
still nothing until `setup` names a call this gateway opened for the AI and that has had
no session yet (`calls.relay.claim`).
"""

from __future__ import annotations

import hmac

from twilio.request_validator import RequestValidator


def signed_url(relay_url: str, query_string: bytes) -> str:
    query = query_string.decode("latin-1")
    return relay_url + (f"?{query}" if query else "")


def is_signed(validator: RequestValidator, url: str, signature: str) -> bool:
    if not signature:
        return False
    expected = validator.compute_signature(url, {})
    if hmac.compare_digest(expected.encode(), signature.encode()):
        return True
    # Twilio's signer is inconsistent about default ports; accept either form.
    return bool(validator.validate(url, {}, signature))
