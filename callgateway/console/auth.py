"""Sign in and out: argon2-checked passwords, server-side session tokens, a login rate limit.

Flask's session is a signed cookie, so "logging out" alone would leave a copied cookie
valid. Each login therefore mints a random token kept in Redis with a TTL; the cookie holds
`user id:token`, and a request is signed in only while that token exists. Logout deletes
it; a new login clears the old session first (no fixation).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from urllib.parse import urlsplit

import redis
from flask import Flask, Response, flash, redirect, render_template, request, session, url_for
from flask_login import LoginManager, login_required, login_user, logout_user
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from callgateway import metrics
from callgateway.console import sessions, users
from callgateway.console.access import ConsoleUser, me, services
from callgateway.console.blueprint import bp
from callgateway.db.models import StaffUser

log = logging.getLogger(__name__)

# Attempts that did not sign in, counted before the password is checked (_take_attempt).
FAILURES_PER_ACCOUNT = 5  # per email and address, per window
FAILURES_PER_ADDRESS = 30  # per address, whatever the email: stops spraying many accounts
WINDOW_SECONDS = 15 * 60


def init_login(app: Flask) -> None:
    manager = LoginManager()
    manager.login_view = "console.login"
    manager.login_message = "Please sign in to continue."
    manager.login_message_category = "info"
    # Drop the session if it turns up from another browser or address.
    manager.session_protection = "strong"
    manager.user_loader(load_user)
    manager.init_app(app)


def load_user(user_id: str) -> ConsoleUser | None:
    raw_id, _, token = user_id.partition(":")
    if not raw_id.isdigit() or not token:
        return None
    svc = services()
    try:
        owner = sessions.owner(svc.redis, token)
    except redis.RedisError:
        log.warning("console session store unreachable: treating the request as signed out")
        return None
    if owner != raw_id:
        return None
    with svc.db.session() as db:
        user = db.get(StaffUser, int(raw_id))
    if user is None or not user.active:
        return None
    return ConsoleUser(user.id, user.email, user.role, list(user.clinics or []), token)


def _limit_keys(email: str, address: str) -> tuple[str, str]:
    digest = hashlib.sha256(f"{users.normalise_email(email)}|{address}".encode()).hexdigest()
    return f"console:login-fail:{digest[:40]}", f"console:login-fail-ip:{address}"


def _take_attempt(client: redis.Redis, keys: tuple[str, str]) -> bool:
    """Count this attempt before any password is compared, in one atomic step (INCR per
    counter): True while it is within both limits. Concurrent attempts each get their own
    number, so however many arrive at once, at most the limit's number of passwords are
    checked in a window; a look-then-count would let them all through together."""
    pipe = client.pipeline(transaction=True)
    for key in keys:
        pipe.incr(key)
        pipe.expire(key, WINDOW_SECONDS, nx=True)
    account, _, address, _ = pipe.execute()
    return int(account) <= FAILURES_PER_ACCOUNT and int(address) <= FAILURES_PER_ADDRESS


def _signed_in(client: redis.Redis, keys: tuple[str, str]) -> None:
    """A right password: the account's count starts again, and the attempt is given back to
    the address (colleagues behind one office address sign in all day)."""
    pipe = client.pipeline(transaction=True)
    pipe.delete(keys[0])
    pipe.decr(keys[1])
    pipe.execute()


def _safe_next(target: str | None) -> str:
    """Only a path inside the console: never an open redirect to another site."""
    default = url_for("console.queue")
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console"):
        return default
    if "\\" in target or target.startswith("//"):
        return default
    return target


def _audit_sign_in(db: Session, email: str, user: StaffUser | None) -> None:
    """Every sign-in, and every failed one, in the audit log: the email typed (only when
    it looks like one: people type passwords into the wrong box) and why it failed. Never
    the password."""
    typed = users.normalise_email(email)
    shown = typed if users.looks_like_email(typed) else "(not an email address)"
    if user is not None:
        action, actor, detail = "console.login", f"user:{user.id}", {"email": shown}
    else:
        known = users.find_or_none(db, typed)
        reason = "disabled" if known is not None and not known.active else "bad-credentials"
        action, actor, detail = "console.login.failed", "anonymous", {"email": shown}
        detail["reason"] = reason
    detail["address"] = request.remote_addr or "unknown"
    services().audit.record(db, actor=actor, action=action, detail=detail)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    if request.method == "GET":
        return render_template("console/login.html", next=request.args.get("next", ""))
    email = (request.form.get("email") or "").strip()[:254]
    password = request.form.get("password") or ""
    target = _safe_next(request.form.get("next"))
    svc = services()
    keys = _limit_keys(email, request.remote_addr or "unknown")
    try:
        if not _take_attempt(svc.redis, keys):
            log.warning("console login refused: too many failures")
            metrics.SIGNIN_FAILURES.labels("rate-limited").inc()
            flash("Too many failed attempts. Wait 15 minutes and try again.", "error")
            return render_template("console/login.html", email=email, next=target), 429
        with svc.db.session() as db:
            found = users.authenticate(db, email, password)
            user = (
                ConsoleUser(found.id, found.email, found.role, list(found.clinics or []))
                if found
                else None
            )
            _audit_sign_in(db, email, found)
        if user is None:
            metrics.SIGNIN_FAILURES.labels("bad-credentials").inc()
            flash("That email and password do not match an account.", "error")
            return render_template("console/login.html", email=email, next=target), 401
        _signed_in(svc.redis, keys)
        user.token = secrets.token_urlsafe(32)
        sessions.start(svc.redis, user.id, user.token)
    except (redis.RedisError, SQLAlchemyError):
        log.error("console login unavailable: session store or database unreachable")
        flash("Sign-in is unavailable right now. Please try again in a minute.", "error")
        return render_template("console/login.html", email=email, next=target), 503
    # A fresh session: nothing chosen before login (an attacker's planted cookie, an old
    # CSRF token) survives into the signed-in one.
    session.clear()
    login_user(user)
    log.info("console login", extra={"user": user.id})
    return redirect(target, code=303)


@bp.post("/logout")
@login_required
def logout() -> Response:
    user = me()
    try:
        sessions.end(services().redis, user.id, user.token)
    except redis.RedisError:
        log.warning("console logout: session token not deleted (store unreachable)")
    logout_user()
    session.clear()
    flash("You have signed out.", "info")
    return redirect(url_for("console.login"), code=303)
