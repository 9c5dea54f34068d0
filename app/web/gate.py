"""Login is required everywhere except the endpoints listed here."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, abort, request
from flask_login import current_user

from app.extensions import login_manager

# Every endpoint a visitor may reach without being logged in. Anything else needs login;
# tests/test_gate.py walks app.url_map to prove it.
PUBLIC_ENDPOINTS = frozenset(
    {
        "static",
        "auth.login",
        "auth.second_factor",
        "auth.enroll",
        "auth.logged_out",
        "auth.logout",
        "web.set_language",
        "web.healthz",
        "pwa.manifest",
        "pwa.service_worker",
        "pwa.offline",
        # Source systems authenticate with their own bearer token (app/fhir/routes.py).
        "fhir.receive_bundle",
    }
)


def only_for(*roles: object) -> Callable[[], None]:
    """A blueprint's ``before_request``: 404 for anyone without one of these roles (the pages do
    not exist for them)."""

    def check() -> None:
        if not current_user.is_authenticated or current_user.role not in roles:
            abort(404)

    return check


def init_app(app: Flask) -> None:
    @app.before_request
    def require_login():  # type: ignore[no-untyped-def]
        if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
            return None
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        return None
