"""The bench loads what it says it loads.

The requests it replays, sent through the real app: the voice answer gathers to the path
the turn scenario posts to, the scripted conversation books an appointment, the status,
recording and SMS webhooks do their real work. And the layout that keeps one call's
requests in order under wrk's concurrency.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from bench import diary
from bench.procs import bench_clinic, clinic_number
from bench.scenarios import (
    BY_NAME,
    CONVERSATION,
    TIME_STEP,
    TURN_PATH,
    WHOLE_CALL_STEPS,
    Context,
    conversation_step,
    whole_call,
)
from bench.signing import signed_requests
from callgateway.db.models import Appointment, Call, Recording
from callgateway.wiring import Services
from tests.support.settings import BASE_URL, EXAMPLE_CONFIG
from tests.support.twilio import TOKEN


def post(client: FlaskClient, path: str, form: dict[str, str]) -> tuple[int, str]:
    """Sign with the bench's own signing code for the URL Twilio would use, then POST."""
    (req,) = signed_requests(TOKEN, BASE_URL, path, [form])
    rv = client.post(
        req.path,
        data=req.body,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": req.signature},
    )
    return rv.status_code, rv.get_data(as_text=True)


@pytest.fixture
def ctx() -> Context:
    number, country = clinic_number(EXAMPLE_CONFIG)
    return Context(to_number=number, to_country=country)


def test_calls_go_to_a_clinic_whose_first_answer_is_the_agent(ctx: Context) -> None:
    # The example's clinic without recording: no announcement-and-redirect first.
    assert (ctx.to_number, ctx.to_country) == ("+493012345678", "DE")


def test_a_whole_bench_call_books_through_the_rules_agent(
    client: FlaskClient, services: Services, ctx: Context
) -> None:
    call_sid = "CA" + "1" * 32
    steps = [whole_call(ctx, call_sid, step) for step in range(WHOLE_CALL_STEPS)]
    assert [path for path, _ in steps] == (
        ["/twilio/voice"] + [TURN_PATH] * len(CONVERSATION) + ["/twilio/voice/status"]
    )
    assert len({form["From"] for _, form in steps}) == 1  # one caller for the whole call

    answers = [post(client, path, form) for path, form in steps]

    assert all(status == 200 for status, _ in answers), answers
    voice = answers[0][1]
    assert f'<Gather action="{BASE_URL}{TURN_PATH}"' in voice  # the path the bench posts to
    confirm = answers[len(CONVERSATION) - 1][1]  # the answer to "yes"
    assert "is booked for" in confirm
    goodbye = answers[len(CONVERSATION)][1]
    assert "Goodbye" in goodbye and "<Hangup" in goodbye
    assert answers[-1][1] == ""  # status callback: empty 200
    with services.db.session() as s:
        call = s.scalars(select(Call).where(Call.call_sid == call_sid)).one()
        booked = s.scalar(select(func.count()).select_from(Appointment))
    assert (call.status, call.handled_by) == ("completed", "ai")
    assert booked == 1


def test_callers_ask_for_their_own_times_so_a_block_of_confirmations_all_book(
    client: FlaskClient, services: Services, ctx: Context
) -> None:
    # As the turn run sends them: each step for every call of the block, then the next.
    clinic = bench_clinic(EXAMPLE_CONFIG)
    today = services.clock().astimezone(clinic.tz).date()
    ctx.when = tuple(diary.times(clinic, today, 40))
    assert len(set(ctx.when)) == 40 and ctx.when[0].endswith("at 8 am")
    ctx.call_sids, ctx.block = ["CA" + f"{n:032x}" for n in range(6)], 6
    for sid in ctx.call_sids:
        assert post(client, *whole_call(ctx, sid, 0))[0] == 200
    answers: dict[int, list[str]] = defaultdict(list)
    for i in range(len(ctx.call_sids) * len(CONVERSATION)):
        call, _ = conversation_step(i, len(ctx.call_sids), len(CONVERSATION), ctx.block)
        status, body = post(client, TURN_PATH, BY_NAME["turn"].params(ctx, i))
        assert status == 200
        answers[call].append(body)
    assert all("is booked for" in replies[TIME_STEP + 1] for replies in answers.values())
    assert not any("just been taken" in r for replies in answers.values() for r in replies)
    with services.db.session() as s:
        starts = s.scalars(select(Appointment.starts_at)).all()
    assert len(set(starts)) == len(ctx.call_sids)


def test_recording_callbacks_store_a_row_each_and_queue_its_transfer(
    client: FlaskClient, services: Services, ctx: Context
) -> None:
    call_sid = "CA" + "2" * 32
    assert post(client, *whole_call(ctx, call_sid, 0))[0] == 200
    ctx.call_sids = [call_sid]
    scenario = BY_NAME["recording"]
    for i in range(3):
        assert post(client, scenario.path, scenario.params(ctx, i)) == (200, "")
    with services.db.session() as s:
        rows = s.scalars(select(Recording)).all()
    assert len({r.recording_sid for r in rows}) == 3
    assert {r.call_sid for r in rows} == {call_sid}
    assert services.queue is not None and services.queue.count == 3  # no worker in the bench


def test_sms_and_status_scenarios_are_answered_not_rejected(
    client: FlaskClient, ctx: Context
) -> None:
    call_sid = "CA" + "3" * 32
    assert post(client, *whole_call(ctx, call_sid, 0))[0] == 200
    ctx.call_sids = [call_sid]
    for name in ("status", "sms"):
        scenario = BY_NAME[name]
        status, body = post(client, scenario.path, scenario.params(ctx, 0))
        assert status == 200, (name, body)
    assert "<Response" in body  # the SMS answer is TwiML


@pytest.mark.parametrize(
    ("calls", "steps", "block", "threads"),
    [(512, 5, 256, 2), (600, 5, 256, 2), (100, 7, 256, 2), (96, 7, 64, 4)],
)
def test_one_calls_steps_are_in_order_on_one_thread_and_a_block_apart(
    calls: int, steps: int, block: int, threads: int
) -> None:
    seen: dict[int, list[tuple[int, int]]] = defaultdict(list)  # call -> [(line, step)]
    for line in range(calls * steps):
        call, step = conversation_step(line, calls, steps, block)
        seen[call].append((line, step))

    assert sorted(seen) == list(range(calls))  # every call, once per pass
    for call, lines in seen.items():
        assert [step for _, step in lines] == list(range(steps))  # in order
        assert len({line % threads for line, _ in lines}) == 1  # one wrk thread
        gap = min(b - a for (a, _), (b, _) in itertools.pairwise(lines))
        last_block = call >= calls // block * block
        assert gap >= (calls % block if last_block else block)


def test_past_the_end_the_layout_repeats() -> None:
    assert conversation_step(5 * 300, 300, 5, 256) == conversation_step(0, 300, 5, 256)
