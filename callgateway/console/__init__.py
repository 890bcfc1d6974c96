"""The staff console: a Flask blueprint with login, CSRF on every form, and staff pages.

`init_app(app)` wires what the console needs app-wide (login manager, CSRF protection) and
registers the blueprint. The Twilio webhooks are a separate app (`callgateway.app`), so
neither CSRF nor the login session ever touches them: their signature is their proof.
Pages live in small modules, one per area, each adding views to `bp` (`blueprint.py`) and
reading through `queries/`, one module of small query functions per page.
"""

from __future__ import annotations

from flask import Flask

from callgateway.console.blueprint import bp


def init_app(app: Flask) -> None:
    from flask_wtf.csrf import CSRFProtect

    from callgateway.console import auth, filters
    from callgateway.console.ids import Id64Converter

    # The token lives as long as the login session; an hour-old page must still submit.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    CSRFProtect(app)
    auth.init_login(app)
    filters.register(app)
    # Before any route is bound: every `<int:id>` of the console is a 64-bit id (ids.py).
    app.url_map.converters["int"] = Id64Converter
    _import_pages()
    app.register_blueprint(bp)


def _import_pages() -> None:
    from callgateway.console import (  # noqa: F401  (each module adds its views to bp)
        call_page,
        calls_page,
        consent_page,
        dashboard,
        messages_page,
        outbound_views,
        queue,
        reveal,
        security,
        users_page,
        voicemails,
    )
