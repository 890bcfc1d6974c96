"""X-Twilio-Signature validation against PUBLIC_BASE_URL + path + query.

Never `request.url`: behind a proxy or tunnel the host and scheme Flask sees are not the
ones Twilio signed.
"""

from __future__ import annotations

from flask import Request
from twilio.request_validator import RequestValidator, get_signature_algorithm


def signed_url(base_url: str, request: Request) -> str:
    query = request.query_string.decode("latin-1")
    return base_url + request.path + (f"?{query}" if query else "")


def is_valid(validator: RequestValidator, base_url: str, request: Request) -> bool:
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    algorithm = get_signature_algorithm(
        request.headers.get("X-Twilio-Webhooks-Signature-Settings", "")
    )
    return bool(
        validator.validate(signed_url(base_url, request), request.form, signature, algorithm)
    )
