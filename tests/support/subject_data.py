"""Everything a clinic can hold about one caller, made through the real paths where they
exist (signed webhooks, the transfer job against a `responses`-faked Twilio) and by the
ledger/model otherwise. Used by the retention and rights tests."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta

import responses
from sqlalchemy import select

from callgateway.config.retention import retention_until
from callgateway.config.settings import DEV_ACCOUNT_SID
from callgateway.db.models import Appointment, CallTurn, Recording
from callgateway.wiring import Services
from consent import ledger
from recordings import lifecycle
from tests.support.twilio import ACCOUNT_SID, TwilioSim, sid

API = f"https://api.twilio.com/2010-04-01/Accounts/{DEV_ACCOUNT_SID}"
MEDIA = b"RIFF\x10\x00\x00\x00WAVEfmt " + secrets.token_bytes(2048)


@dataclass
class Seeded:
    phone: str
    clinic_number: str
    call_sids: list[str] = field(default_factory=list)
    recording_sids: list[str] = field(default_factory=list)
    voicemail_sids: list[str] = field(default_factory=list)
    pending_sids: list[str] = field(default_factory=list)  # still at Twilio


def recording_callback(tw: TwilioSim, call_sid: str, recording_sid: str, kind: str) -> None:
    params = {
        "AccountSid": ACCOUNT_SID,
        "CallSid": call_sid,
        "RecordingSid": recording_sid,
        "RecordingStatus": "completed",
        "RecordingDuration": "9",
        "RecordingSource": "RecordVerb" if kind == "voicemail" else "StartCallRecordingAPI",
    }
    assert tw.post(f"/twilio/voice/recording/status?kind={kind}", params).status_code == 200


def seed(
    svc: Services,
    tw: TwilioSim,
    twilio_api: responses.RequestsMock,
    phone: str,
    clinic_number: str,
    *,
    opted_out: bool = True,
) -> Seeded:
    """A call with a transcript and a stored recording, a voicemail call whose recording is
    stored, one recording still waiting at Twilio, an SMS, an appointment and consent."""
    clinic = svc.directory.by_number(clinic_number)
    assert clinic is not None
    out = Seeded(phone, clinic_number)
    now = svc.clock()
    for kind, transferred in (("recording", True), ("voicemail", True), ("recording", False)):
        call_sid, recording_sid = sid("CA"), sid("RE")
        assert tw.call(call_sid, from_=phone, to=clinic_number).status_code == 200
        tw.status(call_sid, "completed", duration=42, From=phone, To=clinic_number)
        recording_callback(tw, call_sid, recording_sid, kind)
        out.call_sids.append(call_sid)
        (out.voicemail_sids if kind == "voicemail" else out.recording_sids).append(recording_sid)
        if not transferred:
            out.pending_sids.append(recording_sid)  # its job has not run: still at Twilio
            continue
        twilio_api.get(f"{API}/Recordings/{recording_sid}.wav", body=MEDIA)
        twilio_api.delete(f"{API}/Recordings/{recording_sid}.json", status=204)
        with svc.db.session() as s:
            rec_id = s.scalars(
                select(Recording.id).where(Recording.recording_sid == recording_sid)
            ).one()
        assert lifecycle.transfer(svc.recordings, rec_id) == "done"
    with svc.db.session() as s:
        for seq, (role, text) in enumerate(
            [("caller", "I would like to book a session"), ("agent", "Which day suits you?")]
        ):
            s.add(
                CallTurn(
                    call_sid=out.call_sids[0],
                    clinic_id=clinic.id,
                    seq=seq,
                    role=role,
                    text=text,
                    created_at=now,
                    data_category="transcript",
                    retention_until=retention_until(svc.config, clinic, "transcript", now),
                )
            )
        s.add(
            Appointment(
                ref="A" + secrets.token_hex(6),
                clinic_id=clinic.id,
                phone=phone,
                type_id=clinic.appointment_types[0].id,
                starts_at=now + timedelta(days=3),
                ends_at=now + timedelta(days=3, minutes=45),
                status="booked",
                patient_name="Sam Example",
                source="ai",
                source_call_sid=out.call_sids[0],
                created_at=now,
                updated_at=now,
                data_category="appointment",
                retention_until=retention_until(svc.config, clinic, "appointment", now),
            )
        )
        for i, state in enumerate(
            [ledger.OPTED_IN, ledger.OPTED_OUT] if opted_out else [ledger.OPTED_IN]
        ):
            ledger.append(
                s,
                ledger.NewEvent(
                    clinic_id=clinic.id,
                    phone=phone,
                    state=state,
                    channel="sms",
                    source_id=f"seed-{phone}-{clinic.id}-{i}-{secrets.token_hex(4)}",
                    at=now + timedelta(seconds=i),
                    retention_until=retention_until(svc.config, clinic, "consent", now),
                ),
            )
    assert tw.sms("Can I move my appointment?", from_=phone, to=clinic_number).status_code == 200
    return out
