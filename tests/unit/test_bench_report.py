"""How the bench judges and reports: a missed target is a MISS in the table and exit 0;
only answers that are not 2xx (the bench signing wrongly, or a bug) make it exit non-zero."""

from __future__ import annotations

import pytest

from bench.gate import GateReport, Row
from bench.measure import Phase, Result, judge
from bench.report import ScalingRow, SoakMinute, scaling_table, scenario_table, soak_table
from bench.run import ERRORS, OK, parse_args, plan, print_full
from bench.scenarios import BY_NAME


def phase(rps: float, p99: float, statuses: dict[str, int] | None = None) -> Phase:
    statuses = statuses or {"200": int(rps * 10)}
    non_2xx = sum(v for k, v in statuses.items() if not k.startswith("2"))
    return Phase(
        rps=rps, p50_ms=p99 / 3, p99_ms=p99, max_ms=p99 * 2, requests=int(rps * 10),
        statuses=statuses, non_2xx=non_2xx, socket_errors=0, distinct=50_000, wrapped=False,
        app_p50_ms=2.0, app_p99_ms=p99 / 2,
    )  # fmt: skip


def judged(name: str, load: Phase, latency: Phase, floor_rps: float = 1000.0) -> Result:
    s = BY_NAME[name]
    res = Result(s.name, s.server, s.path, s.target_text(), load=load, latency=latency)
    judge(s, res, floor_rps)
    return res


def test_voice_at_half_the_floor_with_a_fast_p99_meets_its_target() -> None:
    res = judged("voice", load=phase(500, 400), latency=phase(300, 24))
    assert (res.verdict, res.ratio, res.reasons) == ("MET", 0.5, [])


def test_ratio_and_p99_are_judged_separately_and_both_reasons_given() -> None:
    res = judged("turn", load=phase(300, 900), latency=phase(200, 51))
    assert res.verdict == "MISS"
    assert res.reasons == [
        "ratio 0.30 < 0.4",
        "p99 51.0ms >= 50ms (one request per worker)",
    ]


def test_the_p99_target_is_judged_without_queueing() -> None:
    # 32 connections on 2 sync workers queue ~16 deep; that p99 is not the service time.
    res = judged("voice", load=phase(600, 300), latency=phase(400, 10))
    assert res.verdict == "MET"


def test_rejected_requests_are_an_error_however_fast() -> None:
    res = judged("voice", load=phase(900, 5, {"403": 9000}), latency=phase(900, 5))
    assert res.verdict == "ERROR"
    assert res.reasons == ["9000 non-2xx {'403': 9000}"]


def test_untargeted_webhooks_are_reported_with_their_ratio() -> None:
    res = judged("sms", load=phase(250, 100), latency=phase(200, 30))
    assert (res.verdict, res.ratio) == ("report", 0.25)


def floor_result() -> Result:
    s = BY_NAME["floor"]
    res = Result("floor", "floor", s.path, "report", load=phase(1000, 30), latency=phase(900, 3))
    judge(s, res, 1000.0)
    return res


def gate_report(warm_p99: float) -> GateReport:
    rows = [Row(1_000, 0.1, 0.3, 1.0, 2.0, 100), Row(100_000, 0.1, warm_p99, 1.0, 2.0, 100)]
    return GateReport("sqlite", 100, rows, 0.1, 0.2)


def test_a_missed_target_is_printed_and_summarised_but_exits_zero(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = parse_args([])
    results = [floor_result(), judged("voice", phase(200, 400), phase(150, 30))]
    scaling = [ScalingRow(1, 600, 100, 300), ScalingRow(2, 1000, 200, 400, reused=True)]
    out = {"scenarios": results, "scaling": scaling, "gate": gate_report(0.35)}

    assert print_full(args, out) == OK

    text = capsys.readouterr().out
    voice = next(line for line in text.splitlines() if line.startswith("voice "))
    assert voice.split() == [
        "voice", "200", "0.20", "133.3", "400.0", "10.0", "30.0", "200.0", ">=0.5x", "p99<25ms",
        "MISS",
    ]  # fmt: skip
    assert "voice: ratio 0.20 < 0.5; p99 30.0ms >= 25ms (one request per worker)" in text
    assert "targets: none met; MISSED: voice" in text
    assert "warm p99 1,000 -> 100,000 events: x1.17 (flat)" in text


def test_error_answers_exit_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    bad = judged("sms", phase(200, 40, {"500": 2000}), phase(150, 30))
    assert print_full(parse_args([]), {"scenarios": [floor_result(), bad]}) == ERRORS
    assert "sms: 2000 non-2xx {'500': 2000}" in capsys.readouterr().out


def test_a_slow_or_growing_gate_is_listed_as_missed(capsys: pytest.CaptureFixture[str]) -> None:
    assert print_full(parse_args([]), {"scenarios": [], "gate": gate_report(2.5)}) == OK
    assert "MISSED: gate" in capsys.readouterr().out


def test_scenario_table_headers_name_the_concurrency() -> None:
    text = scenario_table([floor_result()], connections=32, workers=2)
    assert text.splitlines()[0].split()[:7] == [
        "scenario", "req/s", "x", "floor", "c32", "p50", "c32",
    ]  # fmt: skip


def test_scaling_rows_are_each_against_the_floor_with_as_many_workers() -> None:
    text = scaling_table([ScalingRow(1, 800, 200, 120.0), ScalingRow(4, 1600, 560, 90.0)], 32)
    lines = text.splitlines()
    assert lines[2].split() == ["1", "800", "200", "0.25", "120.0"]
    assert lines[3].split() == ["4", "1,600", "560", "0.35", "90.0"]


def test_soak_drift_is_last_minute_against_first() -> None:
    def minute(n: float, rps: float, p99: float, rss: float) -> SoakMinute:
        return SoakMinute(n, rps, p99 / 2, p99, 10.0, 20.0 * n, rss, rss / 2, 0, 0, False)

    text = soak_table(
        [minute(1, 200, 100, 180), minute(2, 190, 110, 181), minute(3, 180, 150, 190)], 32
    )
    drift = text.splitlines()[-1].split()
    assert drift == ["drift", "-10%", "+50%", "+50%", "+0%", "+200%", "+10.0", "+5.0"]


def test_quick_and_only_runs_skip_the_scaling_row_and_gate() -> None:
    for argv in (["--quick"], ["--only", "sms"]):
        args = parse_args(argv)
        assert args.no_scaling and args.no_gate
    full = parse_args([])
    assert not full.no_scaling and not full.no_gate
    assert parse_args(["--scaling"]).no_gate


def test_call_scenarios_alone_still_get_calls_from_an_unreported_voice_run() -> None:
    todo, reported = plan(["recording"])
    assert [s.name for s in todo] == ["floor", "voice", "recording"]
    assert reported == {"floor", "recording"}
