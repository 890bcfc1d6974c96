"""Running staff accounts, for the `users` command and the console's admin page alike:
each change is made, audited and followed by the end of the account's sessions in one
place, so that neither door can forget a step.

Sessions end on disable, password reset and role change. A disabled account is refused on
its next request even when Redis cannot be told (`auth.load_user` checks `active`);
`sessions_ended` is None then, and the caller says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis
from sqlalchemy.orm import Session

from callgateway.console import sessions, users
from callgateway.db.models import StaffUser

if TYPE_CHECKING:
    from callgateway.wiring import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Account:
    """A copy of the account after the change, safe to show."""

    id: int
    email: str
    role: str
    clinics: list[str]
    active: bool
    scope: str
    phone: str | None = None
    totp: bool = False

    @classmethod
    def of(cls, user: StaffUser) -> Account:
        return cls(
            user.id,
            user.email,
            user.role,
            list(user.clinics or []),
            bool(user.active),
            users.scope_label(user),
            user.phone,
            bool(user.totp_secret),
        )


@dataclass(frozen=True)
class Change:
    account: Account
    changed: bool
    sessions_ended: int | None  # None: the session store did not answer


def listing(svc: Services) -> list[Account]:
    with svc.db.session() as db:
        return [Account.of(u) for u in users.list_all(db)]


def by_email(svc: Services, email: str) -> Account:
    with svc.db.session() as db:
        return Account.of(users.find(db, email))


def by_id(svc: Services, user_id: int) -> Account | None:
    with svc.db.session() as db:
        user = db.get(StaffUser, user_id)
        return Account.of(user) if user is not None else None


def set_active(svc: Services, email: str, active: bool, actor: str) -> Change:
    with svc.db.session() as db:
        user = users.find(db, email)
        changed = users.set_active(user, active)
        if changed:
            _audit(svc, db, actor, "user.enable" if active else "user.disable", user)
        account = Account.of(user)
    ended = _end_sessions(svc, account.id) if not active else 0
    return Change(account, changed, ended)


def reset_password(
    svc: Services, email: str, password: str, actor: str, keep_session: str = ""
) -> Change:
    with svc.db.session() as db:
        user = users.find(db, email)
        users.set_password(user, password)
        _audit(svc, db, actor, "user.reset-password", user)
        account = Account.of(user)
    return Change(account, True, _end_sessions(svc, account.id, keep_session))


def set_role(svc: Services, email: str, role: str, clinics: list[str] | None, actor: str) -> Change:
    known = {c.id for c in svc.config.clinics}
    with svc.db.session() as db:
        user = users.find(db, email)
        before = (user.role, list(user.clinics or []))
        users.set_role(user, role, clinics, known)
        changed = before != (user.role, list(user.clinics or []))
        if changed:
            _audit(
                svc,
                db,
                actor,
                "user.set-role",
                user,
                {"from": {"role": before[0], "clinics": before[1]}},
            )
        account = Account.of(user)
    return Change(account, changed, _end_sessions(svc, account.id) if changed else 0)


def set_phone(svc: Services, email: str, phone: str | None, actor: str) -> Change:
    with svc.db.session() as db:
        user = users.find(db, email)
        changed = user.phone != (phone or None)
        users.set_phone(user, phone)
        if changed:
            _audit(svc, db, actor, "user.set-phone", user)
        account = Account.of(user)
    return Change(account, changed, 0)


def reset_totp(svc: Services, email: str, actor: str) -> Change:
    """Forget the user's authenticator (a lost phone); their sessions end."""
    with svc.db.session() as db:
        user = users.find(db, email)
        changed = user.totp_secret is not None
        user.totp_secret, user.totp_last_step = None, None
        if changed:
            _audit(svc, db, actor, "user.reset-totp", user)
        account = Account.of(user)
    return Change(account, changed, _end_sessions(svc, account.id) if changed else 0)


def _audit(
    svc: Services,
    db: Session,
    actor: str,
    action: str,
    user: StaffUser,
    extra: dict[str, object] | None = None,
) -> None:
    detail = {"user": user.id, "email": user.email, "role": user.role, "clinics": user.clinics}
    svc.audit.record(db, actor=actor, action=action, detail={**detail, **(extra or {})})


def _end_sessions(svc: Services, user_id: int, keep: str = "") -> int | None:
    try:
        return sessions.end_all(svc.redis, user_id, keep)
    except redis.RedisError:
        log.warning(
            "console sessions not ended: session store unreachable", extra={"user": user_id}
        )
        return None
