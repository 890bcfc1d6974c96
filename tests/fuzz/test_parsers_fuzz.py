"""Fuzz targets for the two parsers that read text nobody vetted: the SMS keyword parser
(whatever a patient types) and the config loader (whatever an operator saves).

The keyword parser must never raise and may only ever answer a keyword for exactly one
listed word; tests/unit/test_keywords.py pins the families down, this only hunts crashes.
The config loader must turn anything, however odd, into a Config or a ConfigError whose
message is one line naming a key: `config check` prints it, start-up stops with it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from callgateway.config import Config, ConfigError, load_config, parse_config
from consent import keywords
from tests.support.settings import EXAMPLE_CONFIG

# --- the keyword parser ----------------------------------------------------------------------

any_text = st.one_of(
    st.text(max_size=200),  # every code point, lone surrogates and NULs included
    st.text(
        alphabet=st.sampled_from("stopSTOP \t\n\u200b\u00ad\uff33\uff34\uff2f\uff30!.?"),
        max_size=20,
    ),
)


@settings(max_examples=400, deadline=None)
@given(body=st.one_of(st.none(), any_text))
@example(body="\ud800STOP")
@example(body="S\u0000TOP")
@example(body="STOP" * 500)
def test_the_keyword_parser_never_raises_and_only_matches_a_listed_word(body: str | None) -> None:
    found = keywords.parse(body)
    assert found is None or isinstance(found, keywords.Keyword)
    if found is not None:
        words = {w for w in keywords.normalise(body or "").split() if w}
        assert len(words) == 1  # one word, whatever surrounded it
    assert isinstance(keywords.voice_opt_out_requested(body), bool)


# --- the config loader -----------------------------------------------------------------------

RAW: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text())
# Messages not about a key of the document name the setting the operator controls.
OUTSIDE_THE_DOCUMENT = ("(root)", "CALLGATEWAY_CONFIG", "CALLGATEWAY_CELL")

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=30),
    st.sampled_from(["", "+442071234567", "08:00-18:00", "25:00-26:00", "uk", "Europe/London"]),
    st.dates(),
    st.datetimes(),
)
yamlish = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(st.text(max_size=10), st.integers(), st.none()), inner, max_size=4
        ),
    ),
    max_leaves=12,
)


def _shown(key: Any) -> set[str]:
    """The ways an error may write a top-level key: plain, quoted, or as an index."""
    return {str(key), repr(str(key)), f"[{key}]"}


def _assert_refused_cleanly(exc: ConfigError, data: Any = None) -> None:
    message = str(exc)
    assert message.splitlines() == [message], message  # one line: no \n, \r, \u2028...
    path, sep, why = message.partition(": ")
    assert sep and why.strip() and path, message
    if path in OUTSIDE_THE_DOCUMENT:
        return
    # A path into the document: it starts with one of its own keys or a required one.
    keys = set(Config.model_fields)
    if isinstance(data, dict):
        keys |= set().union(*(_shown(k) for k in data))
    assert any(path == k or path.startswith((f"{k}.", f"{k}[")) for k in keys), message


def _yaml_or_none(content: bytes) -> Any:
    try:
        return yaml.safe_load(content)
    except (yaml.YAMLError, ValueError, RecursionError):
        return None


def _check(data: Any) -> None:
    try:
        parsed = parse_config(data)
    except ConfigError as exc:
        _assert_refused_cleanly(exc, data)
    else:
        assert isinstance(parsed, Config)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), value=yamlish, action=st.sampled_from(["replace", "delete", "add"]))
def test_any_change_anywhere_in_the_config_is_a_config_or_one_line_naming_a_key(
    data: st.DataObject, value: Any, action: str
) -> None:
    raw = copy.deepcopy(RAW)
    node: Any = raw
    # Walk down a random path, then change what is there.
    while True:
        if isinstance(node, dict) and node:
            key = data.draw(st.sampled_from(sorted(node, key=str)))
        elif isinstance(node, list) and node:
            key = data.draw(st.integers(0, len(node) - 1))
        else:
            break
        if not isinstance(node[key], (dict, list)) or data.draw(st.booleans()):
            break
        node = node[key]
    if isinstance(node, dict):
        if action == "delete" and node:
            del node[key]
        elif action == "add":
            node[data.draw(st.one_of(st.text(max_size=10), st.integers()))] = value
        elif node:
            node[key] = value
    elif isinstance(node, list) and node:
        node[key] = value
    _check(raw)


@settings(max_examples=200, deadline=None)
@given(value=yamlish)
def test_any_whole_document_is_a_config_or_one_line_naming_a_key(value: Any) -> None:
    _check(value)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
@example(content=b"\xff\xfe\x00r\x00e\x00g")  # UTF-16, or any non-UTF-8 file
@example(content=b"regions: !!python/object/apply:os.system ['true']\n")
@example(content=b"[" * 5000)
@example(content=b"a: &x [*x]\n")
@example(content=b"clinics: {}\nclinics: []\n")
def test_any_file_is_a_config_or_one_line_naming_a_key(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    try:
        parsed = load_config(path)
    except ConfigError as exc:
        _assert_refused_cleanly(exc, _yaml_or_none(content))  # it may name a key of the file
    else:
        pytest.fail(f"accepted junk as a config: {parsed!r}")
