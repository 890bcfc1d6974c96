"""The recording status callback, for call recordings and voicemails alike.

Twilio calls it at the URL the gateway gave (`?kind=recording` from the REST start or a
recorded Dial leg, `?kind=voicemail` from the voicemail `<Record>`). Signed like every
webhook; idempotent on RecordingSid; an empty 200, or a 503 when the recording's job could
not be queued, so that Twilio delivers the callback again (its row waits as pending).
"""

from __future__ import annotations

from flask import Response, request

from callgateway import events
from recordings.lifecycle import KIND_BY_SOURCE, KINDS, recording_status
from webhooks.blueprint import bp, empty, services
from webhooks.forms import BadEvent, int_field, sid


@bp.post("/voice/recording/status")
def recording_status_callback() -> Response:
    try:
        recording_sid = sid(request.form, "RecordingSid", "RE")
        call_sid = sid(request.form, "CallSid", "CA")
    except BadEvent:
        return empty()
    kind = request.args.get("kind", "")
    if kind not in KINDS:
        # When the query lost its kind, Twilio's RecordingSource still tells a <Record> apart.
        kind = KIND_BY_SOURCE.get(request.form.get("RecordingSource", ""), "recording")
    queued = recording_status(
        services().recordings,
        events.RecordingEvent(
            recording_sid=recording_sid,
            call_sid=call_sid,
            kind=kind,
            status=(request.form.get("RecordingStatus") or "completed")[:16],
            duration_seconds=int_field(request.form, "RecordingDuration"),
            media_url=(request.form.get("RecordingUrl") or "")[:512] or None,
        ),
    )
    if not queued:
        return Response("", status=503, mimetype="text/plain")
    return empty()
