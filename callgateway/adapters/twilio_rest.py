"""Adapter for Twilio's REST API: the only module that talks to api.twilio.com.

Errors are classified (healthchecks' Transport habit): a permanent error (4xx other than
429) is not retried; a transient one (5xx, 429, timeout, connection) is, a bounded number
of times, by the caller's job.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import requests

API = "2010-04-01"
CLOCK_SKEW = timedelta(minutes=2)  # between our clock and Twilio's date_created


def _twilio_time(value: object) -> datetime | None:
    """Twilio's RFC 2822 dates ("Mon, 23 Nov 2026 17:40:00 +0000")."""
    if not isinstance(value, str):
        return None
    with contextlib.suppress(TypeError, ValueError):
        return parsedate_to_datetime(value)
    return None


class TwilioError(Exception):
    def __init__(self, message: str, status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class TransientError(TwilioError):
    """Worth retrying later: Twilio or the network had a bad moment."""


class AmbiguousError(TransientError):
    """The request went out and no answer came back (a read timeout on a POST): Twilio may
    have acted on it, so a retry must look before it repeats it (`find_sms`)."""


class PermanentError(TwilioError):
    """Retrying will not help: the request itself is wrong, or the thing is gone."""


class NotFound(PermanentError):
    pass


@dataclass
class TwilioRest:
    account_sid: str
    auth_token: str = field(repr=False)
    base_url: str = "https://api.twilio.com"
    timeout: float = 10.0
    http: requests.Session = field(default_factory=requests.Session)

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{API}/Accounts/{self.account_sid}/{path}"

    def _request(
        self, method: str, url: str, timeout: float | None = None, **kwargs: Any
    ) -> requests.Response:
        try:
            response = self.http.request(
                method,
                url,
                auth=(self.account_sid, self.auth_token),
                timeout=timeout or self.timeout,
                **kwargs,
            )
        except requests.ReadTimeout as exc:
            error = AmbiguousError if method == "POST" else TransientError
            raise error(f"twilio did not answer: {type(exc).__name__}") from None
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise TransientError(f"twilio unreachable: {type(exc).__name__}") from None
        if response.status_code < 400:
            return response
        code = None
        with contextlib.suppress(ValueError, AttributeError):
            code = response.json().get("code")
        message = f"twilio {method} {response.status_code} (code {code})"
        if response.status_code == 404:
            raise NotFound(message, response.status_code, code)
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(message, response.status_code, code)
        raise PermanentError(message, response.status_code, code)

    # Messages -------------------------------------------------------------------------
    def send_sms(
        self, to: str, from_: str, body: str, status_callback: str | None = None
    ) -> dict[str, Any]:
        data = {"To": to, "From": from_, "Body": body}
        if status_callback:
            data["StatusCallback"] = status_callback
        return self._request("POST", self._url("Messages.json"), data=data).json()

    def find_sms(self, to: str, from_: str, body: str, since: datetime) -> dict[str, Any] | None:
        """The message Twilio holds from `from_` to `to` with exactly `body`, created at
        or after `since` (less a little clock skew), if any: newest first, one page."""
        params = {"To": to, "From": from_, "PageSize": "50"}
        listing = self._request("GET", self._url("Messages.json"), params=params).json()
        earliest = since - CLOCK_SKEW
        for message in listing.get("messages") or []:
            created = _twilio_time(message.get("date_created"))
            if message.get("body") == body and created is not None and created >= earliest:
                return dict(message)
        return None

    # Calls ----------------------------------------------------------------------------
    def create_call(self, **params: str | list[str]) -> dict[str, Any]:
        """Twilio's Calls API fields as given (To, From, Url, StatusCallback,
        MachineDetection, ...); a list (StatusCallbackEvent) is sent as repeated fields."""
        return self._request("POST", self._url("Calls.json"), data=params).json()

    def fetch_call(self, call_sid: str) -> dict[str, Any]:
        """The call resource (`to`, `from`, `status`...): used to place a recording whose
        call this gateway never logged."""
        return self._request("GET", self._url(f"Calls/{call_sid}.json")).json()

    def start_recording(
        self, call_sid: str, status_callback: str, timeout: float = 3.0
    ) -> dict[str, Any]:
        """Asked from inside a webhook, with the caller listening: a short timeout, so a
        hanging Twilio costs the caller seconds of silence at most, not ten."""
        data = {
            "RecordingStatusCallback": status_callback,
            "RecordingStatusCallbackMethod": "POST",
            "RecordingStatusCallbackEvent": "completed",
            "RecordingChannels": "dual",
        }
        return self._request(
            "POST",
            self._url(f"Calls/{call_sid}/Recordings.json"),
            data=data,
            timeout=min(timeout, self.timeout),
        ).json()

    # Recordings -----------------------------------------------------------------------
    def recording_media_url(self, recording_sid: str) -> str:
        return self._url(f"Recordings/{recording_sid}.wav")

    def fetch_recording_media(self, recording_sid: str) -> bytes:
        return self._request("GET", self.recording_media_url(recording_sid)).content

    def list_call_recordings(self, call_sid: str) -> list[dict[str, Any]]:
        """The recordings Twilio holds for one call (`sid`, `status`, `source`, `duration`):
        used to find a voicemail taken while the database could not note it."""
        listing = self._request("GET", self._url(f"Calls/{call_sid}/Recordings.json")).json()
        return [dict(r) for r in listing.get("recordings") or []]

    def list_recordings(self, since: datetime, max_pages: int = 50) -> list[dict[str, Any]]:
        """Every recording Twilio holds in the account created at or after `since`,
        following Twilio's pages (at most `max_pages` of 100)."""
        url: str | None = self._url("Recordings.json")
        params: dict[str, str] | None = {
            "DateCreated>": since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "PageSize": "100",
        }
        found: list[dict[str, Any]] = []
        for _ in range(max_pages):
            if url is None:
                break
            page = self._request("GET", url, params=params).json()
            found += [dict(r) for r in page.get("recordings") or []]
            following = page.get("next_page_uri")
            url, params = (self.base_url + following, None) if following else (None, None)
        return found

    def delete_recording(self, recording_sid: str) -> bool:
        """Delete at Twilio; False when it was already gone (a retry after success)."""
        try:
            self._request("DELETE", self._url(f"Recordings/{recording_sid}.json"))
        except NotFound:
            return False
        return True
