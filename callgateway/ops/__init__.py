"""Running the gateway as a service: liveness, readiness and (later) metrics.

`blueprint.py` serves `/healthz` and `/readyz` from their own small Flask app (built by
`callgateway.app`, like the webhook app: no session, no login, no CSRF); `health.py` holds
the readiness checks.
"""
