"""Manifest, service worker at root scope, and the offline page it precaches."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from app.web import htmx
from app.web.assets import SHELL_ASSETS, asset_url, asset_version

bp = Blueprint("pwa", __name__)

THEME_COLOUR = "#0b4f6c"
BACKGROUND_COLOUR = "#f6f8f9"


@bp.route("/manifest.webmanifest")
def manifest() -> Response:
    data = {
        "id": "/",
        "name": "Varde – helsetjenestene dine",
        "short_name": "Varde",
        "description": _("Prøvesvar, notater, timer og meldinger fra sykehus og kommune – på ett sted."),
        "lang": "nb",
        "dir": "ltr",
        "start_url": "/?kilde=app",
        "scope": "/",
        "display": "standalone",
        "orientation": "portrait",
        "theme_color": THEME_COLOUR,
        "background_color": BACKGROUND_COLOUR,
        "categories": ["health", "medical"],
        "icons": [
            {"src": asset_url("icons/icon-192.png"), "sizes": "192x192", "type": "image/png", "purpose": "any"},
            {"src": asset_url("icons/icon-512.png"), "sizes": "512x512", "type": "image/png", "purpose": "any"},
            {
                "src": asset_url("icons/icon-maskable-512.png"),
                "sizes": "512x512",
                "type": "image/png",
                "purpose": "maskable",
            },
        ],
    }
    response = current_app.response_class(current_app.json.dumps(data), mimetype="application/manifest+json")
    return response


@bp.route("/sw.js")
def service_worker() -> Response:
    precache = [url_for("pwa.offline")] + [asset_url(name) for name in SHELL_ASSETS]
    body = render_template(
        "pwa/sw.js",
        version=asset_version(),
        precache=precache,
        offline_url=url_for("pwa.offline"),
        icon=asset_url("icons/icon-192.png"),
        badge=asset_url("icons/badge-96.png"),
        lang=str(get_locale()),
        more_text=_("Du har %(num)s nye varsler. Trykk for å se dem."),
        centre_url=url_for("notify.centre"),
    )
    response = Response(body, mimetype="text/javascript")
    response.headers["Service-Worker-Allowed"] = "/"
    return response


@bp.route("/frakoblet")
def offline() -> Response:
    """Shown by the service worker when there is no network. Holds no personal data."""
    return htmx.render("pwa/offline.html")
