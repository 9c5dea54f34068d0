"""What every template can use: nonce, asset URLs, language, tab bar, form helpers."""

from __future__ import annotations

import json

from flask import Flask, current_app, request
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup
from flask_babel import format_date, format_datetime, get_locale

from app.web.assets import asset_url
from app.web.security import csp_nonce

# htmx for a strict CSP: no eval, no inline styles, no history snapshots (health pages must
# never land in localStorage), only requests to this site.
HTMX_CONFIG = json.dumps(
    {
        "allowEval": False,
        "allowScriptTags": False,
        "includeIndicatorStyles": False,
        "historyCacheSize": 0,
        "refreshOnHistoryMiss": True,
        "selfRequestsOnly": True,
        "responseHandling": [
            {"code": "204", "swap": False},
            {"code": "[23]..", "swap": True},
            {"code": "[45]..", "swap": True, "error": True},
        ],
    },
    separators=(",", ":"),
)


def csrf_field() -> Markup:
    """The CSRF token as a hidden input without an id (a page may hold several forms)."""
    return Markup('<input type="hidden" name="csrf_token" value="%s">') % generate_csrf()


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(format_date=format_date, format_datetime=format_datetime, csrf_field=csrf_field)

    @app.context_processor
    def globals_for_templates() -> dict:
        return {
            "csp_nonce": csp_nonce,
            "asset_url": asset_url,
            "htmx_config": HTMX_CONFIG,
            "current_locale": str(get_locale()),
            "languages": current_app.config["LANGUAGES"],
            "demo_mode": current_app.config["DEMO_MODE"],
            "current_path": request.full_path.rstrip("?") if request else "/",
        }
