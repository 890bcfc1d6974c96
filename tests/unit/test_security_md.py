"""SECURITY.md names, for each threat, the tests that prove its control: they must exist."""

from __future__ import annotations

import re

from tests.support.settings import ROOT

REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def test_every_test_security_md_cites_exists() -> None:
    text = (ROOT / "SECURITY.md").read_text()
    cited = REFERENCE.findall(text)
    assert len(cited) >= 20  # the table is there and was parsed
    missing = [
        f"{path}::{name}"
        for path, name in cited
        if not (ROOT / path).is_file()
        or not re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.MULTILINE)
    ]
    assert missing == []
