"""The bench's precomputed requests must be ones the gateway accepts, byte for byte.

Each request is read back from the data file wrk replays, decoded the way Flask decodes
a form, and validated with twilio's own RequestValidator for the URL wrk requests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from twilio.request_validator import RequestValidator
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from bench.scenarios import SCENARIOS, Context
from bench.signing import SignedRequest, read_data_file, signed_requests, write_data_file
from bench.wrk import sent_lines

TOKEN = "bench-test-token"
BASE = "http://127.0.0.1:18123"


def as_flask_sees_it(path: str, body: str) -> Request:
    builder = EnvironBuilder(
        method="POST",
        base_url=BASE,
        path=path,
        data=body.encode(),
        content_type="application/x-www-form-urlencoded",
    )
    return Request(builder.get_environ())


def replayed(tmp_path: Path, name: str, ctx: Context, n: int = 50) -> list[SignedRequest]:
    scenario = next(s for s in SCENARIOS if s.name == name)
    params = [scenario.params(ctx, i) for i in range(n)]
    data = tmp_path / f"{name}.dat"
    write_data_file(data, signed_requests(TOKEN, BASE, scenario.path, params))
    return read_data_file(data)


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_every_request_validates_as_sent(tmp_path: Path, name: str) -> None:
    ctx = Context(to_number="+442071234567", call_sids=["CA" + "0" * 32, "CA" + "1" * 32])
    validator = RequestValidator(TOKEN)
    for req in replayed(tmp_path, name, ctx):
        flask_request = as_flask_sees_it(req.path, req.body)
        url = BASE + req.path
        assert validator.validate(url, flask_request.form, req.signature), req.body
        if "RecordingSid" in flask_request.form:  # Twilio sends no numbers with it
            assert flask_request.form["CallSid"] in ctx.call_sids
            continue
        assert flask_request.form["To"] == "+442071234567"
        assert flask_request.form["From"].startswith("+447700900")


def test_plus_is_percent_encoded(tmp_path: Path) -> None:
    ctx = Context(to_number="+442071234567")
    for req in replayed(tmp_path, "voice", ctx, n=5):
        assert "From=%2B447700900" in req.body
        assert "To=%2B442071234567" in req.body
        assert "+44" not in req.body  # a raw "+" would decode to a space


def test_tampering_is_detected(tmp_path: Path) -> None:
    req = replayed(tmp_path, "voice", Context(to_number="+442071234567"), n=1)[0]
    validator = RequestValidator(TOKEN)
    form = as_flask_sees_it(req.path, req.body.replace("ringing", "completed")).form
    assert not validator.validate(BASE + req.path, form, req.signature)
    other_port = as_flask_sees_it(req.path, req.body).form
    assert not validator.validate("http://127.0.0.1:9/twilio/voice", other_port, req.signature)


def test_voice_call_sids_are_distinct(tmp_path: Path) -> None:
    reqs = replayed(tmp_path, "voice", Context(to_number="+442071234567"), n=500)
    sids = {as_flask_sees_it(r.path, r.body).form["CallSid"] for r in reqs}
    assert len(sids) == 500
    assert all(len(s) == 34 and s.startswith("CA") for s in sids)


def test_sent_lines_follows_the_lua_partition() -> None:
    # Two threads over 10 lines: thread 0 owns 0,2,4,6,8 and thread 1 owns 1,3,5,7,9.
    assert sent_lines([2, 3], 10) == [0, 1, 2, 3, 5]
    assert sent_lines([9, 0], 10) == [0, 2, 4, 6, 8]  # wrapped: still five distinct lines


def test_path_template_is_filled_per_request_and_signed(tmp_path: Path) -> None:
    params = [{"CallSid": "CA" + "2" * 32, "From": "+447700900001", "To": "+442071234567"}]
    data = tmp_path / "t.dat"
    path = "/twilio/voice/turn?call={CallSid}&from={From}"
    write_data_file(data, signed_requests(TOKEN, BASE, path, params))
    (req,) = read_data_file(data)
    assert req.path == f"/twilio/voice/turn?call=CA{'2' * 32}&from=%2B447700900001"
    form = as_flask_sees_it(req.path, req.body).form
    assert RequestValidator(TOKEN).validate(BASE + req.path, form, req.signature)
