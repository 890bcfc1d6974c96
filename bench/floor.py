"""The floor: a bare Flask app answering fixed TwiML, served exactly like the gateway.

Its req/s is what this machine, gunicorn and Flask can do with no application work;
the gateway's scenarios are reported as a ratio of it.
"""

from __future__ import annotations

from flask import Flask, Response

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hello</Say></Response>'


def create_app() -> Flask:
    app = Flask(__name__)

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
    @app.route("/<path:path>", methods=["GET", "POST"])
    def answer(path: str) -> Response:
        return Response(TWIML, mimetype="text/xml")

    return app
