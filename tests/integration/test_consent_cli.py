"""`callgateway consent status --clinic ID --phone E164`: JSON to stdout, one-line errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from callgateway.adapters.clock import fixed
from callgateway.wiring import Services
from tests.support.cli import cli_env, run_cli
from tests.support.twilio import PATIENT, PATIENT_2


def status(db_url: str, redis_url: str, *args: str):  # type: ignore[no-untyped-def]
    return run_cli(["consent", "status", *args], cli_env(DATABASE_URL=db_url, REDIS_URL=redis_url))


def test_status_prints_the_state_since_and_every_event_as_json(
    make_services: Callable[..., Services], sqlite_url: str, redis_url: str
) -> None:
    svc = make_services(sqlite_url)
    svc.clock = fixed(datetime(2026, 3, 4, 10, 0, tzinfo=UTC))
    svc.consent.record_opt_out("riverside-physio", PATIENT, "sms", "SM" + "a" * 32)
    svc.consent.record_opt_out("spree-hausarzt", PATIENT, "sms", "SM" + "b" * 32)
    result = status(sqlite_url, redis_url, "--clinic", "riverside-physio", "--phone", PATIENT)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "clinic": "riverside-physio",
        "phone": PATIENT,
        "state": "opted_out",
        "since": "2026-03-04T10:00:00+00:00",
        "events": [
            {
                "state": "opted_out",
                "channel": "sms",
                "source_id": "SM" + "a" * 32,
                "at": "2026-03-04T10:00:00+00:00",
                "retention_until": "2032-03-02",  # 2190 days later
            }
        ],
    }


def test_a_number_without_events_is_none(sqlite_url: str, redis_url: str) -> None:
    result = status(sqlite_url, redis_url, "--clinic", "spree-hausarzt", "--phone", PATIENT_2)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "clinic": "spree-hausarzt",
        "phone": PATIENT_2,
        "state": "none",
        "since": None,
        "events": [],
    }


def test_unknown_clinic_or_bad_number_is_one_line_and_exit_1(
    sqlite_url: str, redis_url: str
) -> None:
    for args, expected in (
        (["--clinic", "nowhere", "--phone", PATIENT], "error: --clinic: unknown clinic 'nowhere'"),
        (
            ["--clinic", "riverside-physio", "--phone", "07700900123"],
            "error: --phone: not in E.164 form (must start with +): 077****0123",
        ),
    ):
        result = status(sqlite_url, redis_url, *args)
        assert result.returncode == 1
        assert result.stdout == ""
        assert result.stderr.splitlines() == [expected]
