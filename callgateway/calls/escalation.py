"""A person at any time: dial the clinic's escalation numbers, else voicemail or a callback.

Every path that gives up on the AI (asked for a person, DTMF 0, opted out, agent failure,
repeated misunderstanding) ends here. While the clinic is open and has escalation numbers
the caller is connected with `<Dial>`; otherwise, or when nobody answers, the caller may
press 1 for a callback or leave a voicemail. Staff see escalations and callback requests
as work items in the console; the voicemail's own work item is made by the recording
lifecycle when its recording arrives.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import update
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from callgateway import metrics
from callgateway.calls import log as call_log
from callgateway.calls.twiml import apology_and_hangup, say
from callgateway.config import Clinic
from callgateway.config.directory import is_open
from callgateway.config.retention import retention_until
from callgateway.db.insert import insert_ignore
from callgateway.db.models import Call, WorkItem
from callgateway.events import DialResult, VoicemailChoice, VoicemailDone
from callgateway.phone import ANONYMOUS

if TYPE_CHECKING:
    from callgateway.wiring import Services

log = logging.getLogger(__name__)

CONNECTING = "Connecting you to a member of our team."
CLOSED = "The clinic is closed right now."
NOBODY_FREE = "Sorry, nobody from the team is free to take your call right now."
OFFER_CALLBACK = (
    "To ask us to call you back on the number you are calling from, press 1 now. "
    "Or stay on the line to leave a message."
)
VOICEMAIL = "Please leave a message after the tone, and we will call you back."
VOICEMAIL_ANONYMOUS = (
    "Your number is withheld, so please leave your name, your phone number and your "
    "message after the tone."
)
AFTER_THE_TONE = "Please leave your message after the tone."
CALLBACK_BOOKED = (
    "Thank you. We will call you back on the number you are calling from as soon as we can. "
    "Goodbye."
)
VOICEMAIL_THANKS = "Thank you. Your message has been passed to the team. Goodbye."
AFTER_PERSON = "Thank you for calling. Goodbye."
LOST = "Sorry, something went wrong with this call. Please try again later."

# The Dial action's DialCallStatus: a person took the call, or nobody did.
ANSWERED = frozenset({"completed", "answered"})
NOT_ANSWERED = frozenset({"busy", "no-answer", "failed"})
# Why the caller reached the voicemail menu; kept on the callback request for staff.
WHY = frozenset({"busy", "no-answer", "failed", "closed", "unstaffed"})
GATHER_SECONDS = 4


def to_person(
    services: Services, call: Call, clinic: Clinic, resp: VoiceResponse, reason: str
) -> None:
    """Connect the caller to the clinic's team, or offer voicemail/callback when nobody can.

    `reason` says why the AI stepped aside (asked-for-person, dtmf-0, opted-out, …); it is
    kept on the escalation item so staff know what the caller wanted.
    """
    metrics.escalated(reason)
    open_now = is_open(clinic, services.clock())
    if not (clinic.escalation.numbers and open_now):
        if not open_now:
            say(resp, CLOSED, clinic)
        voicemail(services, call, clinic, resp, why="closed" if not open_now else "unstaffed")
        return

    with call_log.session(services) as session:
        # Re-read: the caller's copy may predate the announcement webhook that started the
        # call recording. A call already recorded whole needs no second copy of this leg.
        row = call_log.find_call(session, call.call_sid) or call
        record_leg = clinic.recording.enabled and not row.recorded
        _open_item(services, session, row, clinic, "escalation", reason)
        call_log.note(session, call.call_sid, outcome="escalated", handled_by="none")

    say(resp, CONNECTING, clinic)
    options: dict[str, object] = {}
    if record_leg:
        # Reached only after the announcement (greeting -> announcement -> gate -> here).
        options = {
            "record": "record-from-answer-dual",
            "recording_status_callback": services.url(
                "/twilio/voice/recording/status?kind=recording"
            ),
            "recording_status_callback_method": "POST",
        }
    dial = resp.dial(
        caller_id=clinic_number(call, clinic),
        timeout=clinic.escalation.ring_seconds,
        action=services.url("/twilio/voice/dial/result"),
        method="POST",
        **options,
    )
    for number in clinic.escalation.numbers:
        dial.number(number)
    log.info("escalated to a person", extra={"clinic": clinic.id, "reason": reason})


def clinic_number(call: Call, clinic: Clinic) -> str:
    """The clinic's own number, which staff recognise and Twilio lets us present."""
    return call.called if call.called in clinic.numbers else clinic.numbers[0]


def voicemail(
    services: Services, call: Call, clinic: Clinic, resp: VoiceResponse, why: str = "unstaffed"
) -> None:
    """Offer a callback (press 1) when we have the caller's number, then take a voicemail."""
    if call.cli == ANONYMOUS:
        say(resp, VOICEMAIL_ANONYMOUS, clinic)
    else:
        # No key pressed: Twilio carries on with the verb after <Gather>, the recording.
        gather = resp.gather(
            input="dtmf",
            num_digits=1,
            timeout=GATHER_SECONDS,
            action=services.url(f"/twilio/voice/voicemail/choice?why={_why(why)}"),
            method="POST",
        )
        gather.say(OFFER_CALLBACK, language=clinic.language)
        say(resp, VOICEMAIL, clinic)
    _record(services, call, clinic, resp)


def record_voicemail(services: Services, clinic: Clinic, resp: VoiceResponse, action: str) -> None:
    """The voicemail <Record>: its recording reaches the recording status callback as a
    voicemail; `action` is what the caller hears after it."""
    resp.record(
        max_length=clinic.voicemail_max_seconds,
        play_beep=True,
        finish_on_key="#",
        trim="trim-silence",
        action=services.url(action),
        method="POST",
        recording_status_callback=services.url("/twilio/voice/recording/status?kind=voicemail"),
        recording_status_callback_method="POST",
    )


def _record(services: Services, call: Call, clinic: Clinic, resp: VoiceResponse) -> None:
    record_voicemail(services, clinic, resp, "/twilio/voice/voicemail/done")
    with call_log.session(services) as session:
        call_log.note(session, call.call_sid, outcome="voicemail", handled_by="voicemail")


def dial_result(services: Services, event: DialResult) -> str:
    """The `<Dial>` ended: a person talked to the caller, or nobody answered."""
    found = _call_and_clinic(services, event.call_sid)
    if found is None:
        return apology_and_hangup(LOST)
    call, clinic = found
    resp = VoiceResponse()
    if event.dial_status in ANSWERED:
        with call_log.session(services) as session:
            fields: dict[str, object] = {"outcome": "human", "handled_by": "human"}
            if clinic.recording.enabled:
                fields["recorded"] = True  # the call recording or the recorded Dial leg
            call_log.note(session, call.call_sid, **fields)
            # The person who picked up has done the work, claimed or not.
            _close_item(services, session, call.call_sid, "escalation", ("open", "claimed"))
        say(resp, AFTER_PERSON, clinic)
        resp.hangup()
        return str(resp)
    if event.dial_status in NOT_ANSWERED:
        say(resp, NOBODY_FREE, clinic)
        voicemail(services, call, clinic, resp, why=event.dial_status)
        return str(resp)
    # canceled (the caller hung up while it rang) or anything unknown: nobody took the
    # call; the escalation item stays open so staff can ring back.
    with call_log.session(services) as session:
        call_log.note(session, call.call_sid, outcome="missed", handled_by="none")
    resp.hangup()
    return str(resp)


def voicemail_choice(services: Services, event: VoicemailChoice) -> str:
    """The caller pressed a key at the voicemail menu: 1 asks for a callback."""
    found = _call_and_clinic(services, event.call_sid)
    if found is None:
        return apology_and_hangup(LOST)
    call, clinic = found
    resp = VoiceResponse()
    if event.digits == "1" and call.cli != ANONYMOUS:
        with call_log.session(services) as session:
            _open_item(services, session, call, clinic, "callback", _why(event.why))
            call_log.note(session, call.call_sid, outcome="callback-requested", handled_by="none")
            # The callback request now carries the work the escalation item stood for.
            _close_item(services, session, call.call_sid, "escalation")
        say(resp, CALLBACK_BOOKED, clinic)
        resp.hangup()
        return str(resp)
    say(resp, AFTER_THE_TONE, clinic)
    _record(services, call, clinic, resp)
    return str(resp)


def voicemail_done(services: Services, event: VoicemailDone) -> str:
    """The `<Record>` action: thank the caller and hang up.

    The recording itself arrives through the signed recording status callback, which
    stores it in the region bucket and opens the voicemail item for staff.
    """
    found = _call_and_clinic(services, event.call_sid)
    resp = VoiceResponse()
    if found is not None:
        call, clinic = found
        with call_log.session(services) as session:
            if event.recording_sid and (event.seconds or 0) > 0:
                _close_item(services, session, call.call_sid, "escalation")
            else:
                # Offered voicemail, left none: the log must not say voicemail took it.
                # The escalation item stays open, so staff can still ring back.
                call_log.note(session, call.call_sid, outcome="no-message", handled_by="none")
        say(resp, VOICEMAIL_THANKS, clinic)
    else:
        resp.say(VOICEMAIL_THANKS, language="en-GB")
    resp.hangup()
    return str(resp)


def _call_and_clinic(services: Services, call_sid: str) -> tuple[Call, Clinic] | None:
    call = call_log.get_call(services, call_sid)
    clinic = services.directory.by_id(call.clinic_id) if call and call.clinic_id else None
    if call is None or clinic is None:
        log.warning("escalation webhook for a call we do not know")
        return None
    return call, clinic


def _open_item(
    services: Services, session: Session, call: Call, clinic: Clinic, kind: str, reason: str
) -> None:
    """One item per (call, kind): a retried webhook or a second escalation adds nothing."""
    now = services.clock()
    insert_ignore(
        session,
        WorkItem,
        {
            "kind": kind,
            "call_sid": call.call_sid,
            "clinic_id": clinic.id,
            "phone": call.cli,
            "reason": reason[:64],
            "status": "open",
            "created_at": now,
            "updated_at": now,
            "data_category": "call-metadata",
            "retention_until": retention_until(services.config, clinic, "call-metadata", now),
        },
        ["call_sid", "kind"],
    )


def _close_item(
    services: Services,
    session: Session,
    call_sid: str,
    kind: str,
    statuses: tuple[str, ...] = ("open",),
) -> None:
    """Close the call's item. By default only while nobody has claimed it: a claimed item
    is left to the person working on it."""
    session.execute(
        update(WorkItem)
        .where(WorkItem.call_sid == call_sid, WorkItem.kind == kind, WorkItem.status.in_(statuses))
        .values(status="done", updated_at=services.clock())
    )


def _why(value: str) -> str:
    return value if value in WHY else "unstaffed"
