"""The `twilio` blueprint: every request is signature-checked before anything else runs."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from flask import Blueprint, Response, current_app, g, request
from twilio.request_validator import RequestValidator

from callgateway import metrics
from webhooks.signature import is_valid_for_any

if TYPE_CHECKING:
    from callgateway.wiring import Services

log = logging.getLogger("callgateway.webhooks")

bp = Blueprint("twilio", __name__, url_prefix="/twilio")
FORM = "application/x-www-form-urlencoded"


def services() -> Services:
    return current_app.extensions["callgateway"]


def twiml(body: str) -> Response:
    return Response(body, status=200, mimetype="text/xml")


def empty() -> Response:
    return Response("", status=200, mimetype="text/plain")


# App-wide hooks: the webhook app holds this blueprint alone (callgateway.app.webhook_app),
# and a blueprint's own hooks don't run when routing fails, which would answer an unsigned
# request to an unknown path or with GET with 404/405 rather than 403.
@bp.before_app_request
def _verify_signature() -> Response | None:
    g.started = time.perf_counter()
    svc = services()
    validators: tuple[RequestValidator, ...] = current_app.extensions["callgateway.validators"]
    if not is_valid_for_any(validators, svc.settings.public_base_url, request):
        # Nothing else runs for this request: no row, no cache, no message.
        g.rejected = True
        return Response("invalid signature\n", status=403, mimetype="text/plain")
    return None


@bp.after_app_request
def _log_line(response: Response) -> Response:
    started = g.get("started")
    elapsed = time.perf_counter() - started if started else None
    latency_ms = round(elapsed * 1000, 2) if elapsed is not None else None
    if elapsed is not None:
        # The route's rule, not the path: a fixed set of label values whatever is sent.
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics.WEBHOOK_SECONDS.labels(rule, str(response.status_code)).observe(elapsed)
    # Ids only from a signed request whose body was read: a rejected one's form is the
    # sender's word alone, and reading a body over MAX_CONTENT_LENGTH here (a 413, or a
    # 403 whose signature check refused it unread) would raise out of after_request,
    # turning the answer into a 500.
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    oversized = limit is not None and (request.content_length or 0) > limit
    readable = not (g.get("rejected") or oversized or response.status_code == 413)
    form = request.form if readable and request.mimetype == FORM else {}
    log.info(
        "webhook",
        extra={
            "path": request.path,
            "status": response.status_code,
            "latency_ms": latency_ms,
            "call_sid": form.get("CallSid"),
            "message_sid": form.get("MessageSid"),
            "recording_sid": form.get("RecordingSid"),
            "clinic": g.get("clinic_id"),
            "rejected": bool(g.get("rejected")),
        },
    )
    return response
