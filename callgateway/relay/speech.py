"""A reply as the `text` tokens Twilio speaks: sentence-sized, and together the whole reply."""

from __future__ import annotations

import re

# A sentence ends at . ! or ? before whitespace (or the end); "10.30" and "e.g." inside a
# word do not end one. The whitespace after it stays with it, so the tokens join back up.
_SENTENCE = re.compile(r".+?(?:[.!?]+(?=\s|$)\s*|$)", re.S)


def sentences(text: str) -> list[str]:
    """`text` cut into sentences; ``"".join(sentences(text)) == text``."""
    return [m.group(0) for m in _SENTENCE.finditer(text) if m.group(0)]
