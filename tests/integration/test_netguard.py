"""The guard itself: the suite's promise that nothing reaches Twilio, OpenAI or AWS."""

from __future__ import annotations

import socket

import pytest
import requests

from tests.support.netguard import OutboundNetworkBlocked


def test_a_request_to_the_real_twilio_api_is_refused_before_any_packet() -> None:
    with pytest.raises(requests.ConnectionError, match="no network in tests"):
        requests.get("https://api.twilio.com/2010-04-01", timeout=2)


def test_a_raw_connection_to_a_public_address_is_refused() -> None:
    sock = socket.socket()
    try:
        with pytest.raises(OutboundNetworkBlocked):
            sock.connect(("93.184.216.34", 443))
    finally:
        sock.close()


def test_loopback_stays_usable() -> None:
    assert socket.getaddrinfo("127.0.0.1", 80)
    assert socket.getaddrinfo("localhost", 80)
