"""The app factory: settings, config, database, Redis and the blueprints, wired once."""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask
from twilio.request_validator import RequestValidator
from werkzeug.middleware.proxy_fix import ProxyFix

from callgateway import journal, logs
from callgateway.wiring import Services, bootstrap


def create_app(
    test_config: dict[str, Any] | None = None, services: Services | None = None
) -> Flask:
    logs.configure()
    services = services or bootstrap()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=services.settings.secret_key,
        # Twilio's forms are small; a huge body is an attack, not a call.
        MAX_CONTENT_LENGTH=256 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=not services.settings.is_dev,
    )
    if test_config:
        app.config.update(test_config)
    app.extensions["callgateway"] = services
    app.extensions["callgateway.validator"] = RequestValidator(services.settings.twilio_auth_token)

    from webhooks import bp as twilio_bp

    app.register_blueprint(twilio_bp)

    from callgateway.console import init_app as init_console

    init_console(app)  # login, CSRF on every form (the twilio blueprint exempt), /console

    if services.settings.trusted_proxies:
        # Webhook signatures never depend on this (they use PUBLIC_BASE_URL); the console's
        # rate limit and audit trail need the client's address, not the proxy's.
        n = services.settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]

    _warm_up_once(services)
    # The call journal's drainer (background mode): one thread per web process.
    journal.start_drainer(services)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


_warmed = threading.Event()


def _warm_up_once(services: Services) -> None:
    """Load the slow imports of the first AI turn (dateparser's data, the OpenAI SDK) in the
    background, once per process: the worker boots at once, and no caller waits in silence
    for an import on their first turn."""
    if _warmed.is_set():
        return
    _warmed.set()
    wants_openai = any(c.agent_kind == "openai" for c in services.config.clinics)

    def load() -> None:
        from callgateway.booking import dates

        dates.warm_up()
        if wants_openai:
            import callgateway.agent.openai_agent  # noqa: F401

    threading.Thread(target=load, name="warm-up", daemon=True).start()
