"""The app factory: settings, config, database, Redis and the blueprints, wired once."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask, Request
from flask.sessions import SessionInterface
from twilio.request_validator import RequestValidator
from werkzeug.middleware.proxy_fix import ProxyFix

from callgateway import logs
from callgateway.calls import log as call_log
from callgateway.wiring import Services, bootstrap

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


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
    # One per accepted signing token: the primary, and the secondary during a rotation.
    app.extensions["callgateway.validators"] = tuple(
        RequestValidator(token) for token in services.settings.webhook_signing_tokens
    )

    from callgateway.console import init_app as init_console

    init_console(app)  # login, CSRF on every form, /console

    console_wsgi = app.wsgi_app
    if services.settings.trusted_proxies:
        # Webhook signatures never depend on this (they use PUBLIC_BASE_URL); the console's
        # rate limit and audit trail need the client's address, not the proxy's.
        n = services.settings.trusted_proxies
        console_wsgi = ProxyFix(console_wsgi, x_for=n, x_proto=n)  # type: ignore[assignment]
    hooks = webhook_app(app)
    app.extensions[WEBHOOK_APP] = hooks
    ops = ops_app(app)
    app.extensions[OPS_APP] = ops
    ops_wsgi = ops.wsgi_app
    if services.settings.trusted_proxies:
        n = services.settings.trusted_proxies
        ops_wsgi = ProxyFix(ops_wsgi, x_for=n, x_proto=n)  # type: ignore[assignment]
    app.wsgi_app = _by_path(hooks.wsgi_app, ops_wsgi, console_wsgi)  # type: ignore[method-assign]

    _warm_up_once(services)
    # The call journal's drainer (background mode): one thread per web process.
    call_log.start_background_writer(services)

    return app


WEBHOOK_APP = "callgateway.webhook_app"
OPS_APP = "callgateway.ops_app"
# Served by the ops app: the probes a load balancer, an orchestrator or Prometheus polls.
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def ops_app(app: Flask) -> Flask:
    """Health and readiness as their own small Flask app, like the webhooks: polled every
    few seconds, they need no session, login or CSRF, and must not cost what a page does."""
    from callgateway.ops.blueprint import READINESS, STATE_METRICS
    from callgateway.ops.blueprint import bp as ops_bp
    from callgateway.ops.health import Readiness
    from callgateway.ops.metrics import state_registry

    ops = Flask("callgateway.ops")
    ops.session_interface = _NoSessions()
    ops.config.update(app.config)
    ops.extensions.update(app.extensions)
    ops.extensions[READINESS] = Readiness(app.extensions["callgateway"])
    ops.extensions[STATE_METRICS] = state_registry(app.extensions["callgateway"])
    ops.register_blueprint(ops_bp)
    return ops


def webhook_app(app: Flask) -> Flask:
    """The Twilio surface as its own Flask app, served from the same process and port.

    It holds the twilio blueprint and nothing else: no cookie session, no login manager, no
    CSRF hook, none of which a webhook uses, and which cost every webhook a fifth of its
    time. The console can't be reached through it, nor the webhooks through the console.
    """
    from webhooks import bp as twilio_bp

    hooks = Flask("callgateway.webhooks")
    hooks.session_interface = _NoSessions()
    hooks.config.update(app.config)
    hooks.extensions.update(app.extensions)
    hooks.register_blueprint(twilio_bp)
    return hooks


class _NoSessions(SessionInterface):
    """Twilio sends no cookies and gets none: Flask's null session, never opened or saved."""

    def open_session(self, app: Flask, request: Request) -> None:
        return None


def _by_path(
    webhooks: WSGIApplication, ops: WSGIApplication, console: WSGIApplication
) -> WSGIApplication:
    def dispatch(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/twilio/"):
            return webhooks(environ, start_response)
        if path in OPS_PATHS:
            return ops(environ, start_response)
        return console(environ, start_response)

    return dispatch


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
        # What exists now (modules, dateparser's data, the config) lives as long as the
        # process: out of the cyclic GC's sight, a full collection scans a few thousand
        # objects instead of ~180,000, and its pause drops from ~100 ms to a few ms for
        # whichever caller's request it lands in. The collect first, so no garbage is kept.
        gc.collect()
        gc.freeze()

    threading.Thread(target=load, name="warm-up", daemon=True).start()
