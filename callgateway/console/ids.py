"""Record ids as the console takes them from a URL: positive integers a table can hold.

The tables' ids are `integer` columns (32-bit on PostgreSQL). A bigger number in a path or
in `before=` names no record, and handed to the database it raises instead (SQLite's
OverflowError past 64 bits, PostgreSQL's "integer out of range" past 31). A path id out of
range matches no route (404); a `before=` that is not an id is a bad request (400).
"""

from __future__ import annotations

from typing import Any

from flask import abort, request
from werkzeug.routing import IntegerConverter, Map

ID_MAX = 2**31 - 1  # the largest id an `integer` column holds


class Id64Converter(IntegerConverter):
    """`<int:...>` in the console's routes: 1 to ID_MAX, else the route does not match."""

    def __init__(self, url_map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", ID_MAX)
        super().__init__(url_map, *args, **kwargs)


def before_arg(name: str = "before") -> int | None:
    """The id a list page continues before (its "older" link), None for the first page."""
    raw = request.args.get(name, "")
    if raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10 or not 0 < int(raw) <= ID_MAX:
        abort(400)
    return int(raw)
