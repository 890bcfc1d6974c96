"""Who is signed in, which clinics they may see, and the 403 for everything else."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask import abort, current_app
from flask_login import UserMixin, current_user

from callgateway.config import Clinic

if TYPE_CHECKING:
    from callgateway.wiring import Services

ALL = "*"


@dataclass
class ConsoleUser(UserMixin):  # type: ignore[misc]
    """The signed-in staff member for this request (a copy, not a database row)."""

    id: int
    email: str
    role: str
    clinics: list[str] = field(default_factory=list)
    token: str = ""

    def get_id(self) -> str:
        # Flask-Login keeps this in the session: the id plus a server-side session token,
        # so logging out (or deleting the token) kills every copy of the cookie.
        return f"{self.id}:{self.token}"

    @property
    def actor(self) -> str:
        return f"user:{self.id}"

    @property
    def sees_all(self) -> bool:
        return self.role == "admin" or ALL in self.clinics


def services() -> Services:
    return current_app.extensions["callgateway"]


def me() -> ConsoleUser:
    return current_user._get_current_object()  # type: ignore[no-any-return]


def visible_clinics() -> list[Clinic]:
    """The clinics the signed-in user may see, in config order."""
    user = me()
    clinics = services().directory.all()
    return clinics if user.sees_all else [c for c in clinics if c.id in user.clinics]


def visible_ids() -> list[str]:
    return [c.id for c in visible_clinics()]


def require_clinic(clinic_id: str | None) -> Clinic:
    """The clinic, if the user may see it; otherwise 403 (and 403, not 404, for unknown
    ids too, so probing ids tells nothing)."""
    clinic = services().directory.by_id(clinic_id) if clinic_id else None
    if clinic is None or clinic.id not in visible_ids():
        abort(403)
    return clinic


def chosen_clinics(requested: str | None) -> list[Clinic]:
    """A page's clinic filter: one visible clinic, or all of them; anything else is 403."""
    if requested:
        return [require_clinic(requested)]
    return visible_clinics()


def require_admin() -> None:
    """Admin-only pages and actions: 403 for everyone else."""
    if me().role != "admin":
        abort(403)


def require_clinic_audited(clinic_id: str | None, record: str, record_id: object) -> Clinic:
    """`require_clinic`, and a refusal leaves an audit entry (someone tried to open another
    clinic's patient record), written in its own unit of work so that the 403 keeps it."""
    clinic = services().directory.by_id(clinic_id) if clinic_id else None
    if clinic is not None and clinic.id in visible_ids():
        return clinic
    svc = services()
    with svc.db.session() as db:
        svc.audit.record(
            db,
            actor=me().actor,
            action="console.denied",
            clinic_id=clinic_id,
            detail={"record": record, "id": record_id},
        )
    abort(403)
