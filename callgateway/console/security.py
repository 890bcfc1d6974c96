"""Headers, error pages and the shared page context for every console response."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Response, g, render_template, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError

from callgateway.console.access import services, visible_ids
from callgateway.console.blueprint import bp
from callgateway.console.queries import work


def media_origin(url: str) -> None:
    """Allow this response's page to play audio from the bucket that signed `url`."""
    parts = urlsplit(url)
    g.media_origin = f"{parts.scheme}://{parts.netloc}"


@bp.after_request
def _headers(response: Response) -> Response:
    media = " ".join(filter(None, ["'self'", g.get("media_origin")]))
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        f"media-src {media}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Same origin only: our own POSTs keep a Referer (Flask-WTF checks it over HTTPS); the
    # bucket never learns which console page asked for a voicemail.
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "console.static":
        # Pages carry patient data: never in a shared cache or the back-button cache.
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(CSRFError)
def _csrf_refused(error: CSRFError) -> tuple[str, int]:
    return render_template(
        "console/error.html",
        title="Form expired or not sent from the console",
        message="The form was refused for your safety. Go back, reload the page and try again.",
    ), 400


@bp.errorhandler(403)
def _forbidden(_error: Exception) -> tuple[str, int]:
    return render_template(
        "console/error.html",
        title="Not your clinic",
        message="Your account does not give access to this clinic's records.",
    ), 403


@bp.app_errorhandler(404)
def _not_found(error: Exception) -> tuple[str, int] | Exception:
    """The console's own page for any unknown address under /console (not a bare 404)."""
    if not request.path.startswith("/console"):
        return error
    return render_template(
        "console/error.html",
        title="Not found",
        message="There is nothing at this address. It may have been mistyped, or the record "
        "may have passed its retention date and been deleted.",
    ), 404


@bp.app_errorhandler(500)
def _server_error(error: Exception) -> tuple[str, int] | Exception:
    """Something broke: say so in the console's words, with no detail (the log has it,
    without patient data). If even the page cannot be drawn (the database is down), a line
    of text."""
    if not request.path.startswith("/console"):
        return error
    try:
        return render_template(
            "console/error.html",
            title="Something went wrong",
            message="The console could not do that just now. Try again in a minute, and tell "
            "your administrator if it keeps happening.",
        ), 500
    except Exception:  # the error page must not fail in turn
        return "Something went wrong in the console. Try again in a minute.", 500


@bp.app_context_processor
def _nav() -> dict[str, object]:
    """The open-work count in the navigation, for signed-in console pages only."""
    if request.blueprint != "console" or not current_user.is_authenticated:
        return {}
    with services().db.session() as db:
        return {"open_count": work.open_count(db, visible_ids())}
