"""The rule of `tests/unit`: a unit test touches no service.

No socket (so no Redis, PostgreSQL, S3 or network), no database (SQLite included), no Flask
app or test client, no subprocess. The guard is on for each unit test's setup, call and
teardown, so a fixture that reaches for a service fails the test too. A test that needs one
belongs in `tests/integration`.
"""

from __future__ import annotations

import socket
import sqlite3
import subprocess
from collections.abc import Callable, Generator
from typing import Any

import flask
import pytest


class ServiceTouchedInUnitTest(AssertionError):
    pass


def _refuse(what: str) -> Callable[..., Any]:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise ServiceTouchedInUnitTest(
            f"a unit test {what}: move it to tests/integration (tests/unit touches no service)"
        )

    return refuse


# (owner, attribute, what a call to it means). Connecting, binding and resolving are what
# every client of a real service (Redis, PostgreSQL, moto, HTTP) does first; creating a
# socket object alone is not refused, since asyncio makes a local socketpair for itself.
_GUARDED: list[tuple[Any, str, str]] = [
    (socket.socket, "connect", "opened a network connection"),
    (socket.socket, "connect_ex", "opened a network connection"),
    (socket.socket, "bind", "bound a socket"),
    (socket, "getaddrinfo", "resolved a host name"),
    (socket, "create_connection", "opened a network connection"),
    (sqlite3, "connect", "opened a SQLite database"),
    (sqlite3.dbapi2, "connect", "opened a SQLite database"),  # what SQLAlchemy calls
    (flask.Flask, "__init__", "created a Flask app"),
    (subprocess.Popen, "__init__", "started a subprocess"),
]


def _guarded() -> pytest.MonkeyPatch:
    patch = pytest.MonkeyPatch()
    for owner, name, what in _GUARDED:
        patch.setattr(owner, name, _refuse(what))
    return patch


def _run_guarded() -> Generator[None, Any, Any]:
    patch = _guarded()
    try:
        return (yield)
    finally:
        patch.undo()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _run_guarded())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _run_guarded())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, Any, Any]:
    if nextitem is None:
        # The session's last teardown also stops the session's servers (tests.support.services),
        # which rightly uses sockets and subprocesses: that is not the unit test's doing.
        return (yield)
    return (yield from _run_guarded())
