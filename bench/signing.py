"""Precomputed, Twilio-signed form requests and the data file the wrk script replays.

Signing happens here, once, so the load generator spends its CPU on sending, not on HMAC.
The data file has one request per line: ``path<TAB>signature<TAB>body``. Nothing in
the three fields can contain a tab or newline: the path is ours, the signature is
base64, and the body is ``urlencode``d.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

from twilio.request_validator import RequestValidator


@dataclass(frozen=True)
class SignedRequest:
    path: str  # path and query, exactly as sent on the request line
    signature: str  # X-Twilio-Signature
    body: str  # application/x-www-form-urlencoded

    def line(self) -> str:
        return f"{self.path}\t{self.signature}\t{self.body}\n"


def encode_form(params: dict[str, str]) -> str:
    # urlencode uses quote_plus: "+" -> "%2B" and " " -> "+", which is what Twilio sends
    # and what Flask decodes; a raw "+" in From/To would arrive as a space and break
    # both the phone number and the signature.
    return urlencode(params)


def sign(validator: RequestValidator, base_url: str, path: str, params: dict[str, str]) -> str:
    """Twilio's scheme: base64(HMAC-SHA1(token, url + sorted key+value pairs))."""
    return validator.compute_signature(base_url + path, params)


def expand_path(template: str, params: dict[str, str]) -> str:
    """`/twilio/voice/gather?call={CallSid}` -> the query filled, encoded, from the form."""
    return template.format_map({k: quote(v, safe="") for k, v in params.items()})


def signed_requests(
    token: str, base_url: str, path: str, params: Iterable[dict[str, str]]
) -> Iterator[SignedRequest]:
    validator = RequestValidator(token)
    for p in params:
        full = expand_path(path, p)
        yield SignedRequest(full, sign(validator, base_url, full, p), encode_form(p))


def signed_mixed(
    token: str, base_url: str, items: Iterable[tuple[str, dict[str, str]]]
) -> Iterator[SignedRequest]:
    """Like `signed_requests`, for a stream of (path, form) pairs to different paths."""
    validator = RequestValidator(token)
    for path, p in items:
        full = expand_path(path, p)
        yield SignedRequest(full, sign(validator, base_url, full, p), encode_form(p))


def write_data_file(target: Path, requests: Iterable[SignedRequest]) -> int:
    count = 0
    with target.open("w", encoding="utf-8", newline="\n") as fh:
        for req in requests:
            fh.write(req.line())
            count += 1
    return count


def read_data_file(source: Path) -> list[SignedRequest]:
    out: list[SignedRequest] = []
    for raw in source.read_text(encoding="utf-8").splitlines():
        path, signature, body = raw.split("\t")
        out.append(SignedRequest(path, signature, body))
    return out
