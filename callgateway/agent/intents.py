"""What a caller wants, from the words Twilio heard: deterministic keyword rules.

Used by the rules agent for everything, and by the conversation for the few things that
must never depend on a model (a person, an opt-out, an emergency).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from callgateway.config import AppointmentType, Clinic
from consent import keywords

_NOT_KEPT = re.compile(r"[^a-z0-9:.' ]+")
_SPACES = re.compile(r"\s+")


# A turn asks several questions of the same words (emergency? opt-out? person? intent?
# type? yes or no?): each normalises them, so the last few are kept.
@lru_cache(maxsize=1024)
def normalise(text: str) -> str:
    text = text.lower().replace("\u2019", "'").replace("-", " ")
    text = _NOT_KEPT.sub(" ", text)
    return _SPACES.sub(" ", text).strip().rstrip(".")


def _phrases(*items: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(items) + r")\b")


_PERSON = _phrases(
    r"(?:a |real |actual )?(?:person|human|receptionist|operator)",
    r"someone (?:real|in the office)",
    r"speak (?:to|with) (?:someone|somebody|a member|the team|staff|reception)",
    r"talk (?:to|with) (?:someone|somebody|a member|the team|staff|reception)",
    r"member of (?:staff|the team|your team)",
    r"front desk",
)
_MOVE = _phrases(
    r"move",
    r"moving",
    r"reschedule",
    r"rearrange",
    r"change (?:my|the) (?:appointment|booking|time|date)",
    r"(?:a )?different (?:time|day|date)",
    r"postpone",
    r"bring (?:it )?forward",
)
_CANCEL = _phrases(
    r"cancel",
    r"cancell?ing",
    r"can't make (?:it|my appointment)",
    r"cannot make (?:it|my appointment)",
    r"won't be able to (?:come|make it)",
    r"call off",
)
_BOOK = _phrases(
    r"book",
    r"booking",
    r"make an appointment",
    r"new appointment",
    r"an appointment",
    r"schedule",
    r"come in",
    r"see (?:a|the|someone)",
)
_AVAILABILITY = _phrases(
    r"do you have",
    r"have you got",
    r"any(?:thing)? (?:free|available|slots?|appointments?|space)",
    r"availability",
    r"available",
    r"free slots?",
    r"when (?:is|are) (?:the )?next",
    r"next free",
    r"earliest",
)
_HOURS = _phrases(
    r"open(?:ing)?(?: hours| times)?",
    r"what time do you (?:open|close)",
    r"close",
    r"closing",
)
_YES = _phrases(
    r"yes",
    r"yeah",
    r"yep",
    r"yup",
    r"sure",
    r"ok(?:ay)?",
    r"please do",
    r"go ahead",
    r"that's (?:fine|right|correct|great|perfect|good)",
    r"correct",
    r"perfect",
    r"great",
    r"sounds good",
    r"that works",
    r"book it",
    r"do it",
    r"absolutely",
    r"definitely",
    r"fine",
)
_NO = _phrases(
    r"no",
    r"nope",
    r"nah",
    r"not really",
    r"neither",
    r"none of (?:those|them)",
    r"don't",
    r"do not",
    r"wrong",
    r"never mind",
    r"nevermind",
    r"cancel that",
    r"changed my mind",
)
_DONE = _phrases(
    r"good ?bye",
    r"bye",
    r"that's (?:all|it|everything)",
    r"nothing else",
    r"no thanks?(?: you)?",
    r"no that's (?:all|it|everything)",
    r"i'm done",
    r"all done",
)
_ORDINAL = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "last": -1}
_CHOICE = re.compile(r"\b(first|1st|second|2nd|third|3rd|last|earlier|later)\b")


def wants_person(text: str) -> bool:
    return bool(_PERSON.search(normalise(text)))


def wants_opt_out(text: str) -> bool:
    """A voice opt-out, in any of its phrasings and never when negated ("I don't want to
    opt out"): the consent room's reading of speech, the same for every agent."""
    return keywords.voice_opt_out_requested(text)


def is_emergency(text: str, phrases: Iterable[str]) -> bool:
    norm = normalise(text)
    return any(p.search(norm) for p in _whole_phrases(tuple(phrases)))


@lru_cache(maxsize=64)
def _whole_phrases(phrases: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    """Each configured phrase as a whole-word pattern, compiled once per phrase list."""
    return tuple(re.compile(r"\b" + re.escape(normalise(p)) + r"\b") for p in phrases if p)


def intent(text: str) -> str | None:
    """The main thing the caller asks for: move | cancel | book | availability | hours."""
    norm = normalise(text)
    if _MOVE.search(norm):
        return "move"
    if _CANCEL.search(norm):
        return "cancel"
    if _AVAILABILITY.search(norm):
        return "availability"
    if _BOOK.search(norm):
        return "book"
    if _HOURS.search(norm):
        return "hours"
    return None


def yes_no(text: str) -> str | None:
    """'yes', 'no' or None. A 'no' anywhere wins over a 'yes' ("yes… no, not that one")."""
    norm = normalise(text)
    if _NO.search(norm):
        return "no"
    if _YES.search(norm):
        return "yes"
    return None


def is_done(text: str) -> bool:
    return bool(_DONE.search(normalise(text)))


def choice(text: str, count: int) -> int | None:
    """'the second one' -> 1; 'the later one' -> last; None when no choice was named."""
    m = _CHOICE.search(normalise(text))
    if not m or count == 0:
        return None
    word = m.group(1)
    if word == "earlier":
        return 0
    if word == "later":
        return count - 1
    index = _ORDINAL[word]
    index = count - 1 if index < 0 else index
    return index if index < count else None


def appointment_type(text: str, clinic: Clinic) -> AppointmentType | None:
    """The type the caller named ("initial assessment", "a follow-up")."""
    norm = normalise(text)
    kinds = clinic.appointment_types
    names = _type_names(tuple((kind.id, kind.name) for kind in kinds))
    said = norm.split()
    for kind, (name, id_, _words) in zip(kinds, names, strict=True):
        if name in norm or id_ in said:
            return kind
    # "follow-up" alone for "Follow-up session", "assessment" for "Initial assessment".
    for kind, (_name, _id, words) in zip(kinds, names, strict=True):
        if any(w.search(norm) for w in words):
            return kind
    return None


@lru_cache(maxsize=64)
def _type_names(
    kinds: tuple[tuple[str, str], ...],
) -> tuple[tuple[str, str, tuple[re.Pattern[str], ...]], ...]:
    """Per (id, name): the name and id normalised, and the name's long words as patterns."""
    out = []
    for id_, name in kinds:
        norm = normalise(name)
        words = [w for w in norm.split() if len(w) > 4]
        out.append((norm, normalise(id_), tuple(re.compile(rf"\b{re.escape(w)}\b") for w in words)))
    return tuple(out)
