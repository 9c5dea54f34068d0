"""Security headers on pages, fragments, errors and assets; CSRF on every write; size limits."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.access.models import AuditEvent
from app.auth.models import User
from app.db import db
from tests.conftest import CSRF_RE, csrf_from, make_test_app


def assert_security_headers(response, *, cacheable: bool = False):
    h = response.headers
    csp = h["Content-Security-Policy"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert re.search(r"script-src 'self' 'nonce-[\w-]{20,}'", csp)
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'none'" in csp
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"] == "same-origin"
    assert h["Strict-Transport-Security"].startswith("max-age=")
    assert h["X-Frame-Options"] == "DENY"
    if not cacheable:
        assert h["Cache-Control"] == "no-store"
        assert "Cookie" in h["Vary"] and "HX-Request" in h["Vary"]


def test_pages_carry_the_security_headers(client, kari, login_as):
    login_as(kari)
    for path in ("/", "/innstillinger", "/meny", "/journal", "/meldinger", "/timer"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_security_headers(response)


def test_public_pages_carry_them_too(client):
    for path in ("/logg-inn", "/logget-ut", "/frakoblet", "/sw.js", "/manifest.webmanifest"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_security_headers(response)


def test_fragments_carry_them_too(client, app, kari, per, login_as):
    login_as(kari)
    other = app.test_client()
    login_as(kari, other)
    page = client.get("/innstillinger").get_data(as_text=True)
    sid = re.search(r"/innstillinger/enheter/(\w+)/logg-ut", page).group(1)
    response = client.post(
        f"/innstillinger/enheter/{sid}/logg-ut",
        headers={"HX-Request": "true", "X-CSRFToken": csrf_from(client, "/innstillinger")},
    )
    assert response.status_code == 200
    assert "<html" not in response.get_data(as_text=True)  # a fragment, not a page
    assert_security_headers(response)


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/finnes-ikke", 404), ("GET", "/sprak", 405)])
def test_error_pages_carry_them_too(client, method, path, status):
    response = client.open(path, method=method)
    assert response.status_code == status
    assert_security_headers(response)
    assert "Varde" in response.get_data(as_text=True)


def test_assets_are_cacheable_and_still_protected(client):
    with client.get("/static/css/varde.css?v=1") as response:
        assert response.status_code == 200
        assert "max-age=31536000" in response.headers["Cache-Control"]
        assert_security_headers(response, cacheable=True)


def test_each_response_has_its_own_nonce(client):
    one = client.get("/logg-inn").headers["Content-Security-Policy"]
    two = client.get("/logg-inn").headers["Content-Security-Policy"]
    assert one != two


def test_the_page_uses_the_nonce_and_no_inline_script_or_style(client, kari, login_as):
    login_as(kari)
    response = client.get("/innstillinger")
    html = response.get_data(as_text=True)
    nonce = re.search(r"'nonce-([\w-]+)'", response.headers["Content-Security-Policy"]).group(1)
    scripts = re.findall(r"<script[^>]*>", html)
    assert scripts and all(f'nonce="{nonce}"' in tag and "src=" in tag for tag in scripts)
    assert " style=" not in html and "<style" not in html
    assert " hx-on" not in html


def test_htmx_is_configured_for_the_strict_policy(client):
    html = client.get("/logg-inn").get_data(as_text=True)
    config = re.search(r'name="htmx-config" content="([^"]+)"', html).group(1).replace("&#34;", '"')
    assert '"allowEval":false' in config
    assert '"includeIndicatorStyles":false' in config
    assert '"historyCacheSize":0' in config


# --- CSRF --------------------------------------------------------------------------------------


def test_a_form_without_csrf_token_is_refused_and_changes_nothing(client, kari, login_as):
    login_as(kari)
    response = client.post("/sprak", data={"lang": "en"})
    assert response.status_code == 400
    assert "Skjemaet er utløpt" in response.get_data(as_text=True)
    assert_security_headers(response)
    assert db.session.get(User, kari.id).locale is None


def test_logout_without_csrf_token_does_not_log_out_but_asks_again(client, kari, login_as):
    login_as(kari)
    response = client.post("/logg-ut", data={"csrf_token": "from-an-older-login"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Du er ikke logget ut ennå" in page and "Skjemaet er utløpt" not in page
    assert client.get("/").status_code == 200  # still logged in: nothing was done without a valid token
    # The page's own form (a fresh token) logs out.
    token = CSRF_RE.search(page).group(1)
    assert client.post("/logg-ut", data={"csrf_token": token}).status_code == 303
    assert client.get("/").status_code in (302, 303)


def test_logout_asked_for_by_address_asks_first(client, kari, login_as):
    assert client.get("/logg-ut").headers["Location"].endswith("/logget-ut")
    login_as(kari)
    page = client.get("/logg-ut")
    assert page.status_code == 200 and "Du logges ut av Varde på denne enheten" in page.get_data(as_text=True)
    assert client.get("/").status_code == 200  # a GET logs nobody out


def test_a_forged_token_is_refused(client, kari, login_as):
    login_as(kari)
    response = client.post("/sprak", data={"lang": "en", "csrf_token": "IjEyMyI.forged.token"})
    assert response.status_code == 400
    assert db.session.get(User, kari.id).locale is None


def test_htmx_sends_the_token_in_a_header(client, kari, login_as):
    login_as(kari)
    html = client.get("/").get_data(as_text=True)
    token = re.search(r"hx-headers='\{\"X-CSRFToken\": \"([^\"]+)\"\}'", html).group(1)
    response = client.post("/sprak", data={"lang": "en"}, headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == "/"
    assert db.session.get(User, kari.id).locale == "en"


def test_an_htmx_request_without_token_gets_a_message_in_the_live_region(client, kari, login_as):
    login_as(kari)
    response = client.post("/sprak", data={"lang": "en"}, headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert response.headers["HX-Retarget"] == "#live"
    assert "<html" not in response.get_data(as_text=True)


# --- size limit --------------------------------------------------------------------------------


def test_an_oversized_body_is_refused_with_413_and_nothing_is_written(client):
    token = csrf_from(client)
    response = client.post(
        "/logg-inn", data={"csrf_token": token, "username": "x" * (2 * 1024 * 1024), "password": "y"}
    )
    assert response.status_code == 413
    assert "for stort" in response.get_data(as_text=True)
    assert_security_headers(response)
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_an_unexpected_error_shows_no_detail_and_keeps_the_headers(tmp_path, database_url, monkeypatch):
    from app.web import gate

    app = make_test_app(tmp_path, database_url)

    @app.route("/test-boom")
    def boom():
        raise RuntimeError("kaboom")

    monkeypatch.setattr(gate, "PUBLIC_ENDPOINTS", gate.PUBLIC_ENDPOINTS | {"boom"})
    response = app.test_client().get("/test-boom")
    assert response.status_code == 500
    html = response.get_data(as_text=True)
    assert "Noe gikk galt hos oss" in html and "kaboom" not in html
    assert_security_headers(response)
