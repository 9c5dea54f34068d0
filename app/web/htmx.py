"""The only module that reads HX-* request headers or writes HX-* response headers.

A URL serves the whole page or just its fragment: a plain request, a boosted navigation or a
history restore gets the page; an htmx request for a fragment gets the fragment. Templates include
their fragments, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Response, make_response, redirect, render_template
from htmx_flask import request


def is_htmx() -> bool:
    return bool(getattr(request, "htmx", False))


def wants_fragment() -> bool:
    h = request.htmx
    return bool(h) and not h.boosted and not h.history_restore_request


def page_path() -> str:
    """Path and query of the page the user is looking at: for an htmx request the page that sent
    it (its own URL is only a fragment), else this request. Used to come back here after login."""
    if is_htmx() and request.htmx.current_url:
        parts = urlsplit(request.htmx.current_url)
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return request.full_path if request.query_string else request.path


def render(page: str, fragment: str | None = None, status: int = 200, **context: Any) -> Response:
    """Render the page, or only ``fragment`` when htmx asked for a part of it."""
    template = fragment if fragment and wants_fragment() else page
    return make_response(render_template(template, **context), status)


def redirect_to(url: str) -> Response:
    """A redirect that works for both: 303 for a browser, HX-Redirect (full navigation) for htmx."""
    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, code=303)


def retarget_to_live_region(response: Response) -> Response:
    """Send an htmx error message to the page's live region instead of the element that asked."""
    response.headers["HX-Retarget"] = "#live"
    response.headers["HX-Reswap"] = "innerHTML"
    return response


def add_vary(response: Response) -> None:
    response.vary.add("HX-Request")
