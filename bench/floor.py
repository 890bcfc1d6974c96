"""The floor, and two reference apps that show where the gateway's budget goes.

`create_app`: a bare Flask app answering fixed TwiML, served exactly like the gateway. Its
req/s is what this machine, gunicorn and Flask can do with no application work; the
gateway's scenarios are reported as a ratio of it.

The references are not targets, they are the least any voice webhook on this stack must do,
measured in the same run so the gateway's ratio can be read against them:

- `create_signed_app`: the floor plus the gateway's own signature check
  (webhooks.signature, the twilio package's RequestValidator), which every webhook must run.
- `create_minimal_app`: that, plus one JSON log line and one Redis command writing the
  call (an XADD, redis-py's cheapest write: a pipeline costs nearly twice the CPU): a
  webhook that keeps anything, and no more. No clinic lookup, no consent, no database.
"""

from __future__ import annotations

import logging
import os
import time

from flask import Flask, Response, request

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hello</Say></Response>'
REFERENCE_STREAM = "bench:reference"  # never the gateway's journal: nothing applies it


def create_app() -> Flask:
    app = Flask(__name__)

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
    @app.route("/<path:path>", methods=["GET", "POST"])
    def answer(path: str) -> Response:
        return Response(TWIML, mimetype="text/xml")

    return app


def create_signed_app() -> Flask:
    from twilio.request_validator import RequestValidator

    from webhooks.signature import is_valid

    validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
    app = Flask(__name__)

    @app.post("/<path:path>")
    def answer(path: str) -> Response:
        # The bench signs against this server's own address (loopback, no proxy).
        if not is_valid(validator, request.host_url.rstrip("/"), request):
            return Response("invalid signature\n", status=403, mimetype="text/plain")
        return Response(TWIML, mimetype="text/xml")

    return app


def create_minimal_app() -> Flask:
    import redis
    from twilio.request_validator import RequestValidator

    from callgateway import logs
    from webhooks.signature import is_valid

    logs.configure()
    log = logging.getLogger("bench.reference")
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
    app = Flask(__name__)

    @app.post("/<path:path>")
    def answer(path: str) -> Response:
        started = time.perf_counter()
        if not is_valid(validator, request.host_url.rstrip("/"), request):
            return Response("invalid signature\n", status=403, mimetype="text/plain")
        form = request.form
        sid = form.get("CallSid", "")
        row = f'{{"call_sid":"{sid}","to":"{form.get("To", "")}"}}'
        client.xadd(REFERENCE_STREAM, {"d": row}, maxlen=10_000, approximate=True)
        log.info(
            "webhook",
            extra={
                "path": request.path,
                "status": 200,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                "call_sid": sid,
            },
        )
        return Response(TWIML, mimetype="text/xml")

    return app
