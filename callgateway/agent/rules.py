"""The offline agent: keyword intents, slot filling, a read-back before every write.

Deterministic and cheap (no network), so it is the default and the benchmark's turn. Each
turn is one step of a small state machine kept in the call's Redis state under `stage`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from callgateway.agent import intents
from callgateway.agent.protocol import Chunk, Conversation, Heard, Reply, as_stream
from callgateway.agent.tools import BookArgs, CancelArgs, MoveArgs
from callgateway.booking.dates import (
    When,
    parse_date,
    parse_when,
    say_date,
    say_time,
    say_when,
    widen,
)
from callgateway.config import DAYS, AppointmentType

OPENING = "How can I help you today? I can book, move or cancel an appointment."
HELP = "You can book, move or cancel an appointment, or say 'person' to speak to our team."
ASK_WHEN = (
    "When would you like to come in? You can say a day and time, like next Tuesday "
    "afternoon, or ask for the next free appointment."
)
ASK_DATE = "Please tell me the date of your current appointment, for example Tuesday the 24th."
ANYTHING_ELSE = "Is there anything else I can help with?"
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def spell(ref: str) -> str:
    return " ".join(ref)


class RulesAgent:
    """Stateless object; all conversation state lives in `convo.state`."""

    def stream(self, convo: Conversation, heard: Heard) -> Iterator[Chunk]:
        """Its answer is ready at once: one chunk, then the Reply."""
        return as_stream(self.respond(convo, heard))

    def respond(self, convo: Conversation, heard: Heard) -> Reply:
        text = heard.speech
        stage = convo.state.get("stage", "start")
        switched = self._change_of_mind(convo, text, stage)
        if switched is not None:
            return switched
        handler = getattr(self, f"_stage_{stage}", self._stage_start)
        return handler(convo, text)

    # --- stages --------------------------------------------------------------------------

    def _stage_start(self, convo: Conversation, text: str) -> Reply:
        want = intents.intent(text)
        kind = intents.appointment_type(text, convo.clinic)
        if want is None and intents.is_done(text):
            return self._goodbye(convo)
        when = parse_when(text, convo.clinic.tz, convo.now) if want != "hours" else None
        if want is None and (kind is not None or when is not None):
            want = "availability"
        if want == "hours":
            return self._hours(convo, text)
        if want in ("book", "availability"):
            convo.state["intent"] = "book"
            return self._book(convo, text, kind, when)
        if want in ("move", "cancel"):
            return self._start_change(convo, want, text)
        return self._not_understood(HELP)

    def _stage_book_type(self, convo: Conversation, text: str) -> Reply:
        kind = intents.appointment_type(text, convo.clinic)
        if kind is None:
            return self._not_understood(self._ask_type(convo))
        convo.state["type_id"] = kind.id
        when = parse_when(text, convo.clinic.tz, convo.now)
        if when is None:
            convo.state["stage"] = "book_when"
            return Reply(ASK_WHEN)
        return self._offer(convo, kind, when, "book")

    def _stage_book_when(self, convo: Conversation, text: str) -> Reply:
        return self._when(convo, text, "book")

    def _stage_move_when(self, convo: Conversation, text: str) -> Reply:
        return self._when(convo, text, "move")

    def _when(self, convo: Conversation, text: str, purpose: str) -> Reply:
        kind = self._kind(convo, text if purpose == "book" else "")
        when = parse_when(text, convo.clinic.tz, convo.now)
        if when is None and intents.yes_no(text) == "yes":
            when = self._asap(convo)
        if when is None:
            return self._not_understood("Sorry, which day would suit you? " + ASK_WHEN)
        assert kind is not None
        return self._offer(convo, kind, when, purpose)

    def _stage_book_offer(self, convo: Conversation, text: str) -> Reply:
        return self._offered(convo, text, "book")

    def _stage_move_offer(self, convo: Conversation, text: str) -> Reply:
        return self._offered(convo, text, "move")

    def _offered(self, convo: Conversation, text: str, purpose: str) -> Reply:
        offers: list[dict[str, Any]] = convo.state.get("offers", [])
        when = parse_when(text, convo.clinic.tz, convo.now)
        index = self._match_offer(convo, offers, when)
        if index is None and (when is None or not when.named_day):
            index = intents.choice(text, len(offers))
        if index is not None:
            convo.state["pending"] = offers[index]
            convo.state["stage"] = f"{purpose}_confirm"
            verb = "book" if purpose == "book" else "move it to"
            return Reply(
                f"To confirm: {self._describe(convo, offers[index])}. Shall I {verb} that?"
            )
        if when is not None and when.at is not None and not when.named_day and offers:
            # "how about half past three": the day under discussion, at another time.
            day = datetime.fromisoformat(offers[0]["start"]).astimezone(convo.clinic.tz).date()
            when = When(day, day, at=when.at, named_day=True)
        answer = intents.yes_no(text)
        new_kind = intents.appointment_type(text, convo.clinic) if purpose == "book" else None
        if when is not None or (new_kind and new_kind.id != convo.state.get("type_id")):
            kind = new_kind or self._kind(convo, "")
            assert kind is not None
            return self._offer(convo, kind, when or self._asap(convo), purpose)
        if answer == "yes" and offers:
            return self._commit(convo, offers[0], purpose)
        if answer == "no":
            convo.state["stage"] = f"{purpose}_when"
            return Reply("No problem. What other day or time would suit you?")
        first = self._describe(convo, offers[0]) if offers else "that time"
        return self._not_understood(
            f"Sorry, I didn't catch that. Shall I book {first}? Or tell me another day or time."
            if purpose == "book"
            else f"Sorry, I didn't catch that. Shall I move it to {first}? Or tell me another day."
        )

    def _stage_book_confirm(self, convo: Conversation, text: str) -> Reply:
        return self._confirm(convo, text, "book")

    def _stage_move_confirm(self, convo: Conversation, text: str) -> Reply:
        return self._confirm(convo, text, "move")

    def _confirm(self, convo: Conversation, text: str, purpose: str) -> Reply:
        answer = intents.yes_no(text)
        pending = convo.state.get("pending")
        if answer == "yes" and pending:
            return self._commit(convo, pending, purpose)
        when = parse_when(text, convo.clinic.tz, convo.now)
        if when is not None:
            kind = self._kind(convo, "")
            assert kind is not None
            return self._offer(convo, kind, when, purpose)
        if answer == "no":
            convo.state["stage"] = f"{purpose}_when"
            convo.state.pop("pending", None)
            return Reply("No problem. What other day or time would suit you?")
        return self._not_understood(
            f"Sorry, was that a yes? {self._describe(convo, pending) if pending else ''}".strip()
        )

    def _stage_verify(self, convo: Conversation, text: str) -> Reply:
        day = parse_date(text, convo.clinic.tz, convo.now)
        if day is None:
            return self._not_understood("Sorry, I didn't catch the date. " + ASK_DATE)
        return self._verify(convo, day)

    def _stage_cancel_confirm(self, convo: Conversation, text: str) -> Reply:
        answer = intents.yes_no(text)
        verified = convo.state.get("verified") or {}
        if answer == "yes" and verified:
            result = convo.tools.cancel(
                CancelArgs(
                    appointment_date=date.fromisoformat(verified["date"]), caller_confirmed=True
                )
            )
            if not result["ok"]:
                return self._tool_failed(convo, result)
            convo.state["stage"] = "anything_else"
            return Reply(
                f"Your {result['appointment_type'].lower()} on {result['spoken']} is cancelled. "
                f"{self._sms_note(convo)}{ANYTHING_ELSE}",
                outcome="cancelled",
            )
        if answer == "no":
            convo.state["stage"] = "anything_else"
            return Reply(f"All right, I've left it as it is. {ANYTHING_ELSE}")
        return self._not_understood("Sorry, shall I cancel it? Please say yes or no.")

    def _stage_offer_person(self, convo: Conversation, text: str) -> Reply:
        answer = intents.yes_no(text)
        if answer == "yes":
            return Reply("", next="person", reason=convo.state.get("person_reason", "agent-offer"))
        if answer == "no":
            convo.state["stage"] = "anything_else"
            return Reply(f"All right. {ANYTHING_ELSE}")
        return self._stage_start(convo, text)

    def _stage_anything_else(self, convo: Conversation, text: str) -> Reply:
        if intents.intent(text) is None:
            if intents.is_done(text) or intents.yes_no(text) == "no":
                return self._goodbye(convo)
            if intents.yes_no(text) == "yes":
                convo.state["stage"] = "start"
                return Reply("What else can I help with?")
        convo.state["stage"] = "start"
        return self._stage_start(convo, text)

    # --- steps ---------------------------------------------------------------------------

    def _change_of_mind(self, convo: Conversation, text: str, stage: str) -> Reply | None:
        """'Actually, I need to cancel my appointment': a new request mid-way starts over."""
        if stage in ("start", "anything_else", "offer_person") or not text:
            return None
        norm = intents.normalise(text)
        if "appointment" not in norm and "booking" not in norm:
            return None
        want = intents.intent(text)
        current = convo.state.get("intent")
        if want in ("move", "cancel") and want != current:
            return self._start_change(convo, want, text)
        if want == "book" and current in ("move", "cancel") and "new" in norm.split():
            convo.state["intent"] = "book"
            return self._book(convo, text, intents.appointment_type(text, convo.clinic), None)
        return None

    def _book(
        self, convo: Conversation, text: str, kind: AppointmentType | None, when: When | None
    ) -> Reply:
        kind = kind or self._kind(convo, "")
        if kind is None:
            convo.state["stage"] = "book_type"
            return Reply(self._ask_type(convo))
        convo.state["type_id"] = kind.id
        if when is None:
            convo.state["stage"] = "book_when"
            return Reply(f"Certainly, a {kind.name.lower()}. {ASK_WHEN}")
        return self._offer(convo, kind, when, "book")

    def _start_change(self, convo: Conversation, want: str, text: str) -> Reply:
        convo.state.update(intent=want, offers=[], verified=None)
        convo.state.pop("pending", None)
        if convo.anonymous:
            convo.state.update(stage="offer_person", person_reason="anonymous-change")
            return Reply(
                "Your number is withheld, so I can't find your appointment. Would you like "
                "me to put you through to a member of our team?"
            )
        if not convo.tools.has_upcoming():
            convo.state.update(stage="offer_person", person_reason="no-appointment-found")
            return Reply(
                "I can't find an upcoming appointment for the number you're calling from. "
                "Would you like to speak to a member of our team?"
            )
        day = parse_date(text, convo.clinic.tz, convo.now)
        if day is not None:
            return self._verify(convo, day)
        convo.state["stage"] = "verify"
        return Reply(f"Of course. {ASK_DATE}")

    def _verify(self, convo: Conversation, day: date) -> Reply:
        convo.tools.heard_date(day)
        found = convo.tools.mine_on(day)
        if found is None:
            fails = convo.state["verify_fails"] = convo.state.get("verify_fails", 0) + 1
            if fails >= 2:
                return Reply(
                    "I'm sorry, I can't match that date to your appointments.",
                    next="person",
                    reason="verification-failed",
                )
            convo.state["stage"] = "verify"
            return Reply(
                f"I can't find an appointment on {say_date(day, convo.clinic.language)} for "
                "the number you're calling from. Could you check the date for me?"
            )
        kind = convo.clinic.appointment_type(found.type_id)
        name = kind.name if kind else "appointment"
        convo.state["verified"] = {
            "date": day.isoformat(),
            "type_id": found.type_id,
            "ref": found.ref,
        }
        spoken = say_when(found.starts_at, convo.clinic.tz, convo.clinic.language)
        if convo.state.get("intent") == "cancel":
            convo.state["stage"] = "cancel_confirm"
            return Reply(f"I have your {name.lower()} on {spoken}. Shall I cancel it?")
        convo.state["type_id"] = found.type_id
        convo.state["stage"] = "move_when"
        return Reply(f"I have your {name.lower()} on {spoken}. When would you like to move it to?")

    def _offer(self, convo: Conversation, kind: AppointmentType, when: When, purpose: str) -> Reply:
        result = convo.tools.search(kind, when)
        slots = result["slots"]
        convo.state["type_id"] = kind.id
        if not slots:
            convo.state.update(stage="offer_person", person_reason="no-free-slot")
            return Reply(
                f"I'm sorry, I have no free {kind.name.lower()} in the next four weeks. Would "
                "you like to speak to a member of our team?"
            )
        lead = ""
        if result.get("closed"):
            lead = f"We're closed on {result['closed'][0]}. "
        elif result.get("nothing_in_window"):
            lead = "I'm sorry, there's nothing free then. "
        nearest = "nearest" if lead else "first"
        first = slots[0]["spoken"]
        others = self._alternatives(convo, slots)
        if convo.anonymous and purpose == "book":
            convo.state.update(stage="offer_person", person_reason="anonymous-booking")
            return Reply(
                f"{lead}The {nearest} {kind.name.lower()} I have is {first}{others}. As your "
                "number is withheld, a member of our team needs to make the booking. Shall I "
                "put you through?"
            )
        convo.state["stage"] = f"{purpose}_offer"
        verb = "book that" if purpose == "book" else "move it there"
        return Reply(
            f"{lead}The {nearest} {kind.name.lower()} I have is {first}{others}. Shall I {verb}?"
        )

    def _commit(self, convo: Conversation, offer: dict[str, Any], purpose: str) -> Reply:
        start = datetime.fromisoformat(offer["start"])
        if purpose == "book":
            result = convo.tools.book(
                BookArgs(appointment_type=offer["type_id"], start=start, caller_confirmed=True)
            )
        else:
            verified = convo.state.get("verified") or {}
            result = convo.tools.move(
                MoveArgs(
                    appointment_date=date.fromisoformat(verified["date"]),
                    new_start=start,
                    caller_confirmed=True,
                )
            )
        if not result["ok"]:
            if result["error"] == "slot_taken":
                kind = self._kind(convo, "")
                assert kind is not None
                local = start.astimezone(convo.clinic.tz)
                near = When(local.date(), local.date(), earliest=local.time(), named_day=True)
                again = self._offer(convo, kind, near, purpose)
                again.say = "I'm sorry, that time has just been taken. " + again.say
                return again
            return self._tool_failed(convo, result)
        convo.state.pop("pending", None)
        convo.state["stage"] = "anything_else"
        name = result["appointment_type"]
        ref = spell(result["ref"])
        if purpose == "book":
            return Reply(
                f"Your {name.lower()} is booked for {result['spoken']}. Your reference is "
                f"{ref}. {self._sms_note(convo)}{ANYTHING_ELSE}",
                outcome="booked",
            )
        return Reply(
            f"Done. Your {name.lower()} is now on {result['spoken']}. Your reference is still "
            f"{ref}. {self._sms_note(convo)}{ANYTHING_ELSE}",
            outcome="moved",
        )

    # --- small pieces --------------------------------------------------------------------

    def _kind(self, convo: Conversation, text: str) -> AppointmentType | None:
        named = intents.appointment_type(text, convo.clinic) if text else None
        if named is not None:
            convo.state["type_id"] = named.id
            return named
        return convo.tools.appointment_type(convo.state.get("type_id"))

    def _ask_type(self, convo: Conversation) -> str:
        names = [t.name for t in convo.clinic.appointment_types]
        if not names:
            return "Which kind of appointment would you like?"
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        return f"Which kind of appointment would you like: {listed}?"

    def _asap(self, convo: Conversation) -> When:
        today = convo.now.astimezone(convo.clinic.tz).date()
        return widen(When(today, today))

    def _match_offer(
        self, convo: Conversation, offers: list[dict[str, Any]], when: When | None
    ) -> int | None:
        """The offer the caller named by its time ("2 pm", "Tuesday at 3")."""
        if when is None or when.at is None:
            return None
        for i, offer in enumerate(offers):
            local = datetime.fromisoformat(offer["start"]).astimezone(convo.clinic.tz)
            same_time = (local.hour, local.minute) == (when.at.hour, when.at.minute)
            same_day = not when.named_day or when.first_day == local.date()
            if same_time and same_day:
                return i
        return None

    def _alternatives(self, convo: Conversation, slots: list[dict[str, Any]]) -> str:
        if len(slots) < 2:
            return ""
        tz, lang = convo.clinic.tz, convo.clinic.language
        first_day = datetime.fromisoformat(slots[0]["start"]).astimezone(tz).date()
        spoken = []
        for slot in slots[1:]:
            local = datetime.fromisoformat(slot["start"]).astimezone(tz)
            spoken.append(say_time(local, lang) if local.date() == first_day else slot["spoken"])
        return ", and I also have " + " or ".join(spoken)

    def _describe(self, convo: Conversation, offer: dict[str, Any]) -> str:
        kind = convo.clinic.appointment_type(offer["type_id"])
        name = kind.name if kind else "appointment"
        when = say_when(
            datetime.fromisoformat(offer["start"]), convo.clinic.tz, convo.clinic.language
        )
        return f"{name.lower()} on {when}"

    def _sms_note(self, convo: Conversation) -> str:
        return "We'll send you a text to confirm. " if convo.state.get("sms") else ""

    def _hours(self, convo: Conversation, text: str) -> Reply:
        clinic, lang = convo.clinic, convo.clinic.language
        day = parse_date(text, clinic.tz, convo.now)
        convo.state["stage"] = "anything_else"
        if day is not None:
            ranges = clinic.opening_hours(day.weekday())
            if day in clinic.closed_dates or not ranges:
                return Reply(f"We're closed on {say_date(day, lang)}. {ANYTHING_ELSE}")
            spoken = " and ".join(f"{say_time(a, lang)} to {say_time(b, lang)}" for a, b in ranges)
            return Reply(f"On {say_date(day, lang)} we're open {spoken}. {ANYTHING_ELSE}")
        parts = []
        for i, name in enumerate(_WEEKDAY_NAMES):
            ranges = clinic.opening_hours(i)
            if DAYS[i] in clinic.hours and ranges:
                spoken = " and ".join(
                    f"{say_time(a, lang)} to {say_time(b, lang)}" for a, b in ranges
                )
                parts.append(f"{name} {spoken}")
        if not parts:
            return Reply(f"I don't have our opening hours to hand. {ANYTHING_ELSE}")
        return Reply(f"We're open {'; '.join(parts)}. {ANYTHING_ELSE}")

    def _tool_failed(self, convo: Conversation, result: dict[str, Any]) -> Reply:
        return Reply(
            "I'm sorry, I couldn't do that.", next="person", reason=f"tool-{result['error']}"
        )

    def _not_understood(self, text: str) -> Reply:
        return Reply(text, understood=False)

    def _goodbye(self, convo: Conversation) -> Reply:
        return Reply(f"Thank you for calling {convo.clinic.name}. Goodbye.", next="hangup")
