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
import time
from urllib.parse import urlsplit

import redis
from flask import Flask, Response, flash, redirect, render_template, request, session, url_for
from flask_login import LoginManager, login_required, login_user, logout_user
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from callgateway import metrics
from callgateway.console import second_factor, sessions, users
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
        owner = sessions.owner(svc.redis, token, svc.clock().timestamp())
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


def _attempt_succeeded(client: redis.Redis, keys: tuple[str, str]) -> None:
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


def _audit_sign_in(db: Session, email: str, user: StaffUser | None, second: bool) -> None:
    """Every sign-in, and every failed one, in the audit log: the email typed (only when
    it looks like one: people type passwords into the wrong box) and why it failed. Never
    the password. With a second factor, the sign-in is audited when the code is right."""
    typed = users.normalise_email(email)
    shown = typed if users.looks_like_email(typed) else "(not an email address)"
    if user is not None:
        action = "console.login.password" if second else "console.login"
        actor, detail = f"user:{user.id}", {"email": shown}
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
            enrolled = bool(found and found.totp_secret)
            second = found is not None and (enrolled or second_factor.required_for(db, found))
            _audit_sign_in(db, email, found, second)
        if user is None:
            metrics.SIGNIN_FAILURES.labels("bad-credentials").inc()
            flash("That email and password do not match an account.", "error")
            return render_template("console/login.html", email=email, next=target), 401
        _attempt_succeeded(svc.redis, keys)
        if second:
            return _ask_for_code(user.id, email, target, enrol=not enrolled)
        _start_session(user)
    except (redis.RedisError, SQLAlchemyError):
        log.error("console login unavailable: session store or database unreachable")
        flash("Sign-in is unavailable right now. Please try again in a minute.", "error")
        return render_template("console/login.html", email=email, next=target), 503
    return _signed_in(user, target)


def _start_session(user: ConsoleUser) -> None:
    user.token = secrets.token_urlsafe(32)
    sessions.start(services().redis, user.id, user.token, services().clock().timestamp())


def _signed_in(user: ConsoleUser, target: str) -> Response:
    # A fresh session: nothing chosen before login (an attacker's planted cookie, an old
    # CSRF token) survives into the signed-in one.
    session.clear()
    login_user(user)
    log.info("console login", extra={"user": user.id})
    return redirect(target, code=303)


# --- the second factor -------------------------------------------------------------------

PENDING_SECONDS = 300  # between the password and the code


def _enrol_key(token: str) -> str:
    return f"console:totp-enrol:{token}"


def _ask_for_code(user_id: int, email: str, target: str, enrol: bool) -> Response:
    """The password was right; the session holds only that, for five minutes, until the
    code. An enrolment's new secret waits in Redis, not in the (signed, readable) cookie."""
    session.clear()
    pending = {
        "id": user_id,
        "email": email,
        "next": target,
        "until": int(time.time()) + PENDING_SECONDS,
    }
    if enrol:
        token = secrets.token_urlsafe(24)
        services().redis.set(_enrol_key(token), second_factor.new_secret(), ex=PENDING_SECONDS)
        pending["enrol"] = token
    session["totp_pending"] = pending
    return redirect(url_for("console.login_code"), code=303)


def _pending() -> dict[str, object] | None:
    pending = session.get("totp_pending")
    if not isinstance(pending, dict) or int(pending.get("until", 0)) < time.time():
        return None
    return pending


@bp.route("/login/code", methods=["GET", "POST"])
def login_code() -> Response | str | tuple[str, int]:
    pending = _pending()
    if pending is None:
        session.pop("totp_pending", None)
        flash("Sign in again: the code was not entered in time.", "info")
        return redirect(url_for("console.login"), code=303)
    svc = services()
    enrol_token = str(pending.get("enrol") or "")
    secret = None
    if enrol_token:
        raw = svc.redis.get(_enrol_key(enrol_token))
        secret = raw.decode() if raw else None
        if secret is None:
            session.pop("totp_pending", None)
            flash("Sign in again: the set-up code expired.", "info")
            return redirect(url_for("console.login"), code=303)
    page = {
        "secret": second_factor.grouped(secret) if secret else None,
        "uri": second_factor.provisioning_uri(secret, str(pending["email"])) if secret else None,
    }
    if request.method == "GET":
        return render_template("console/login_code.html", **page)
    email = str(pending["email"])
    keys = _limit_keys(email, request.remote_addr or "unknown")
    if not _take_attempt(svc.redis, keys):  # counted before the code is compared
        flash("Too many failed attempts. Wait 15 minutes and try again.", "error")
        return render_template("console/login_code.html", **page), 429
    code = request.form.get("code") or ""
    with svc.db.session() as db:
        found = db.get(StaffUser, int(pending["id"]))  # type: ignore[call-overload]
        if found is not None and secret:
            found.totp_secret = secret  # tried below; kept only if the code matches
        ok = found is not None and found.active and second_factor.accept(found, code)
        if not ok:
            db.rollback()
            svc.audit.record(
                db,
                actor="anonymous",
                action="console.login.failed",
                detail={
                    "email": email,
                    "reason": "bad-code",
                    "address": request.remote_addr or "unknown",
                },
            )
        else:
            svc.audit.record(
                db,
                actor=f"user:{found.id}",
                action="console.login",
                detail={
                    "email": email,
                    "second_factor": "enrolled" if secret else "totp",
                    "address": request.remote_addr or "unknown",
                },
            )
            user = ConsoleUser(found.id, found.email, found.role, list(found.clinics or []))
    if not ok:
        metrics.SIGNIN_FAILURES.labels("bad-code").inc()
        flash("That code is not right. Type the 6 digits your app shows now.", "error")
        return render_template("console/login_code.html", **page), 401
    if enrol_token:
        svc.redis.delete(_enrol_key(enrol_token))
    _attempt_succeeded(svc.redis, keys)
    _start_session(user)
    return _signed_in(user, str(pending["next"]))


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
