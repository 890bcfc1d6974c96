"""`/healthz` (the process serves), `/readyz` (it can serve a caller end to end) and
`/metrics` (Prometheus, for a configured network or a bearer token only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST

from callgateway.ops.health import Readiness, report
from callgateway.ops.metrics import access, exposition

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from callgateway.wiring import Services

bp = Blueprint("ops", __name__)
READINESS = "callgateway.readiness"
STATE_METRICS = "callgateway.state_metrics"


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    # Liveness only: touches nothing, so a restart is never triggered by a dependency's
    # outage (that is what /readyz is for: take the process out of rotation, keep it).
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> Response:
    readiness: Readiness = current_app.extensions[READINESS]
    ready, body = report(readiness.run())
    response = jsonify(body)
    response.status_code = 200 if ready else 503
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/metrics")
def metrics() -> Response:
    services: Services = current_app.extensions["callgateway"]
    status = access(services.settings, request.remote_addr, request.headers.get("Authorization"))
    if status != 200:
        return Response("", status=status, mimetype="text/plain")
    state: CollectorRegistry = current_app.extensions[STATE_METRICS]
    response = Response(exposition(state), mimetype=None)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    response.headers["Cache-Control"] = "no-store"
    return response
