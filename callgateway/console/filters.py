"""Template filters: masked numbers, clinic-local times, durations, friendly labels."""

from __future__ import annotations

from datetime import date, datetime

from flask import Flask, current_app

from callgateway.console.access import visible_clinics
from callgateway.phone import mask

NONE = "\N{EN DASH}"  # shown where there is no value

OUTCOMES = {
    "human": "Person",
    "escalated": "Put through",
    "voicemail": "Voicemail",
    "callback-requested": "Callback requested",
    "missed": "Missed",
    "failed": "Failed",
    "unknown-number": "Unknown number",
    "closed-message": "Closed message",
    "completed": "Completed",
    "callback-reached": "Called back: spoke to the patient",
    "callback-no-answer": "Called back: no answer",
    "callback-busy": "Called back: line busy",
    "callback-failed": "Called back: the call failed",
    "callback-staff-missed": "Call back not started: staff phone not answered",
}
HANDLERS = {"ai": "AI", "human": "Person", "voicemail": "Voicemail", "none": "Nobody"}
KINDS = {"escalation": "Wants a person", "callback": "Callback request", "voicemail": "Voicemail"}
WHY = {
    "asked-for-person": "asked for a person",
    "caller-request": "asked for a person",
    "emergency": "said something urgent",
    "opted-out-by-voice": "opted out on the call",
    "opt-out-anonymous": "asked to opt out (number withheld)",
    "agent-empty-reply": "the AI failed",
    "agent-unavailable": "the AI was unavailable",
    "state-unavailable": "the call's state was lost",
    "agent-offer": "accepted the offer of a person",
    "anonymous-booking": "wanted to book (number withheld)",
    "anonymous-change": "wanted to change a booking (number withheld)",
    "no-appointment-found": "no appointment found",
    "verification-failed": "could not confirm the booking",
    "no-free-slot": "no free time suited",
    "dtmf-0": "pressed 0",
    "opted-out": "opted out of the AI",
    "consent-unavailable": "consent could not be checked",
    "agent-error": "the AI failed",
    "not-understood": "the AI did not understand",
    "voice-opt-out": "opted out by voice",
    "no-answer": "nobody answered",
    "busy": "line busy",
    "failed": "the call to the team failed",
    "closed": "clinic closed",
    "unstaffed": "no team number set",
}


# Reminders: their status and why one was skipped, cancelled or failed, in words.
REMINDER_STATUSES = {
    "scheduled": "Scheduled",
    "sent": "Sent",
    "skipped": "Not sent",
    "cancelled": "Cancelled",
    "failed": "Failed",
    "delivered": "Delivered",
}
REMINDER_REASONS = {
    "booked-inside-window": "booked too close to the appointment for a reminder",
    "quiet-hours": "it would have gone out in quiet hours",
    "appointment-moved": "the appointment was moved",
    "appointment-cancelled": "the appointment was cancelled",
    "config-changed": "the clinic's reminder settings changed",
    "opted-out": "the patient has opted out",
    "opted-out-at-twilio": "the patient texted STOP (Twilio refused it)",
    "consent-unavailable": "consent could not be checked, so nothing was sent",
    "anonymous-caller": "no number to send to",
    "unknown-clinic": "the clinic is no longer configured",
    "undelivered": "the phone network could not deliver it",
}


def waited(minutes: int) -> str:
    minutes = max(0, int(minutes))
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def reminder_reason(reason: str | None) -> str:
    if not reason:
        return ""
    if reason.startswith("twilio-"):
        return f"Twilio refused it (error {reason.removeprefix('twilio-')})"
    return REMINDER_REASONS.get(reason, reason.replace("-", " "))


def local_time(
    value: datetime | None, clinic_id: str | None = None, fmt: str = "%a %d %b, %H:%M"
) -> str:
    """A time as the clinic reads it on its own wall clock."""
    if value is None:
        return NONE
    clinic = current_app.extensions["callgateway"].directory.by_id(clinic_id) if clinic_id else None
    return value.astimezone(clinic.tz).strftime(fmt) if clinic else value.strftime(fmt + " UTC")


def day(value: date | None) -> str:
    """A calendar date (a retention date): no time of day, so no time zone to convert."""
    return value.strftime("%a %d %b %Y") if value else NONE


def iso_local(value: str | None, clinic_id: str | None = None) -> str:
    if not value:
        return NONE
    try:
        return local_time(datetime.fromisoformat(value), clinic_id)
    except ValueError:
        return value


def duration(seconds: int | None) -> str:
    if seconds is None:
        return NONE
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


def clinic_name(clinic_id: str | None) -> str:
    clinic = current_app.extensions["callgateway"].directory.by_id(clinic_id) if clinic_id else None
    return clinic.name if clinic else (clinic_id or NONE)


def register(app: Flask) -> None:
    app.jinja_env.globals["visible_clinics"] = visible_clinics
    app.jinja_env.filters.update(
        iso_local=iso_local,
        day=day,
        mask=mask,
        local_time=local_time,
        duration=duration,
        clinic_name=clinic_name,
        outcome_label=lambda v: OUTCOMES.get(v or "", v or NONE),
        handler_label=lambda v: HANDLERS.get(v or "", v or NONE),
        kind_label=lambda v: KINDS.get(v or "", v or NONE),
        why_label=lambda v: WHY.get(v or "", v or NONE),
        reminder_status=lambda v: REMINDER_STATUSES.get(v or "", (v or NONE).capitalize()),
        reminder_reason=reminder_reason,
        waited=waited,
    )
