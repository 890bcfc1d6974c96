"""The call journal as production runs it (background mode): the AI path's webhooks write
only to Redis, and the call log still ends with exactly one complete row per call and
every transcript line once, in order, whoever applies the journal and whenever."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator

import pytest
import redis
from sqlalchemy import select

from callgateway.app import create_app
from callgateway.calls import engine, journal
from callgateway.db.models import Call, CallTurn
from callgateway.wiring import Services
from tests.support.cli import cli_env, run_cli
from tests.support.services import Service
from tests.support.settings import BASE_URL
from tests.support.twilio import CLINIC_EU, PATIENT, TwilioSim, sid

TURN = "/twilio/voice/turn"


@pytest.fixture
def svc(make_services: Callable[..., Services], db_url: str) -> Services:
    return make_services(db_url, journal="background")


@pytest.fixture
def tw(svc: Services) -> Iterator[TwilioSim]:
    app = create_app({"TESTING": True}, services=svc)
    # The app started this process's drainer; stop it so each test applies the journal
    # itself, at the moment it chooses (the thread has its own test below).
    drainer = journal.start_drainer(svc)
    assert drainer is not None
    drainer.stop()
    yield TwilioSim(app.test_client(), BASE_URL)


def rows(svc: Services) -> list[Call]:
    with svc.db.session() as s:
        return list(s.scalars(select(Call)))


def lines(svc: Services, call_sid: str) -> list[tuple[int, str, str]]:
    with svc.db.session() as s:
        found = s.scalars(select(CallTurn).where(CallTurn.call_sid == call_sid))
        return sorted((t.seq, t.role, t.text) for t in found)


def say(tw: TwilioSim, call_sid: str, speech: str) -> str:
    params = tw.voice_params(call_sid, to=CLINIC_EU, SpeechResult=speech, Confidence="0.9")
    return tw.post(TURN, params).get_data(as_text=True)


def test_ai_call_answers_from_redis_and_its_row_lands_when_the_journal_is_applied(
    tw: TwilioSim, svc: Services
) -> None:
    call_sid = sid("CA")
    body = tw.call(call_sid, to=CLINIC_EU).get_data(as_text=True)
    assert "<Gather" in body  # the agent answers at once
    assert rows(svc) == []  # no database write on the webhook
    assert journal.pending(svc) == 1  # the row with its opening line, queued

    assert journal.settle(svc) == 1
    (row,) = rows(svc)
    assert (row.call_sid, row.clinic_id, row.cli, row.handled_by) == (
        call_sid,
        "spree-hausarzt",
        PATIENT,
        "ai",
    )
    assert (row.gate_decision, row.gate_reason) == ("allow", "no-objection")
    assert row.retention_until is not None and row.data_category == "call-metadata"
    assert [(seq, role) for seq, role, _ in lines(svc, call_sid)] == [(0, "agent")]
    assert journal.pending(svc) == 0  # applied entries are trimmed


def test_status_callback_completes_a_row_still_in_the_journal(tw: TwilioSim, svc: Services) -> None:
    call_sid = sid("CA")
    tw.call(call_sid, to=CLINIC_EU)
    say(tw, call_sid, "I'd like to book an appointment")
    tw.post(
        "/twilio/voice/status",
        tw.voice_params(call_sid, to=CLINIC_EU, CallStatus="completed", CallDuration="42"),
    )
    (row,) = rows(svc)
    assert (row.status, row.duration_seconds, row.handled_by) == ("completed", 42, "ai")
    assert [role for _, role, _ in lines(svc, call_sid)] == ["agent", "caller", "agent"]


def test_a_conversation_keeps_its_lines_in_order_and_its_outcome(
    tw: TwilioSim, svc: Services
) -> None:
    call_sid = sid("CA")
    tw.call(call_sid, to=CLINIC_EU)
    said = ["I'd like to book an appointment", "mumble", "I want to speak to a person"]
    for speech in said:
        say(tw, call_sid, speech)
    journal.settle(svc)
    got = lines(svc, call_sid)
    assert [seq for seq, _, _ in got] == list(range(len(got)))
    callers = [text for _, role, text in got if role == "caller"]
    assert callers == said
    (row,) = rows(svc)
    # Escalation (a person in opening hours, voicemail outside them) found the queued row.
    assert row.outcome in ("escalated", "voicemail")


def test_a_retried_incoming_webhook_leaves_one_row_and_one_opening_line(
    tw: TwilioSim, svc: Services
) -> None:
    call_sid = sid("CA")
    tw.call(call_sid, to=CLINIC_EU)
    tw.call(call_sid, to=CLINIC_EU)
    journal.settle(svc)
    assert [r.call_sid for r in rows(svc)] == [call_sid]
    assert [seq for seq, _, _ in lines(svc, call_sid)] == [0]


def test_racing_appliers_apply_each_entry_exactly_once(tw: TwilioSim, svc: Services) -> None:
    sids = [sid("CA") for _ in range(12)]
    for call_sid in sids:
        tw.call(call_sid, to=CLINIC_EU)
        say(tw, call_sid, "I'd like to book an appointment")
    errors: list[BaseException] = []

    def apply() -> None:
        try:
            journal.settle(svc)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=apply) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(r.call_sid for r in rows(svc)) == sorted(sids)
    for call_sid in sids:
        assert [seq for seq, _, _ in lines(svc, call_sid)] == [0, 1, 2]


def test_the_drainer_thread_applies_the_journal_by_itself(tw: TwilioSim, svc: Services) -> None:
    call_sid = sid("CA")
    tw.call(call_sid, to=CLINIC_EU)
    drainer = journal.Drainer(svc, interval=0.05).start()
    try:
        for _ in range(100):
            if rows(svc):
                break
            threading.Event().wait(0.05)
    finally:
        drainer.stop()
    assert [r.call_sid for r in rows(svc)] == [call_sid]


def test_an_unreadable_entry_is_skipped_and_does_not_block_the_rest(
    tw: TwilioSim, svc: Services, caplog: pytest.LogCaptureFixture
) -> None:
    for junk in ("{not json", '{"row": {}}', '{"nothing": 1}', "[]"):
        svc.redis.xadd(journal.STREAM, {"k": "call", "d": junk})
    svc.redis.xadd(journal.STREAM, {"k": "turns", "d": '{"call_sid": 1}'})
    svc.redis.xadd(journal.STREAM, {"k": "mystery", "d": "{}"})
    call_sid = sid("CA")
    tw.call(call_sid, to=CLINIC_EU)
    journal.settle(svc)
    assert [r.call_sid for r in rows(svc)] == [call_sid]
    assert "journal entry unreadable; skipped" in caplog.text


def test_when_redis_fails_at_the_end_of_a_turn_the_lines_go_to_the_database(
    tw: TwilioSim, svc: Services, redis_server: Service
) -> None:
    call_sid = sid("CA")
    tw.call(call_sid, to=CLINIC_EU)
    journal.settle(svc)
    real = svc.redis.pipeline

    def broken(transaction: bool = True) -> redis.client.Pipeline:
        pipe = real(transaction=transaction)
        if not transaction:  # the turn's first read still works: Redis goes at the end
            return pipe

        def fail() -> list[object]:
            raise redis.ConnectionError("Redis went away")

        pipe.execute = fail  # type: ignore[method-assign]
        return pipe

    svc.redis.pipeline = broken  # type: ignore[method-assign]
    try:
        body = say(tw, call_sid, "I'd like to book an appointment")
    finally:
        svc.redis.pipeline = real  # type: ignore[method-assign]
    assert "<Dial" in body or "<Record" in body  # a person (or voicemail) answers
    assert "I'd like to book an appointment" in [t for _, _, t in lines(svc, call_sid)]


def test_rights_erase_refuses_while_the_journal_cannot_be_applied(
    tw: TwilioSim, svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    from callgateway.privacy import rights

    tw.call(sid("CA"), to=CLINIC_EU)

    def down(*_: object, **__: object) -> None:
        raise redis.ConnectionError("Redis went away")

    with monkeypatch.context() as patched:
        patched.setattr(svc.redis, "xrevrange", down)
        with pytest.raises(rights.RightsError, match="journal"):
            rights.erase(svc, PATIENT, "spree-hausarzt", actor="test")
    # Redis back: the call the journal held is still there to be applied, then erased.
    assert journal.settle(svc) == 1
    assert [r.cli for r in rows(svc)] == [PATIENT]


def test_journal_drain_command_applies_and_reports(tw: TwilioSim, svc: Services) -> None:
    tw.call(sid("CA"), to=CLINIC_EU)
    env = cli_env(
        DATABASE_URL=svc.settings.database_url,
        REDIS_URL=svc.settings.redis_url,
        CALLGATEWAY_ENV="test",
    )
    done = run_cli(["journal", "drain"], env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"applied": 1, "pending": 0}
    assert len(rows(svc)) == 1


def test_an_entry_the_database_refuses_is_skipped_and_the_rest_still_land(
    tw: TwilioSim, svc: Services, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = sid("CA"), sid("CA")
    tw.call(first, to=CLINIC_EU)
    ((_, fields),) = svc.redis.xrange(journal.STREAM)
    data = json.loads(fields[b"d"])
    data["row"].update(call_sid=sid("CA"), outcome="x" * 500)  # longer than its column
    svc.redis.xadd(journal.STREAM, {"k": "call", "d": json.dumps(data)})
    tw.call(second, to=CLINIC_EU)
    journal.settle(svc)
    landed = {r.call_sid for r in rows(svc)}
    assert {first, second} <= landed
    if svc.db.engine.dialect.name == "postgresql":  # SQLite does not enforce lengths
        assert len(landed) == 2
        assert "journal entry refused by the database; skipped" in caplog.text
    assert journal.pending(svc) == 0


def test_a_barge_in_corrects_its_own_turn_even_when_applied_with_the_next_one(
    tw: TwilioSim, svc: Services
) -> None:
    call_sid = sid("CA")
    tw.call(call_sid, to=CLINIC_EU)
    say(tw, call_sid, "I'd like to book an appointment")
    engine.interrupted(svc, call_sid, "When would")  # the caller heard two words of it
    answer = say(tw, call_sid, "mumble")
    assert journal.pending(svc) == 4  # row, turn, correction, turn: applied in one batch
    journal.settle(svc)
    agent = [text for _, role, text in lines(svc, call_sid) if role == "agent"]
    assert agent[1] == "When would"
    assert agent[2] != "When would" and agent[2] in answer  # the later line is untouched
    with svc.db.session() as s:
        metas = [t.meta for t in s.scalars(select(CallTurn).where(CallTurn.role == "agent"))]
    assert sorted(str(m) for m in metas).count("{'interrupted': True}") == 1
