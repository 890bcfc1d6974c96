"""Console users: argon2 password hashes, which clinics each user may see."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from callgateway.db.insert import insert_ignore
from callgateway.db.models import StaffUser

ROLES = ("staff", "admin")
ALL = "*"
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 takes any length; a megabyte "password" is an attack
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,252}\.[^@\s.]{2,63}$")

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so a wrong email costs as much as a
    wrong password and response times do not tell which addresses have accounts."""
    return _hasher.hash("not a real password, only here to spend the same time")


class UserError(ValueError):
    """Bad input for a user: one line, safe to show."""


@dataclass(frozen=True)
class NewUser:
    email: str
    password: str
    role: str
    clinics: list[str]  # ["*"] for every clinic


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def looks_like_email(email: str) -> bool:
    return bool(_EMAIL.match(email)) and len(email) <= 254


def check_account(email: str, role: str, clinics: list[str], known: set[str]) -> NewUser:
    """Validate everything but the password; admins always see every clinic."""
    email = normalise_email(email)
    if not looks_like_email(email):
        raise UserError("--email: not an email address")
    if role not in ROLES:
        raise UserError(f"--role: must be one of {', '.join(ROLES)}")
    scope = list(dict.fromkeys(clinics))
    if role == "admin" or ALL in scope:
        scope = [ALL]
    if not scope:
        raise UserError("--clinic: give a clinic id or --all")
    for clinic_id in scope:
        if clinic_id != ALL and clinic_id not in known:
            raise UserError(f"--clinic: unknown clinic {clinic_id!r}")
    return NewUser(email, "", role, scope)


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserError(f"password: must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


def with_password(account: NewUser, password: str) -> NewUser:
    check_password(password)
    return NewUser(account.email, password, account.role, account.clinics)


def add(session: Session, user: NewUser, now: datetime) -> StaffUser:
    """Create the user; an email that already has an account is refused, not overwritten."""
    created = insert_ignore(
        session,
        StaffUser,
        {
            "email": user.email,
            "password_hash": _hasher.hash(user.password),
            "role": user.role,
            "clinics": user.clinics,
            "active": True,
            "created_at": now,
        },
        ["email"],
    )
    if not created:
        raise UserError(f"--email: a user with that email already exists: {user.email}")
    return session.scalars(select(StaffUser).where(StaffUser.email == user.email)).one()


def authenticate(session: Session, email: str, password: str) -> StaffUser | None:
    """The active user with this email and password, else None (same cost either way)."""
    if len(password) > MAX_PASSWORD:
        return None
    user = session.scalars(
        select(StaffUser).where(StaffUser.email == normalise_email(email))
    ).one_or_none()
    stored = user.password_hash if user is not None and user.active else _dummy_hash()
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        # Parameters were raised since this hash was made: upgrade it while we know the password.
        user.password_hash = _hasher.hash(password)
    return user


def sees_all(user: StaffUser) -> bool:
    return user.role == "admin" or ALL in (user.clinics or [])


def may_see(user: StaffUser, clinic_id: str | None) -> bool:
    if clinic_id is None:
        return sees_all(user)
    return sees_all(user) or clinic_id in (user.clinics or [])


# --- running accounts: list, disable, enable, reset a password, change a role -----------


def find_or_none(session: Session, email: str) -> StaffUser | None:
    return session.scalars(
        select(StaffUser).where(StaffUser.email == normalise_email(email))
    ).one_or_none()


def find(session: Session, email: str) -> StaffUser:
    user = find_or_none(session, email)
    if user is None:
        raise UserError(f"--email: no user with that email: {normalise_email(email)}")
    return user


def list_all(session: Session) -> list[StaffUser]:
    return list(session.scalars(select(StaffUser).order_by(StaffUser.email)))


def scope_label(user: StaffUser) -> str:
    return "all clinics" if ALL in (user.clinics or []) else ", ".join(user.clinics or [])


def set_active(user: StaffUser, active: bool) -> bool:
    """Returns whether anything changed (disabling a disabled user is not an error)."""
    changed = user.active != active
    user.active = active
    return changed


def set_password(user: StaffUser, password: str) -> None:
    user.password_hash = _hasher.hash(check_password(password))


def set_role(user: StaffUser, role: str, clinics: list[str] | None, known: set[str]) -> None:
    """A new role and, when given, a new clinic scope; without one the user keeps theirs
    (an admin made staff keeps every clinic until given a narrower scope)."""
    scope = list(clinics) if clinics is not None else list(user.clinics or [])
    checked = check_account(user.email, role, scope, known)
    user.role, user.clinics = checked.role, checked.clinics


def set_phone(user: StaffUser, phone: str | None) -> None:
    """The number the console rings first when this user calls a patient back."""
    user.phone = phone or None
