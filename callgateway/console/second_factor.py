"""The console's second factor: TOTP (RFC 6238) codes from an authenticator app, with
pyotp. A user may enrol on their own; an admin can require it for a clinic, and then every
user who can see that clinic's records must enrol at their next sign-in.

A code is accepted for its 30-second step and one step either side (phone clocks drift),
and only once: the last step used is kept, so a code seen over a shoulder is worth nothing
after it was typed.
"""

from __future__ import annotations

import time

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session

from callgateway.console import users
from callgateway.db.models import ClinicState, StaffUser

ISSUER = "CallGateway console"
STEP = 30
DRIFT_STEPS = 1


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    """The otpauth:// URI an authenticator app takes (typed or scanned)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def grouped(secret: str) -> str:
    """The secret in groups of four, as a person types it into an app."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step whose code this is (within the allowed drift), else None."""
    code = "".join((code or "").split())
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    at = time.time() if now is None else now
    totp = pyotp.TOTP(secret)
    current = int(at // STEP)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if totp.at(step * STEP) == code:
            return step
    return None


def accept(user: StaffUser, code: str, now: float | None = None) -> bool:
    """Whether the code is right and not used before; marks its step used."""
    if not user.totp_secret:
        return False
    step = matching_step(user.totp_secret, code, now)
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        return False
    user.totp_last_step = step
    return True


def requiring_clinics(db: Session) -> set[str]:
    stmt = select(ClinicState.clinic_id).where(ClinicState.require_totp.is_(True))
    return set(db.scalars(stmt))


def required_for(db: Session, user: StaffUser) -> bool:
    """Whether a clinic this user can see requires a second factor."""
    required = requiring_clinics(db)
    if not required:
        return False
    if users.sees_all(user):
        return True
    return bool(required & set(user.clinics or []))


def set_required(db: Session, clinic_id: str, required: bool, now: object) -> None:
    state = db.get(ClinicState, clinic_id)
    if state is None:
        state = ClinicState(clinic_id=clinic_id, paused=False, updated_at=now)
        db.add(state)
    state.require_totp = required
    state.updated_at = now  # type: ignore[assignment]
