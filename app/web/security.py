"""Security headers on every response: pages, fragments, errors and assets alike."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, request

STATIC_PREFIXES = ("/static/",)


def csp_nonce() -> str:
    """One nonce per response, for the script and style elements Varde itself writes."""
    nonce = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(18)
    return nonce


def content_security_policy(nonce: str) -> str:
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' 'nonce-{nonce}'",
            f"style-src 'self' 'nonce-{nonce}'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "manifest-src 'self'",
            "worker-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "object-src 'none'",
        ]
    )


# A file, never a page: nothing in it may run, not even if a browser were talked into showing it.
DOWNLOAD_CSP = "default-src 'none'; sandbox"


def fixed_headers(config: Mapping[str, Any]) -> dict[str, str]:
    """The headers every response carries, whatever it is (also the poll's fast path's)."""
    return {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Strict-Transport-Security": f"max-age={config['HSTS_MAX_AGE']}; includeSubDomains",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": "camera=(self), microphone=(self), geolocation=(), payment=(), usb=()",
    }


def as_file(response: Response) -> Response:
    """Mark a response as a file: its stricter CSP is kept by the hook below, which adds nosniff
    and no-store as to every response that is not a static asset."""
    response.headers["Content-Security-Policy"] = DOWNLOAD_CSP
    return response


def init_app(app: Flask) -> None:
    fixed = fixed_headers(app.config)  # built once

    @app.after_request
    def set_security_headers(response: Response) -> Response:
        h = response.headers
        if "Content-Security-Policy" not in h:  # a download sets its own, stricter one
            h["Content-Security-Policy"] = content_security_policy(csp_nonce())
        h.update(fixed)
        if response.status_code >= 400 or not request.path.startswith(STATIC_PREFIXES):
            # Pages carry health data or CSRF tokens: never stored by the browser or a proxy.
            h["Cache-Control"] = "no-store"
            for name in ("Expires", "ETag", "Last-Modified"):
                if name in h:
                    del h[name]
            response.vary.update(("Cookie", "HX-Request"))
        return response
