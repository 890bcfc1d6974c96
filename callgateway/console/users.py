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


def check_account(email: str, role: str, clinics: list[str], known: set[str]) -> NewUser:
    """Validate everything but the password; admins always see every clinic."""
    email = normalise_email(email)
    if not _EMAIL.match(email) or len(email) > 254:
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


def with_password(account: NewUser, password: str) -> NewUser:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserError(f"password: must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
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
