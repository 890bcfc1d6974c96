"""`/healthz` (the process serves) and `/readyz` (it can serve a caller end to end)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from callgateway.ops.health import Readiness, report

bp = Blueprint("ops", __name__)
READINESS = "callgateway.readiness"


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
