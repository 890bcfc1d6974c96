"""No test reaches the internet: any connection to a non-loopback address fails loudly.

`responses` and the OpenAI stub answer before a socket is opened; real local services
(Redis, PostgreSQL, moto, gateways under test) are all on loopback.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class OutboundNetworkBlocked(ConnectionError):
    pass


def _is_loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if not isinstance(host, str):
        return True  # AF_UNIX paths and the like
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host is not None and not _is_loopback(host):
        raise OutboundNetworkBlocked(f"test tried to resolve {host!r}: no network in tests")
    return _real_getaddrinfo(host, *args, **kwargs)


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        raise OutboundNetworkBlocked(f"test tried to connect to {address[0]!r}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True, scope="session")
def _no_outbound_network() -> Iterator[None]:
    socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    yield
    socket.getaddrinfo = _real_getaddrinfo
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
