"""Whole calls through signed webhooks, driven by the `callgateway call` terminal phone."""

from __future__ import annotations

import re

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from callgateway.db.models import Call, Message
from tests.support.live_gateway import Gateway
from tests.support.twilio import CLINIC_EU, CLINIC_UK, PATIENT


def call_rows(gw: Gateway) -> list[Call]:
    engine = create_engine(gw.database_url)
    with Session(engine) as s:
        rows = list(s.scalars(select(Call).order_by(Call.id)))
    engine.dispose()
    return rows


def test_terminal_call_hears_the_greeting_and_leaves_one_complete_row(
    live_gateway: Gateway,
) -> None:
    before = len(call_rows(live_gateway))
    result = live_gateway.cli("call", "--to", CLINIC_EU, "--from", PATIENT, stdin="")
    assert result.returncode == 0, result.stderr
    assert "Thank you for calling the family practice on the Spree." in result.stdout
    rows = call_rows(live_gateway)
    assert len(rows) == before + 1
    row = rows[-1]
    assert row.clinic_id == "spree-hausarzt"
    assert row.status == "completed"
    assert row.ended_at is not None and row.duration_seconds is not None
    assert row.retention_until is not None


def test_recorded_clinic_announces_recording_after_the_greeting(live_gateway: Gateway) -> None:
    result = live_gateway.cli("call", "--to", CLINIC_UK, "--from", "anonymous", stdin="")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.index("Thank you for calling Riverside") < out.index("Calls are recorded")
    assert call_rows(live_gateway)[-1].cli == "anonymous"


def test_terminal_sms_prints_twiml(live_gateway: Gateway) -> None:
    result = live_gateway.cli("sms", "--to", CLINIC_UK, "--from", PATIENT, "hello there")
    assert result.returncode == 0, result.stderr
    assert "<Response" in result.stdout
    engine = create_engine(live_gateway.database_url)
    with Session(engine) as s:
        bodies = list(s.scalars(select(Message.body)))
    assert "hello there" in bodies


def test_a_wrong_token_is_refused_with_one_line(live_gateway: Gateway) -> None:
    env = {**live_gateway.env, "TWILIO_AUTH_TOKEN": "wrong"}
    from tests.support.cli import run_cli

    result = run_cli(["call", "--to", CLINIC_UK], env)
    assert result.returncode == 1
    assert re.fullmatch(r"error: the gateway answered 403 to \S+\n", result.stderr)


def test_bad_number_on_the_command_line_is_one_line_error(live_gateway: Gateway) -> None:
    result = live_gateway.cli("call", "--to", "12345")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "error: Invalid value for '--to': not in E.164 form (must start with +): *****"
    ]


def test_gateway_log_has_no_number_in_clear(live_gateway: Gateway) -> None:
    live_gateway.cli("call", "--to", CLINIC_UK, "--from", PATIENT, stdin="")
    live_gateway.cli("sms", "--to", CLINIC_UK, "--from", PATIENT, "my number is +447700900123")
    log = live_gateway.log_text()
    assert '"path": "/twilio/voice"' in log
    for number in (PATIENT, CLINIC_UK, CLINIC_EU, PATIENT[1:], "7700900123", "2071234567"):
        assert number not in log
