"""The staff console as a person in a browser uses it (`Browser`: forms submitted with their
CSRF token), and the rows the console tests seed: users, calls, work items, voicemails."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from flask.testing import FlaskClient
from sqlalchemy import select

from callgateway.config.retention import retention_until
from callgateway.console import users
from callgateway.db.models import AuditEntry, Call, Recording, WorkItem
from callgateway.wiring import Services
from tests.support.twilio import PATIENT, sid

PASSWORD = "correct horse battery"
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(64))
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """A test client that behaves like a person in a browser: it submits the forms it was
    shown, CSRF token included."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.token = ""

    def get(self, path: str, **kw):  # type: ignore[no-untyped-def]
        response = self.client.get(path, **kw)
        found = _TOKEN.search(response.get_data(as_text=True))
        if found:
            self.token = found.group(1)
        return response

    def post(self, path: str, data: dict[str, str] | None = None, csrf: bool = True, **kw):  # type: ignore[no-untyped-def]
        if csrf and not self.token:
            self.get("/console/login")
        form = {**(data or {}), **({"csrf_token": self.token} if csrf else {})}
        response = self.client.post(path, data=form, **kw)
        found = _TOKEN.search(response.get_data(as_text=True))
        if found:
            self.token = found.group(1)
        return response

    def login(self, email: str, password: str = PASSWORD, **kw):  # type: ignore[no-untyped-def]
        self.get("/console/login")
        response = self.post("/console/login", {"email": email, "password": password}, **kw)
        if response.status_code == 303:
            self.get(response.headers["Location"])  # as a browser would: a fresh token
        return response

    def text(self, path: str) -> str:
        response = self.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True)


def add_user(svc: Services, email: str, clinics: list[str], role: str = "staff") -> int:
    known = {c.id for c in svc.config.clinics}
    account = users.with_password(users.check_account(email, role, clinics, known), PASSWORD)
    with svc.db.session() as session:
        return users.add(session, account, svc.clock()).id


def add_call(
    svc: Services, clinic_id: str, cli: str = PATIENT, handled_by: str = "ai", **fields: object
) -> Call:
    clinic = svc.directory.by_id(clinic_id)
    assert clinic is not None
    at = fields.pop("started_at", svc.clock())
    call = Call(
        call_sid=sid("CA"),
        clinic_id=clinic_id,
        direction=fields.pop("direction", "inbound"),
        cli=cli,
        called=clinic.numbers[0],
        started_at=at,
        status="completed",
        handled_by=handled_by,
        recorded=False,
        data_category="call-metadata",
        retention_until=retention_until(svc.config, clinic, "call-metadata", at),  # type: ignore[arg-type]
        **fields,
    )
    with svc.db.session() as session:
        session.add(call)
    return call


def add_item(
    svc: Services, clinic_id: str, kind: str = "escalation", phone: str = PATIENT, **fields: object
) -> WorkItem:
    call = add_call(svc, clinic_id, phone, "none")
    clinic = svc.directory.by_id(clinic_id)
    now = fields.pop("created_at", svc.clock())
    item = WorkItem(
        kind=kind,
        call_sid=call.call_sid,
        clinic_id=clinic_id,
        phone=phone,
        reason=fields.pop("reason", "asked-for-person"),
        status=fields.pop("status", "open"),
        created_at=now,
        updated_at=now,
        data_category="call-metadata",
        retention_until=retention_until(svc.config, clinic, "call-metadata", now),  # type: ignore[arg-type]
        **fields,
    )
    with svc.db.session() as session:
        session.add(item)
    return item


def item_state(svc: Services, item_id: int) -> tuple[str, int | None]:
    with svc.db.session() as session:
        item = session.get(WorkItem, item_id)
    assert item is not None
    return item.status, item.claimed_by


def audit_entries(svc: Services, action: str) -> list[AuditEntry]:
    with svc.db.session() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def add_voicemail(svc: Services, clinic_id: str, status: str = "stored") -> Recording:
    """A voicemail as the recording lifecycle leaves it: a row, its object, its work item."""
    clinic = svc.directory.by_id(clinic_id)
    assert clinic is not None and svc.storage is not None
    item = add_item(svc, clinic_id, kind="voicemail", reason="voicemail")
    now = svc.clock()
    recording_sid = sid("RE")
    key = f"clinics/{clinic_id}/voicemails/{recording_sid}.wav"
    keep = retention_until(svc.config, clinic, "voicemail", now)
    if status == "stored":
        svc.storage.put(
            clinic, key, WAV, category="voicemail", retention_until=keep, content_type="audio/wav"
        )
    recording = Recording(
        recording_sid=recording_sid,
        call_sid=item.call_sid,
        clinic_id=clinic_id,
        phone=PATIENT,
        kind="voicemail",
        status=status,
        region=clinic.region,
        bucket=svc.storage.bucket_of(clinic),
        key=key,
        duration_seconds=17,
        created_at=now,
        data_category="voicemail",
        retention_until=keep,
    )
    with svc.db.session() as session:
        session.add(recording)
    return recording
