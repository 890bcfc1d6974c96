"""The agent's hands: the only way either agent reads slots or changes an appointment.

Arguments are validated (pydantic) before anything is read or written, whoever produced
them: the rules agent or a language model. The rules enforced here hold for both:
- a caller books only a slot this call actually offered, and only after confirming;
- a caller moves or cancels only their own appointment (same number at this clinic) and
  only after saying its date in this call;
- an anonymous caller can hear availability but cannot book, move or cancel.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from callgateway import metrics
from callgateway.booking import appointments, outbox
from callgateway.booking.dates import When, parse_when, say_date, say_when, widen
from callgateway.booking.slots import (
    Slot,
    day_bounds,
    free_slots_among,
    is_closed_day,
    pick_offers,
    taken_block_numbers,
)
from callgateway.config import AppointmentType, Clinic
from callgateway.db.models import Appointment

if TYPE_CHECKING:
    from collections.abc import Callable

    from callgateway.wiring import Services

log = logging.getLogger(__name__)


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FindSlotsArgs(_Args):
    appointment_type: str = Field(max_length=64)
    when: str = Field("", max_length=200, description="the caller's own words for the time")


class BookArgs(_Args):
    appointment_type: str = Field(max_length=64)
    start: AwareDatetime
    caller_confirmed: bool


class CancelArgs(_Args):
    appointment_date: date
    caller_confirmed: bool


class MoveArgs(CancelArgs):
    new_start: AwareDatetime


class TransferArgs(_Args):
    reason: str = Field("caller-request", max_length=64)


class NoArgs(_Args):
    pass


class ToolError(Exception):
    """A refusal with a short code the agent can act on."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Tools:
    def __init__(
        self,
        services: Services,
        clinic: Clinic,
        call_sid: str,
        caller: str,
        clinic_number: str,
        state: dict[str, Any],
        now: datetime,
        log_event: Callable[[str, str, dict[str, Any] | None], None],
    ) -> None:
        self.services = services
        self.clinic = clinic
        self.call_sid = call_sid
        self.caller = caller
        self.clinic_number = clinic_number
        self.state = state
        self.now = now
        self._log = log_event

    # --- dispatch (the OpenAI agent's entry point) -------------------------------------

    def call(self, name: str, raw: dict[str, Any]) -> dict[str, Any]:
        """Run a tool by name with unvalidated arguments; always returns a JSON-able dict."""
        handlers: dict[str, tuple[type[_Args], Callable[[Any], dict[str, Any]]]] = {
            "find_slots": (FindSlotsArgs, self.find_slots),
            "book": (BookArgs, self.book),
            "move": (MoveArgs, self.move),
            "cancel": (CancelArgs, self.cancel),
            "transfer_to_person": (TransferArgs, self.transfer_to_person),
            "record_opt_out": (NoArgs, self.record_opt_out),
        }
        if name not in handlers:
            result: dict[str, Any] = {"ok": False, "error": "unknown_tool"}
            self._log("tool", name, {"error": "unknown_tool"})
            return result
        model, handler = handlers[name]
        try:
            args = model.model_validate(raw)
        except ValidationError as exc:
            fields = sorted({".".join(str(p) for p in e["loc"]) or "(args)" for e in exc.errors()})
            self._log("tool", name, {"error": "invalid_arguments", "fields": fields})
            return {"ok": False, "error": "invalid_arguments", "fields": fields}
        return handler(args)

    # --- reading -----------------------------------------------------------------------

    def appointment_type(self, type_id: str | None) -> AppointmentType | None:
        if type_id:
            found = self.clinic.appointment_type(type_id)
            if found is None:  # a model may pass the spoken name rather than the id
                found = next(
                    (t for t in self.clinic.appointment_types if t.name.lower() == type_id.lower()),
                    None,
                )
            return found
        default = self.clinic.default_appointment_type
        if default:
            return self.clinic.appointment_type(default)
        types = self.clinic.appointment_types
        return types[0] if len(types) == 1 else None

    def slots_for(self, kind: AppointmentType, when: When) -> list[Slot]:
        return self._slots_for(kind, when)[0]

    def _slots_for(
        self, kind: AppointmentType, when: When, wider: When | None = None
    ) -> tuple[list[Slot], bool]:
        """Free slots in `when`; if there are none and `wider` is given, those in `wider`
        (which starts on the same day), read in the same session. Returns (slots, widened)."""
        start, end = day_bounds(self.clinic, when.first_day, when.last_day)
        with self.services.db.session() as session:
            taken = taken_block_numbers(session, self.clinic.id, start, end)
            slots = self._free(kind, when, taken)
            if slots or wider is None:
                return slots, False
            _, wider_end = day_bounds(self.clinic, wider.first_day, wider.last_day)
            if wider_end > end:  # what is held in the days `when` did not cover
                taken |= taken_block_numbers(session, self.clinic.id, end, wider_end)
        return self._free(kind, wider, taken), True

    def _free(self, kind: AppointmentType, when: When, taken: set[int]) -> list[Slot]:
        # Offers come from the first free times (or one named day): a few dozen suffice.
        limit = 500 if when.at is not None else 48
        return free_slots_among(self.clinic, kind, when, self.now, taken, limit=limit)

    def find_slots(self, args: FindSlotsArgs) -> dict[str, Any]:
        kind = self.appointment_type(args.appointment_type)
        if kind is None:
            return self._done("find_slots", args, {"ok": False, "error": "unknown_type"})
        when = parse_when(args.when, self.clinic.tz, self.now) if args.when else None
        return self.search(kind, when)

    def search(self, kind: AppointmentType, when: When | None) -> dict[str, Any]:
        """Offers for the wish; when it is closed or full, the nearest free times after it."""
        when = when or widen(self._today_window())
        result = self._search(kind, when)
        window = {
            "appointment_type": kind.id,
            "from": when.first_day.isoformat(),
            "to": when.last_day.isoformat(),
            "earliest": when.earliest.isoformat() if when.earliest else None,
            "latest": when.latest.isoformat() if when.latest else None,
            "at": when.at.isoformat() if when.at else None,
        }
        self._log("tool", "find_slots", {"args": window, "result": result})
        return result

    def _search(self, kind: AppointmentType, when: When) -> dict[str, Any]:
        slots, widened = self._slots_for(kind, when, widen(when))
        result: dict[str, Any] = {"ok": True, "appointment_type": kind.id}
        if when.named_day:
            closed = [d for d in when.days if is_closed_day(self.clinic, d)]
            if closed and len(closed) == len(when.days):
                result["closed"] = [say_date(d, self.clinic.language) for d in closed]
        if widened:
            result["nothing_in_window"] = True
        offers = pick_offers(self.clinic, slots, when)
        self.state["offers"] = [{"start": s.start.isoformat(), "type_id": kind.id} for s in offers]
        self.state["type_id"] = kind.id
        result["slots"] = [
            {
                "start": s.start.astimezone(self.clinic.tz).isoformat(),
                "spoken": say_when(s.start, self.clinic.tz, self.clinic.language),
            }
            for s in offers
        ]
        return result

    def _today_window(self) -> When:
        today = self.now.astimezone(self.clinic.tz).date()
        return When(today, today)

    def offered(self, start: datetime, type_id: str) -> bool:
        at = start.astimezone(UTC)
        return any(
            datetime.fromisoformat(o["start"]) == at and o["type_id"] == type_id
            for o in self.state.get("offers", [])
        )

    def heard_date(self, day: date) -> None:
        """The caller said this date in this call (the voice confirmation for move/cancel)."""
        said = self.state.setdefault("said_dates", [])
        if day.isoformat() not in said:
            said.append(day.isoformat())

    def mine_on(self, day: date) -> Appointment | None:
        """The caller's own booked appointment on that local day, if the caller said it."""
        if self.caller == "anonymous" or day.isoformat() not in self.state.get("said_dates", []):
            return None
        with self.services.db.session() as session:
            mine = appointments.upcoming(session, self.clinic.id, self.caller, self.now)
        found = appointments.on_local_day(mine, self.clinic, day)
        return found[0] if found else None

    def has_upcoming(self) -> bool:
        if self.caller == "anonymous":
            return False
        with self.services.db.session() as session:
            return bool(appointments.upcoming(session, self.clinic.id, self.caller, self.now))

    # --- writing -----------------------------------------------------------------------

    def book(self, args: BookArgs) -> dict[str, Any]:
        try:
            kind = self._writable(args.appointment_type, args.caller_confirmed)
            if not self.offered(args.start, kind.id):
                raise ToolError("not_offered", "book only a slot find_slots offered in this call")
            appointment = self._write(
                "booked",
                lambda s: appointments.book(
                    s,
                    self.services.config,
                    self.clinic,
                    phone=self.caller,
                    type_id=kind.id,
                    start=args.start,
                    now=self.now,
                    call_sid=self.call_sid,
                ),
            )
        except ToolError as exc:
            return self._done("book", args, {"ok": False, "error": exc.code})
        return self._done("book", args, self._confirmation(appointment))

    def move(self, args: MoveArgs) -> dict[str, Any]:
        try:
            current = self._verified(args.appointment_date, args.caller_confirmed)
            if not self.offered(args.new_start, current.type_id):
                raise ToolError("not_offered", "move only to a slot find_slots offered")
            appointment = self._write(
                "moved",
                lambda s: appointments.move(
                    s,
                    self.services.config,
                    self.clinic,
                    appointment_id=current.id,
                    phone=self.caller,
                    start=args.new_start,
                    now=self.now,
                ),
            )
        except ToolError as exc:
            return self._done("move", args, {"ok": False, "error": exc.code})
        return self._done("move", args, self._confirmation(appointment))

    def cancel(self, args: CancelArgs) -> dict[str, Any]:
        try:
            current = self._verified(args.appointment_date, args.caller_confirmed)
            appointment = self._write(
                "cancelled",
                lambda s: appointments.cancel(
                    s, self.clinic, appointment_id=current.id, phone=self.caller, now=self.now
                ),
            )
        except ToolError as exc:
            return self._done("cancel", args, {"ok": False, "error": exc.code})
        return self._done("cancel", args, self._confirmation(appointment))

    def transfer_to_person(self, args: TransferArgs) -> dict[str, Any]:
        self.state["transfer"] = args.reason or "caller-request"
        return self._done("transfer_to_person", args, {"ok": True})

    def record_opt_out(self, args: NoArgs | None = None) -> dict[str, Any]:
        if self.caller == "anonymous":
            return self._done("record_opt_out", args, {"ok": False, "error": "anonymous_caller"})
        self.services.consent.record_voice_opt_out(self.clinic.id, self.caller, self.call_sid)
        self.state["opted_out"] = True
        self.state["transfer"] = "opted-out-by-voice"
        return self._done("record_opt_out", args, {"ok": True})

    # --- helpers -----------------------------------------------------------------------

    def _writable(self, type_id: str, confirmed: bool) -> AppointmentType:
        if self.caller == "anonymous":
            raise ToolError("anonymous_caller", "a person must book for a withheld number")
        if not confirmed:
            raise ToolError("not_confirmed", "read the details back and get a yes first")
        kind = self.appointment_type(type_id)
        if kind is None:
            raise ToolError("unknown_type", "no such appointment type")
        return kind

    def _verified(self, day: date, confirmed: bool) -> Appointment:
        if self.caller == "anonymous":
            raise ToolError("anonymous_caller", "a person must help a withheld number")
        if day.isoformat() not in self.state.get("said_dates", []):
            raise ToolError("date_not_said", "ask the caller for the date of the appointment")
        current = self.mine_on(day)
        if current is None:
            raise ToolError("no_appointment_that_day", "no appointment of theirs on that date")
        if not confirmed:
            raise ToolError("not_confirmed", "read the details back and get a yes first")
        return current

    def _write(self, event: str, change: Callable[[Any], Appointment]) -> Appointment:
        """Run the change and queue its bucket copy and SMS in one transaction; then enqueue."""

        sms_ok = self.services.gate.may(self.clinic.id, self.caller, "automated_sms").allowed
        for _attempt in range(3):
            try:
                with self.services.db.session() as session:
                    appointment = change(session)
                    ids = outbox.appointment_changed(
                        session,
                        self.clinic,
                        appointment,
                        event,
                        self.now,
                        sms_from=self.clinic_number if sms_ok else None,
                    )
            except appointments.RefCollision:
                continue
            except appointments.SlotTaken:
                raise ToolError("slot_taken", "someone else just took that time") from None
            except appointments.NotYours:
                raise ToolError("no_appointment_that_day", "not the caller's appointment") from None
            except appointments.NotBookable:
                raise ToolError("not_bookable", "that time cannot be booked") from None
            outbox.enqueue(self.services, ids)
            # After the commit: whatever follows an appointment (its reminders) follows it.
            self.services.appointment_changed(self.clinic, appointment.id, event)
            self.state["offers"] = []
            self.state["sms"] = sms_ok
            metrics.BOOKINGS.labels(event).inc()
            log.info("appointment %s", event, extra={"clinic": self.clinic.id})
            return appointment
        raise ToolError("busy", "could not allocate a reference")

    def _confirmation(self, appointment: Appointment) -> dict[str, Any]:
        kind = self.clinic.appointment_type(appointment.type_id)
        return {
            "ok": True,
            "ref": appointment.ref,
            "status": appointment.status,
            "appointment_type": kind.name if kind else appointment.type_id,
            "start": appointment.starts_at.astimezone(self.clinic.tz).isoformat(),
            "spoken": say_when(appointment.starts_at, self.clinic.tz, self.clinic.language),
        }

    def _done(self, name: str, args: _Args | None, result: dict[str, Any]) -> dict[str, Any]:
        self._log(
            "tool",
            name,
            {"args": args.model_dump(mode="json") if args else {}, "result": result},
        )
        return result
