"""Consent keywords in an SMS (CONTRACT §4) and opt-out phrases in speech.

An SMS is a keyword only when the whole message, trimmed and case-folded, is one of the
words below: "STOP please" is an ordinary message for staff, as Twilio and the carriers
read it too. What "the same word" means, decided here once:

- Case: any (Unicode case folding).
- Trimming: leading and trailing whitespace of any kind (NBSP, ideographic space, line
  breaks...).
- Invisible format characters (Unicode category Cf: zero-width space and joiners, BOM,
  soft hyphen, word joiner) are removed anywhere. A phone shows STOP with a zero-width
  space inside as STOP, and that is what the patient meant to send.
- Compatibility forms count: the text is NFKC-normalised first, so FULLWIDTH LATIN letters
  (a CJK keyboard's Latin), the "st" ligature U+FB06 or mathematical bold letters read as
  the ASCII word. They are the same letters in another presentation.
- Lookalikes from other scripts do not count: STOP spelt with CYRILLIC CAPITAL LETTER ES,
  TE, O or ER, or with a GREEK CAPITAL LETTER OMICRON, is made of different letters (and
  the Russian word for stop, in Cyrillic, is not in the contract's list); no confusables
  table guesses at intent. Such a message is kept for staff, who can record an opt-out.
- An opt-out (or a request for help) is honoured through punctuation, symbols and the
  spaces or hyphens between its letters: "STOP.", "Stop!", "OPT-OUT", "opt out",
  "unsubscribe 🙏" opt out. Whoever writes that means it, and honouring an opt-out is the
  safe side to err on. An opt-in is not: only the bare word ("START", "yes") opts back in,
  so a patient's "Yes!" to some other question never revives messages they stopped.
- A second word makes an ordinary message ("STOP please", "yes I'll come").
"""

from __future__ import annotations

import enum
import re
import unicodedata


class Keyword(enum.Enum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


OPT_OUT_WORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"}
)
OPT_IN_WORDS = frozenset({"start", "yes", "unstop"})
HELP_WORDS = frozenset({"help", "info"})

_BY_WORD: dict[str, Keyword] = {
    **dict.fromkeys(OPT_OUT_WORDS, Keyword.OPT_OUT),
    **dict.fromkeys(OPT_IN_WORDS, Keyword.OPT_IN),
    **dict.fromkeys(HELP_WORDS, Keyword.HELP),
}


def normalise(body: str) -> str:
    """NFKC, drop invisible format characters, trim, case-fold (see the module doc)."""
    text = unicodedata.normalize("NFKC", body)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    # Folding can itself produce compatibility forms; a second NFKC makes this idempotent.
    return unicodedata.normalize("NFKC", text.strip().casefold())


# What falls away around and inside an opt-out word: anything not a letter or a digit
# (punctuation, symbols, emoji, spaces, hyphens, underscores).
_NOT_A_LETTER = re.compile(r"[\W_]+")


def parse(body: str | None) -> Keyword | None:
    """The keyword the whole message is, or None for an ordinary message."""
    if not body:
        return None
    text = normalise(body)
    exact = _BY_WORD.get(text)
    if exact is not None:
        return exact
    loose = _BY_WORD.get(_NOT_A_LETTER.sub("", text))
    return loose if loose in (Keyword.OPT_OUT, Keyword.HELP) else None


# --- voice -----------------------------------------------------------------------------

_CONTACT = (
    r"(?:call|calls|calling|ring|ringing|phone|phoning|text|texting|message|messaging"
    r"|contact|contacting|remind|reminding)"
)
_OPT_OUT_SPEECH = re.compile(
    r"\b(?:"
    rf"stop {_CONTACT}(?: me| us)?"
    r"|opt (?:me )?out|opting out|opt-out|optout"
    r"|unsubscribe|unsubscribing"
    rf"|(?:do not|don't|dont|never) {_CONTACT} (?:me|us)"
    r"|(?:take|remove|delete) (?:me|my number|us) (?:off|from) (?:your|the|this|all)"
    r" (?:calling |contact |mailing |phone |text |sms |call |contact )?(?:list|lists)"
    r"|(?:take|remove|delete) my (?:number|details)"
    r"|no more (?:calls|texts|messages|reminders|automated)"
    r"|(?:do not|don't|dont) want (?:any more |anymore |any |your )?"
    r"(?:calls|texts|messages|reminders)"
    r"|stop (?:all |the |these |your )?(?:calls|texts|messages|reminders)"
    r"|leave me alone"
    r")\b"
)
# The whole utterance an SMS keyword would be: "stop", "stop please", "opt out".
_OPT_OUT_ALONE = re.compile(
    r"^(?:please )?(?:stop|stop all|stopall|opt out|optout|unsubscribe|opt me out)"
    r"(?: please| now| it| thanks| thank you)?$"
)
# "I don't want to opt out", "not unsubscribing": the caller says the opposite.
_NEGATED = re.compile(
    r"\b(?:do not|don't|dont|not|never|no need to|no reason to)"
    r"(?: really)?(?: want| wish| need| mean| going| asking| trying| planning)?(?: you)?(?: to)?"
    r" (?:opt (?:me )?out|optout|opting out|unsubscribe|unsubscribing"
    rf"|stop {_CONTACT}|remove me|take me off)\b"
)


def _speech_text(speech: str) -> str:
    text = unicodedata.normalize("NFKC", speech).casefold().replace("\u2019", "'")
    text = re.sub(r"[^\w' -]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def voice_opt_out_requested(speech: str | None) -> bool:
    """Did the caller ask, in their own words, not to be contacted by the clinic any more?

    Any reasonable means counts (CONTRACT §4), and a false positive costs little (the caller
    is told, goes to a person, and can opt back in), so the phrases are generous; only an
    explicit negation ("I don't want to opt out") is ruled out.
    """
    if not speech:
        return False
    text = _speech_text(speech).replace("-", " ")
    if _NEGATED.search(text):
        return False
    return _OPT_OUT_ALONE.match(text) is not None or _OPT_OUT_SPEECH.search(text) is not None
