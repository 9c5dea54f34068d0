"""Security headers on every response: pages, fragments, errors and assets alike."""

from __future__ import annotations

import secrets

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


def init_app(app: Flask) -> None:
    # Headers that never change, built once.
    fixed = {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Strict-Transport-Security": f"max-age={app.config['HSTS_MAX_AGE']}; includeSubDomains",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": "camera=(self), microphone=(self), geolocation=(), payment=(), usb=()",
    }

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
