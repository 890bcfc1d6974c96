"""Accounts, for admins: list, disable, enable, reset a password, change a role.

The same changes as `callgateway users ...`, through `accounts` (audited, sessions ended).
An admin cannot disable or demote their own account here, so the console cannot lock out
its last admin by a slip; the command line can still do it on purpose.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from werkzeug.wrappers import Response

from callgateway.console import accounts, second_factor, users
from callgateway.console.access import me, require_admin, services
from callgateway.console.blueprint import bp
from callgateway.phone import InvalidNumber, country_of, parse_typed


@bp.get("/users")
@login_required
def users_page() -> str:
    require_admin()
    with services().db.session() as db:
        requiring = second_factor.requiring_clinics(db)
    return render_template(
        "console/users.html",
        requiring=requiring,
        accounts=accounts.listing(services()),
        roles=users.ROLES,
        min_password=users.MIN_PASSWORD,
    )


def _account(user_id: int) -> accounts.Account:
    require_admin()
    account = accounts.by_id(services(), user_id)
    if account is None:
        abort(404)
    return account


def _back() -> Response:
    return redirect(url_for("console.users_page"), code=303)


@bp.post("/users/<int:user_id>/active")
@login_required
def user_active(user_id: int) -> Response:
    account = _account(user_id)
    active = request.form.get("active") == "1"
    if not active and account.id == me().id:
        flash("You cannot disable your own account.", "error")
        return _back()
    change = accounts.set_active(services(), account.email, active, me().actor)
    if active:
        flash(f"{account.email} can sign in again.", "info")
    else:
        flash(f"{account.email} is disabled and signed out everywhere.", "info")
    if change.sessions_ended is None:
        flash("Their open sessions could not be ended: the session store did not answer.", "error")
    return _back()


@bp.post("/users/<int:user_id>/password")
@login_required
def user_password(user_id: int) -> Response:
    account = _account(user_id)
    try:
        accounts.reset_password(
            services(),
            account.email,
            request.form.get("password") or "",
            me().actor,
            keep_session=me().token if account.id == me().id else "",
        )
    except users.UserError:
        flash(
            f"Not changed: a password must be {users.MIN_PASSWORD} to "
            f"{users.MAX_PASSWORD} characters.",
            "error",
        )
        return _back()
    flash(f"New password set for {account.email}; their other sessions have ended.", "info")
    return _back()


@bp.post("/users/<int:user_id>/role")
@login_required
def user_role(user_id: int) -> Response:
    account = _account(user_id)
    role = request.form.get("role", "")
    clinics = request.form.getlist("clinics")
    if account.id == me().id and role != "admin":
        flash("You cannot change your own role.", "error")
        return _back()
    try:
        change = accounts.set_role(services(), account.email, role, clinics, me().actor)
    except users.UserError as exc:
        message = str(exc).removeprefix("--role: ").removeprefix("--clinic: ")
        flash(f"Not changed: {message.replace('--all', 'all clinics')}.", "error")
        return _back()
    a = change.account
    flash(f"{a.email} is now {a.role} ({a.scope}).", "info")
    return _back()


@bp.post("/users/<int:user_id>/phone")
@login_required
def user_phone(user_id: int) -> Response:
    account = _account(user_id)
    typed = (request.form.get("phone") or "").strip()
    clinics = [c for c in services().directory.all() if c.id in account.clinics] or list(
        services().directory.all()
    )
    try:
        number = parse_typed(typed, country_of(clinics[0].numbers[0])) if typed else None
    except InvalidNumber:
        flash("Not changed: that is not a phone number we can read.", "error")
        return _back()
    accounts.set_phone(services(), account.email, number, me().actor)
    flash(f"Phone for {account.email} {'saved' if number else 'removed'}.", "info")
    return _back()


@bp.post("/clinics/<clinic_id>/totp")
@login_required
def clinic_totp(clinic_id: str) -> Response:
    """Require (or stop requiring) a second factor of everyone who sees this clinic."""
    require_admin()
    svc = services()
    clinic = svc.directory.by_id(clinic_id)
    if clinic is None:
        abort(404)
    required = request.form.get("required") == "1"
    with svc.db.session() as db:
        second_factor.set_required(db, clinic.id, required, svc.clock())
        svc.audit.record(
            db,
            actor=me().actor,
            action="clinic.require-totp" if required else "clinic.allow-no-totp",
            clinic_id=clinic.id,
        )
    if required:
        flash(
            f"{clinic.name}: a sign-in code is now required. Its staff set one up at their "
            "next sign-in.",
            "info",
        )
    else:
        flash(f"{clinic.name}: a sign-in code is no longer required.", "info")
    return _back()


@bp.post("/users/<int:user_id>/totp/reset")
@login_required
def user_totp_reset(user_id: int) -> Response:
    """A lost phone: the user sets up a new code at their next sign-in (if required)."""
    account = _account(user_id)
    accounts.reset_totp(services(), account.email, me().actor)
    flash(f"Sign-in code removed for {account.email}; their sessions have ended.", "info")
    return _back()
