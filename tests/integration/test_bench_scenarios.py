"""The bench's requests, sent through the real app (SQLite and Redis behind it): the voice
answer gathers to the path the turn scenario posts to, the scripted conversation books an
appointment, the status, recording and SMS webhooks do their real work.

The layout that keeps one call's requests in order is tests/unit/test_bench_scenarios.py.
"""

from __future__ import annotations

from collections import defaultdict

from flask.testing import FlaskClient
from sqlalchemy import func, select

from bench import diary
from bench.procs import bench_clinic
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
from tests.support.bench import fixture_ctx  # noqa: F401  (the ctx fixture)
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
    # The path the bench posts to; the Gather names its step, which the bench leaves out
    # (a turn without a step is claimed by its body: the same Redis round trips).
    assert f'<Gather action="{BASE_URL}{TURN_PATH}?step=1"' in voice
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
