"""Every route needs login unless it is listed as public, in one place."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.access.models import AuditEvent
from app.db import db
from app.web.gate import PUBLIC_ENDPOINTS
from tests.conftest import csrf_from


def _routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        url = rule.rule
        for arg in rule.arguments:
            url = url.replace(f"<{arg}>", "x").replace(f"<int:{arg}>", "1")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, url


def test_it_knows_every_public_endpoint(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints >= PUBLIC_ENDPOINTS, "a public endpoint that does not exist"


def test_every_non_public_route_needs_login(app, client):
    token = csrf_from(client)  # a valid token, so that it is the login gate that answers
    checked = 0
    for endpoint, method, url in _routes(app):
        response = client.open(url, method=method, data={"csrf_token": token})
        assert response.status_code == 303, f"{method} {url} ({endpoint}) answered {response.status_code}"
        assert response.headers["Location"].startswith("/logg-inn"), f"{method} {url}"
        checked += 1
    assert checked >= 10
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_a_form_sent_after_the_session_ended_goes_to_login_not_to_a_csrf_error(client):
    response = client.post(
        "/innstillinger/enheter/logg-ut-andre",
        headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/innstillinger"},
    )
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/logg-inn?next=/innstillinger"
    assert client.post("/okt/forleng").headers["Location"] == "/logg-inn?next=/okt/forleng"


def test_htmx_requests_to_closed_routes_get_hx_redirect(app, client):
    for _endpoint, method, url in _routes(app):
        if method != "GET":
            continue
        response = client.get(url, headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/timer"})
        assert response.status_code == 401, url
        assert response.headers["HX-Redirect"] == "/logg-inn?next=/timer", url


@pytest.mark.parametrize(
    "path", ["/logg-inn", "/logget-ut", "/manifest.webmanifest", "/sw.js", "/frakoblet", "/healthz"]
)
def test_public_pages_open_without_login(client, path):
    assert client.get(path).status_code == 200
