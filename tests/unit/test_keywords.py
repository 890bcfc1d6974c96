"""Consent keywords (CONTRACT §4): exactly one word, trimmed and case-folded.

The decisions these tests pin (see consent/keywords.py): any case; any surrounding Unicode
whitespace; invisible format characters (zero-width space/joiners, BOM, soft hyphen) are
ignored anywhere; NFKC compatibility forms (fullwidth Latin, ligatures) count as the ASCII
word; lookalike letters from other scripts (Cyrillic, Greek) do not; an opt-out or HELP
is honoured through punctuation and inner spaces or hyphens ("STOP.", "OPT-OUT", "opt out"),
an opt-in only as the bare word; a second word makes an ordinary message.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from consent.keywords import (
    HELP_WORDS,
    OPT_IN_WORDS,
    OPT_OUT_WORDS,
    Keyword,
    normalise,
    parse,
    voice_opt_out_requested,
)

FAMILY = {
    **dict.fromkeys(OPT_OUT_WORDS, Keyword.OPT_OUT),
    **dict.fromkeys(OPT_IN_WORDS, Keyword.OPT_IN),
    **dict.fromkeys(HELP_WORDS, Keyword.HELP),
}
WORDS = sorted(FAMILY)
WHITESPACE = [
    " ",
    "\t",
    "\n",
    "\r",
    "\x0b",
    "\x0c",
    "\u00a0",  # no-break space
    "\u2003",  # em space
    "\u202f",  # narrow no-break space
    "\u3000",  # ideographic space
    "\u2028",  # line separator
]
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]
# Letters that look Latin but are not: Cyrillic and Greek capitals and smalls.
LOOKALIKES = {
    "a": ["\u0430", "\u03b1"],
    "c": ["\u0441"],
    "e": ["\u0435", "\u03b5"],
    "i": ["\u0456", "\u03b9"],
    "n": ["\u03b7"],
    "o": ["\u043e", "\u03bf"],
    "p": ["\u0440", "\u03c1"],
    "s": ["\u0455"],
    "t": ["\u0442", "\u03c4"],
    "u": ["\u03c5"],
    "y": ["\u0443"],
    "A": ["\u0410", "\u0391"],
    "C": ["\u0421"],
    "E": ["\u0415", "\u0395"],
    "I": ["\u0406", "\u0399"],
    "N": ["\u039d"],
    "O": ["\u041e", "\u039f"],
    "P": ["\u0420", "\u03a1"],
    "S": ["\u0405"],
    "T": ["\u0422", "\u03a4"],
    "U": ["\u0423"],
    "Y": ["\u03a5"],
}

words = st.sampled_from(WORDS)
spaces = st.text(alphabet=st.sampled_from(WHITESPACE), max_size=4)


@st.composite
def any_case(draw: st.DrawFn, word: str) -> str:
    flags = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.upper() if up else c.lower() for c, up in zip(word, flags, strict=True))


def fullwidth(ch: str) -> str:
    return chr(ord(ch) - 0x21 + 0xFF01) if "!" <= ch <= "~" else ch


# --- every keyword --------------------------------------------------------------------


@pytest.mark.parametrize("word", WORDS)
@pytest.mark.parametrize("variant", [str.upper, str.lower, str.title, lambda w: f"  {w}\n"])
def test_every_keyword_in_plain_variants_is_its_family(word: str, variant: object) -> None:
    assert parse(variant(word)) is FAMILY[word]  # type: ignore[operator]


def test_the_families_are_exactly_the_contracts_lists() -> None:
    assert {w.upper() for w in OPT_OUT_WORDS} == {
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPTOUT",
    }
    assert {w.upper() for w in OPT_IN_WORDS} == {"START", "YES", "UNSTOP"}
    assert {w.upper() for w in HELP_WORDS} == {"HELP", "INFO"}


@pytest.mark.parametrize(
    "body",
    [
        "STOP please",
        "please STOP",
        "stop it",
        "Yes please",
        "Yes!",
        "Yes.",
        "START.",
        "un-stop",
        "stopp",
        "I want to cancel my appointment",
        "",
        "   ",
        "\u200b",
    ],
)
def test_anything_but_exactly_one_keyword_is_an_ordinary_message(body: str) -> None:
    assert parse(body) is None


# --- properties -----------------------------------------------------------------------


@given(st.data(), words, spaces, spaces)
def test_case_and_surrounding_whitespace_never_matter(
    data: st.DataObject, word: str, before: str, after: str
) -> None:
    assert parse(before + data.draw(any_case(word)) + after) is FAMILY[word]


@given(st.data(), words)
def test_invisible_format_characters_anywhere_are_ignored(data: st.DataObject, word: str) -> None:
    chars = list(data.draw(any_case(word)))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(chars)))
        chars.insert(at, data.draw(st.sampled_from(INVISIBLE)))
    assert parse("".join(chars)) is FAMILY[word]


def test_fullwidth_stop_is_stop_and_cyrillic_lookalike_is_not() -> None:
    assert parse("".join(fullwidth(c) for c in "STOP")) is Keyword.OPT_OUT
    assert parse("\u0421\u0422\u041e\u0420") is None  # Cyrillic ES, TE, O, ER
    assert parse("ST\u039fP") is None  # Greek capital omicron


@given(st.data(), words)
def test_fullwidth_letters_count_as_the_word(data: st.DataObject, word: str) -> None:
    flags = data.draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    body = "".join(
        fullwidth(c) if wide else c
        for c, wide in zip(data.draw(any_case(word)), flags, strict=True)
    )
    assert parse(body) is FAMILY[word]


@pytest.mark.parametrize(
    ("body", "keyword"),
    [
        ("STOP.", Keyword.OPT_OUT),
        ("Stop!", Keyword.OPT_OUT),
        ('"STOP"', Keyword.OPT_OUT),
        ("stop!!! \U0001f621", Keyword.OPT_OUT),
        ("OPT-OUT", Keyword.OPT_OUT),
        ("opt out", Keyword.OPT_OUT),
        ("Opt out.", Keyword.OPT_OUT),
        ("STOP ALL", Keyword.OPT_OUT),
        ("S T O P", Keyword.OPT_OUT),
        ("Unsubscribe, thanks", None),
        ("Help?", Keyword.HELP),
    ],
)
def test_an_opt_out_through_punctuation_or_spaces_is_honoured(
    body: str, keyword: Keyword | None
) -> None:
    assert parse(body) is keyword


@given(st.data(), words)
def test_lookalike_letters_from_other_scripts_are_not_keywords(
    data: st.DataObject, word: str
) -> None:
    cased = data.draw(any_case(word))
    swappable = [i for i, c in enumerate(cased) if c in LOOKALIKES]
    assume(swappable)
    picks = data.draw(
        st.lists(st.sampled_from(swappable), min_size=1, max_size=len(swappable), unique=True)
    )
    chars = list(cased)
    for i in picks:
        chars[i] = data.draw(st.sampled_from(LOOKALIKES[chars[i]]))
    assert parse("".join(chars)) is None


@given(words, st.sampled_from([" ", "  ", "\n", "\u00a0"]), st.text(min_size=1, max_size=12))
def test_a_keyword_with_another_word_is_an_ordinary_message(
    word: str, gap: str, other: str
) -> None:
    letters = "".join(c for c in normalise(other) if c.isalnum())
    assume(letters and word + letters not in FAMILY and letters + word not in FAMILY)
    assert parse(word + gap + other) is None
    assert parse(other + gap + word) is None


@given(st.text(max_size=40))
def test_a_match_is_only_ever_letters_of_one_listed_word(body: str) -> None:
    keyword = parse(body)
    if keyword is not None:
        letters = "".join(c for c in normalise(body) if c.isalnum())
        assert FAMILY[letters] is keyword
        if keyword is Keyword.OPT_IN:  # an opt-in only ever as the bare word
            assert normalise(body) == letters


@given(st.text(max_size=40))
def test_normalising_twice_changes_nothing(body: str) -> None:
    assert normalise(normalise(body)) == normalise(body)


# --- voice ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "speech",
    [
        "Please stop calling me",
        "stop calling me.",
        "I want to opt out",
        "Can you opt me out",
        "unsubscribe",
        "Unsubscribe me from these reminders",
        "Don't contact me again",
        "Don\u2019t call me any more",
        "do not text me",
        "No more calls please",
        "Stop the reminders",
        "take me off your calling list",
        "remove my number from your list",
        "just leave me alone",
        "stop",
        "Stop.",
        "stop please",
        "opt-out",
        "remove me from your list",
        "please remove me from your mailing list",
        "I don't want any more calls",
        "delete my number",
    ],
)
def test_opt_out_phrases_in_speech_are_heard(speech: str) -> None:
    assert voice_opt_out_requested(speech)


@pytest.mark.parametrize(
    "speech",
    [
        "I'd like to book an appointment",
        "I need to cancel my appointment on Tuesday",
        "take me off the waiting list",
        "I don't want to opt out",
        "I'm not going to unsubscribe",
        "I don't want you to stop calling me",
        "no need to remove me from your list",
        "please don't opt me out",
        "stop, I mean wait",
        "can you call me back",
        "the bus stop is outside",
        "",
    ],
)
def test_ordinary_speech_is_not_an_opt_out(speech: str) -> None:
    assert not voice_opt_out_requested(speech)
