"""Whole numbers from a request, only as large as a database key can be.

Python's int() takes any number of digits, but a key column holds at most a signed 64-bit value:
an id of 20 digits in an address or a form reached the database and failed there (SQLite:
OverflowError, a 500). A number out of range is treated like one that is not a number at all:
``<int:…>`` in a route is then not matched (404), and ``request.args.get(…, type=db_int)`` gives its
default.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter, Map

from app.db import DB_INT_MAX


def db_int(value: str) -> int:
    """``type=`` for ``request.args.get`` and ``request.form.get``: ValueError when out of range."""
    number = int(value)
    if not -DB_INT_MAX - 1 <= number <= DB_INT_MAX:
        raise ValueError(f"{value!r} is out of range")
    return number


class KeyConverter(IntegerConverter):
    """Werkzeug's ``int`` converter with the largest value a key can have as its default ``max``."""

    def __init__(
        self,
        map: Map,
        fixed_digits: int = 0,
        min: int | None = None,
        max: int | None = DB_INT_MAX,
        signed: bool = False,
    ) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def init_app(app: Flask) -> None:
    """Before any route is added: rules take their converter when they are made."""
    app.url_map.converters["int"] = KeyConverter
