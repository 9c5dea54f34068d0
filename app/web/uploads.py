"""Routes that take files get a larger request limit than the rest (MAX_CONTENT_LENGTH, 1 MB).

The limit is raised before any hook reads the form (CSRF does, first thing), and only for views
marked with ``@takes_files``: everywhere else a large body is still refused with 413 unread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Flask, current_app, request

F = TypeVar("F", bound=Callable)


def takes_files(view: F) -> F:
    view._varde_takes_files = True  # type: ignore[attr-defined]
    return view


def upload_limit() -> int:
    """A message with all its files at the largest size, and room for its text and form fields."""
    config = current_app.config
    return config["MESSAGE_MAX_ATTACHMENTS"] * config["MESSAGE_ATTACHMENT_MAX_BYTES"] + config["MAX_CONTENT_LENGTH"]


def init_app(app: Flask) -> None:
    @app.before_request
    def raise_limit_for_files() -> None:
        view = app.view_functions.get(request.endpoint or "")
        if getattr(view, "_varde_takes_files", False):
            request.max_content_length = upload_limit()
