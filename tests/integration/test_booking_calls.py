"""Whole booking conversations through signed webhooks, on SQLite and PostgreSQL.

The clock is pinned to Monday 23 November 2026, 09:00 in London, so "next Tuesday
afternoon" is Tuesday 24 November from 12:00. Twilio's REST API is `responses`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import parse_qs

import responses

from callgateway.booking import outbox
from callgateway.db.models import Appointment, Call, CallTurn, Message, OutboxItem, SlotHold
from callgateway.wiring import Services
from consent import cache as consent_cache
from tests.support.booking import (  # noqa: F401  (the aws, svc and rest fixtures)
    TURN,
    Phone,
    book_tuesday_afternoon,
    booked,
    fixture_aws,
    fixture_rest,
    fixture_svc,
    rows,
)
from tests.support.settings import BASE_URL
from tests.support.twilio import (
    CLINIC_EU,
    CLINIC_UK,
    PATIENT,
    PATIENT_2,
    TwilioSim,
    sid,
)


def test_the_agent_greets_inside_a_gather_that_listens_for_speech_and_keys(
    tw: TwilioSim, rest: responses.RequestsMock
) -> None:
    phone = Phone(tw)
    heard = phone.dial()
    assert heard.index("Calls are recorded") < heard.index("How can I help you today?")
    gather = re.search(r"<Gather [^>]*>", phone.last).group(0)
    for attr in (
        'input="speech dtmf"',
        'speechTimeout="auto"',
        'language="en-GB"',
        'numDigits="1"',
        f'action="{BASE_URL}{TURN}?step=1"',
        'actionOnEmptyResult="true"',
        'hints="Initial assessment, Follow-up session, book, move, cancel, person"',
    ):
        assert attr in gather
    # The recording was started only by the webhook after the announcement.
    assert [c.request.url.rsplit("/", 1)[-1] for c in rest.calls] == ["Recordings.json"]


def test_booking_next_tuesday_afternoon_in_a_few_turns(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    phone = Phone(tw)
    phone.dial()
    heard = phone.say("I'd like to book an initial assessment next Tuesday afternoon")
    assert heard == (
        "The first initial assessment I have is Tuesday 24 November at midday, and I also "
        "have 1 pm or 2 pm. Shall I book that?"
    )
    heard = phone.say("yes please")
    (appointment,) = booked(svc)
    assert heard.startswith("Your initial assessment is booked for Tuesday 24 November at midday.")
    assert f"Your reference is {' '.join(appointment.ref)}." in heard
    assert appointment.phone == PATIENT and appointment.clinic_id == "riverside-physio"
    assert appointment.starts_at == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert appointment.ends_at == datetime(2026, 11, 24, 12, 45, tzinfo=UTC)
    assert appointment.data_category == "appointment"
    assert [h.block_start.minute for h in rows(svc, SlotHold)] == [0, 15, 30]
    assert phone.say("no thanks, that's all") == (
        "Thank you for calling Riverside Physiotherapy. Goodbye."
    )
    assert phone.last.rstrip().endswith("<Hangup /></Response>")
    phone.hang_up()
    (call,) = rows(svc, Call)
    assert (call.handled_by, call.outcome, call.status) == ("ai", "booked", "completed")


def test_picking_another_offered_time_is_read_back_before_booking(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    phone = Phone(tw)
    phone.dial()
    phone.say("can I book an initial assessment next Tuesday afternoon")
    assert phone.say("2 pm would be better") == (
        "To confirm: initial assessment on Tuesday 24 November at 2 pm. Shall I book that?"
    )
    assert booked(svc) == []  # nothing written before the yes
    phone.say("yes")
    assert [a.starts_at.hour for a in booked(svc)] == [14]


def test_a_time_not_offered_searches_that_same_day(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    phone = Phone(tw)
    phone.dial()
    phone.say("can I book an initial assessment next Tuesday afternoon")
    heard = phone.say("how about half past three")
    assert heard.startswith("The first initial assessment I have is Tuesday 24 November at 3:30 pm")


def test_a_change_of_mind_about_the_day_searches_again_and_books_nothing_yet(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    phone = Phone(tw)
    phone.dial()
    phone.say("I want to book an initial assessment tomorrow at 10")
    heard = phone.say("no actually, Wednesday morning instead")
    assert heard.startswith("The first initial assessment I have is Wednesday 25 November at 8 am")
    assert booked(svc) == []
    phone.say("yes")
    assert [a.starts_at for a in booked(svc)] == [datetime(2026, 11, 25, 8, 0, tzinfo=UTC)]


def test_tomorrow_at_3_offers_3_pm_tomorrow(tw: TwilioSim, rest: responses.RequestsMock) -> None:
    phone = Phone(tw)
    phone.dial()
    heard = phone.say("I need a follow-up session tomorrow at 3")
    assert heard.startswith("The first follow-up session I have is Tuesday 24 November at 3 pm")


def test_a_closed_day_is_named_and_the_nearest_free_time_offered(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    phone = Phone(tw)
    phone.dial()
    heard = phone.say("could I book an initial assessment on Saturday")
    assert heard.startswith(
        "We're closed on Saturday 28 November. The nearest initial assessment I have is "
        "Monday 30 November at 8 am"
    )


def test_two_callers_cannot_get_the_same_slot(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    first, second = Phone(tw, PATIENT), Phone(tw, PATIENT_2)
    for phone in (first, second):
        phone.dial()
        phone.say("initial assessment next Tuesday afternoon please")
    assert "booked for Tuesday 24 November at midday" in first.say("yes")
    heard = second.say("yes")
    assert heard.startswith("I'm sorry, that time has just been taken.")
    assert "Tuesday 24 November at 12:45 pm" in heard  # the next free start that day
    assert len(booked(svc)) == 1


def test_moving_needs_the_date_of_the_appointment_and_keeps_the_reference(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    book_tuesday_afternoon(tw)
    (original,) = booked(svc)
    phone = Phone(tw)
    phone.dial()
    assert phone.say("I need to move my appointment") == (
        "Of course. Please tell me the date of your current appointment, for example "
        "Tuesday the 24th."
    )
    heard = phone.say("it's on Wednesday")
    assert heard.startswith("I can't find an appointment on Wednesday 25 November")
    heard = phone.say("sorry, Tuesday")
    assert heard == (
        "I have your initial assessment on Tuesday 24 November at midday. When would you like "
        "to move it to?"
    )
    heard = phone.say("Thursday morning")
    assert heard.startswith("The first initial assessment I have is Thursday 26 November at 8 am")
    heard = phone.say("yes")
    assert heard.startswith("Done. Your initial assessment is now on Thursday 26 November at 8 am.")
    (moved,) = booked(svc)
    assert moved.id == original.id and moved.ref == original.ref
    assert moved.starts_at == datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    # The old blocks are free again, the new ones held.
    assert {h.block_start.day for h in rows(svc, SlotHold)} == {26}
    assert rows(svc, Call)[-1].outcome == "moved"


def test_cancelling_reads_the_appointment_back_first(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    book_tuesday_afternoon(tw)
    phone = Phone(tw)
    phone.dial()
    assert phone.say("I need to cancel my appointment on Tuesday") == (
        "I have your initial assessment on Tuesday 24 November at midday. Shall I cancel it?"
    )
    assert booked(svc)  # still there until the yes
    heard = phone.say("yes")
    assert heard.startswith(
        "Your initial assessment on Tuesday 24 November at midday is cancelled."
    )
    (appointment,) = rows(svc, Appointment)
    assert appointment.status == "cancelled"
    assert rows(svc, SlotHold) == []


def test_another_number_cannot_move_or_cancel_my_appointment(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    book_tuesday_afternoon(tw)
    phone = Phone(tw, PATIENT_2)
    phone.dial()
    heard = phone.say("cancel my appointment on Tuesday")
    assert heard.startswith("I can't find an upcoming appointment for the number you're calling")
    assert len(booked(svc)) == 1


def test_anonymous_caller_hears_availability_but_is_offered_a_person_to_book(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    phone = Phone(tw, "Anonymous")
    phone.dial()
    heard = phone.say("do you have an initial assessment next Tuesday afternoon")
    assert "Tuesday 24 November at midday" in heard
    assert "a member of our team needs to make the booking. Shall I put you through?" in heard
    phone.say("yes please")
    assert phone.dialled_person
    assert booked(svc) == []


def test_asking_for_a_person_mid_booking_dials_the_clinic(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    phone = Phone(tw)
    phone.dial()
    phone.say("book an initial assessment next Tuesday afternoon")
    phone.say("can I speak to a receptionist")
    assert phone.dialled_person
    assert booked(svc) == []


def test_pressing_0_reaches_a_person(tw: TwilioSim, rest: responses.RequestsMock) -> None:
    phone = Phone(tw)
    phone.dial()
    phone.say(digits="0")
    assert phone.dialled_person


def test_silence_is_reprompted_twice_then_a_person(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    phone = Phone(tw)
    phone.dial()
    first = phone.say("")
    assert first.startswith("Sorry, I didn't hear anything. How can I help you today?")
    assert phone.listening
    phone.say("")
    assert phone.listening
    heard = phone.say("")
    assert heard.startswith("I'm sorry, I'm having trouble understanding.")
    assert phone.dialled_person


def test_nonsense_is_answered_safely_and_understanding_resets_the_count(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    phone = Phone(tw)
    phone.dial()
    assert phone.say("purple monkey dishwasher").startswith("You can book, move or cancel")
    phone.say("<script>alert(1)</script> DROP TABLE appointments;")
    assert phone.listening
    phone.say("book an initial assessment")  # understood: the count starts again
    phone.say("banana")
    phone.say("banana")
    assert phone.listening
    phone.say("banana")
    assert phone.dialled_person
    assert rows(svc, Appointment) == []


def test_low_confidence_speech_is_not_acted_on(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    phone = Phone(tw)
    phone.dial()
    phone.say("book an initial assessment next Tuesday afternoon")
    assert phone.say("yes", confidence="0.05").startswith("Sorry, I didn't catch that.")
    assert booked(svc) == []


def test_emergency_words_get_the_uk_emergency_number_and_a_person_on_yes(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    phone = Phone(tw)
    phone.dial()
    heard = phone.say("I've got chest pain and I can't breathe")
    assert heard == (
        "If this is a medical emergency, please hang up now and dial 999. If you would like "
        "to speak to a member of our team, say yes, or press 0."
    )
    phone.say("yes")
    assert phone.dialled_person


def test_emergency_number_follows_the_clinic_region(
    tw: TwilioSim, rest: responses.RequestsMock
) -> None:
    phone = Phone(tw, to=CLINIC_EU)
    phone.dial()
    assert "dial 112" in phone.say("my father is unconscious")


def test_voice_opt_out_is_recorded_confirmed_and_handed_to_a_person(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    phone = Phone(tw)
    phone.dial()
    heard = phone.say("please stop calling me")
    assert heard.startswith(
        "I've noted that you don't want automated calls or messages from Riverside Physiotherapy."
    )
    assert phone.dialled_person
    status = svc.consent.status("riverside-physio", PATIENT)
    assert status.state == "opted_out"
    assert [e["source_id"] for e in status.events] == [f"{phone.call_sid}:opt_out"]
    # The next call goes straight to a person.
    again = Phone(tw)
    again.dial()
    assert again.dialled_person and "<Gather" not in again.last


def test_an_sms_stop_between_two_turns_sends_the_next_turn_to_a_person(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    phone = Phone(tw)
    phone.dial()
    phone.say("book an initial assessment next Tuesday afternoon")
    tw.sms("STOP")
    phone.say("yes")
    assert phone.dialled_person
    assert booked(svc) == []


def test_transcript_rows_hold_caller_agent_and_tool_turns_with_transcript_retention(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    phone = book_tuesday_afternoon(tw)
    turns = [t for t in rows(svc, CallTurn) if t.call_sid == phone.call_sid]
    assert [t.seq for t in turns] == list(range(len(turns)))  # 0: the opening line
    assert [t.role for t in turns] == [
        "agent",
        "caller",
        "tool",
        "agent",
        "caller",
        "tool",
        "agent",
    ]
    assert turns[1].text == "I'd like to book an initial assessment next Tuesday afternoon"
    assert [t.text for t in turns if t.role == "tool"] == ["find_slots", "book"]
    assert PATIENT not in str([t.meta for t in turns])
    assert {t.data_category for t in turns} == {"transcript"}
    assert {t.retention_until.isoformat() for t in turns} == {"2027-02-21"}  # 90 days


def test_turn_for_an_unknown_call_answers_fast_with_valid_twiml(
    tw: TwilioSim, rest: responses.RequestsMock
) -> None:
    response = tw.post(TURN, tw.voice_params(sid("CA"), SpeechResult="hello", Confidence="0.9"))
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/xml"
    assert "Please call us again" in body and body.rstrip().endswith("<Hangup /></Response>")


def test_turn_on_a_call_whose_state_expired_starts_the_conversation_again(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    phone = Phone(tw)
    phone.dial()
    svc.redis.delete(f"call:{phone.call_sid}")
    heard = phone.say("what time are you open on tuesday")
    assert heard.startswith("On Tuesday 24 November we're open 8 am to 6 pm.")
    assert phone.listening


def test_a_malformed_turn_gets_twiml_and_an_unsigned_one_403(
    tw: TwilioSim, rest: responses.RequestsMock
) -> None:
    assert "<Hangup" in tw.post(TURN, {"CallSid": "nope"}).get_data(as_text=True)
    assert tw.post(TURN, tw.voice_params(sid("CA")), signature="bad").status_code == 403


def test_confirmation_sms_goes_out_after_commit_with_the_exact_payload(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    book_tuesday_afternoon(tw)
    (appointment,) = booked(svc)
    assert [c for c in rest.calls if c.request.url.endswith("Messages.json")] == []
    outbox.sweep(svc)
    (sms,) = [c for c in rest.calls if c.request.url.endswith("Messages.json")]
    assert parse_qs(sms.request.body) == {
        "To": [PATIENT],
        "From": [CLINIC_UK],
        "Body": [
            "Riverside Physiotherapy: your Initial assessment is booked for Tuesday 24 "
            f"November at midday. Ref {appointment.ref}. Reply STOP to opt out."
        ],
    }
    (message,) = [m for m in rows(svc, Message) if m.direction == "out"]
    assert message.message_sid.startswith("SM") and message.phone == PATIENT
    assert message.body == parse_qs(sms.request.body)["Body"][0]
    outbox.sweep(svc)  # a second sweep sends nothing more
    assert len([c for c in rest.calls if c.request.url.endswith("Messages.json")]) == 1


def test_no_sms_for_an_opted_out_caller(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    book_tuesday_afternoon(tw)
    tw.sms("STOP")
    outbox.sweep(svc)
    assert [c for c in rest.calls if c.request.url.endswith("Messages.json")] == []
    assert all(i.done_at is not None for i in rows(svc, OutboxItem))


def test_no_sms_after_a_stop_even_when_its_cache_write_through_was_lost(
    tw: TwilioSim, svc: Services, rest: responses.RequestsMock
) -> None:
    book_tuesday_afternoon(tw)
    tw.sms("STOP")
    # A Redis blip ate the write-through: the cache still says what it said before the STOP.
    svc.redis.set(
        consent_cache.key(svc.settings.subject_salt, "riverside-physio", PATIENT), "none:0", ex=60
    )
    outbox.sweep(svc)
    assert [c for c in rest.calls if c.request.url.endswith("Messages.json")] == []
    assert all(i.done_at is not None for i in rows(svc, OutboxItem))
