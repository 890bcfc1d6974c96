"""When a call may be recorded: only for clinics that record, only after the announcement."""

from __future__ import annotations

import logging

from callgateway.adapters.twilio_rest import TwilioError
from callgateway.config import Clinic
from callgateway.db.models import Call
from recordings.desk import RecordingDesk

log = logging.getLogger(__name__)


def start_recording(desk: RecordingDesk, call: Call, clinic: Clinic) -> bool:
    """Ask Twilio to record the call. Called only from the webhook that follows the
    announcement, so the caller has always heard it first. A failure to start is logged and
    the call goes on unrecorded: better an unrecorded call than a dropped patient."""
    if not clinic.recording.enabled or desk.twilio is None:
        return False
    try:
        desk.twilio.start_recording(
            call.call_sid, desk.url("/twilio/voice/recording/status?kind=recording")
        )
    except TwilioError as exc:
        log.warning("recording did not start", extra={"clinic": clinic.id, "error": str(exc)})
        return False
    return True
