"""Server-side sessions: cookie attributes, rotation, logout, revocation, idle and absolute timeouts."""

from __future__ import annotations

import hashlib

from sqlalchemy import func, select

from app.auth.models import ServerSession
from app.db import db
from tests.conftest import csrf_from
from tests.factories import PASSWORD, totp_now


def _cookie(response) -> str:
    return next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("__Host-varde="))


def _login(client, user, username):
    client.post("/logg-inn", data={"csrf_token": csrf_from(client), "username": username, "password": PASSWORD})
    return client.post(
        "/logg-inn/kode", data={"csrf_token": csrf_from(client, "/logg-inn/kode"), "totp-code": totp_now(user)}
    )


def test_the_cookie_is_host_only_secure_httponly_and_lax(client):
    header = _cookie(client.get("/logg-inn"))
    attrs = [part.strip().lower() for part in header.split(";")]
    assert "secure" in attrs
    assert "httponly" in attrs
    assert "samesite=lax" in attrs
    assert "path=/" in attrs
    assert not any(a.startswith("domain") for a in attrs)
    assert not any(a.startswith(("max-age", "expires")) for a in attrs)


def test_the_database_holds_only_a_hash_of_the_cookie(client):
    token = _cookie(client.get("/logg-inn")).split(";")[0].split("=", 1)[1]
    ids = db.session.scalars(select(ServerSession.id)).all()
    assert ids == [hashlib.sha256(token.encode()).hexdigest()]


def test_login_gives_a_new_session_id(client, kari):
    before = _cookie(client.get("/logg-inn")).split(";")[0]
    response = _login(client, kari, "kari")
    after = _cookie(response).split(";")[0]
    assert before != after
    # The pre-login session is gone: a planted id is worth nothing.
    assert db.session.scalar(select(func.count()).select_from(ServerSession)) == 1


def test_logout_ends_the_session_and_a_replayed_cookie_is_refused(client, app, kari, login_as):
    token = login_as(kari)
    assert client.get("/").status_code == 200
    response = client.post("/logg-ut", data={"csrf_token": csrf_from(client, "/meny")})
    assert response.headers["Location"] == "/logget-ut"
    assert (
        db.session.scalar(select(func.count()).select_from(ServerSession).where(ServerSession.user_id == kari.id)) == 0
    )
    replay = app.test_client()
    replay.set_cookie("__Host-varde", token)
    assert replay.get("/").status_code == 303


def test_the_session_ends_after_30_idle_minutes(client, kari, login_as, frozen_clock):
    login_as(kari)
    frozen_clock.advance(minutes=29)
    assert client.get("/").status_code == 200
    frozen_clock.advance(minutes=29)  # active 29 minutes ago: still alive
    assert client.get("/").status_code == 200
    frozen_clock.advance(minutes=31)
    response = client.get("/")
    assert response.status_code == 303
    assert response.headers["Location"] == "/logg-inn?next=/&utlopt=1"
    assert "ikke hadde gjort noe på en stund" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_the_session_ends_after_12_hours_even_when_active(client, kari, login_as, frozen_clock):
    login_as(kari)
    for _ in range(24):
        frozen_clock.advance(minutes=29)
        assert client.get("/").status_code == 200
    frozen_clock.advance(minutes=29)  # 12 h 25 min after login
    assert client.get("/").status_code == 303


def test_an_htmx_request_with_an_expired_session_is_sent_to_login_and_back(client, kari, login_as, frozen_clock):
    login_as(kari)
    frozen_clock.advance(minutes=31)
    response = client.get(
        "/innstillinger",
        headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/journal?side=2"},
    )
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/logg-inn?next=/journal?side%3D2&utlopt=1"


def test_a_user_can_log_out_another_device(client, app, kari, login_as):
    login_as(kari)
    phone = app.test_client()
    login_as(kari, phone)
    page = client.get("/innstillinger").get_data(as_text=True)
    assert page.count('class="device"') == 2
    other_id = next(
        s.id for s in db.session.scalars(select(ServerSession)) if f"/innstillinger/enheter/{s.id}/" in page
    )
    response = client.post(
        f"/innstillinger/enheter/{other_id}/logg-ut",
        data={"csrf_token": csrf_from(client, "/innstillinger")},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert "Enheten er logget ut" in response.get_data(as_text=True)
    assert phone.get("/").status_code == 303  # the other device is out at once
    assert client.get("/").status_code == 200  # this one is not


def test_a_user_cannot_end_someone_elses_session(client, app, kari, per, login_as):
    login_as(kari)
    other = app.test_client()
    login_as(per, other)
    per_session = db.session.scalar(select(ServerSession.id).where(ServerSession.user_id == per.id))
    response = client.post(
        f"/innstillinger/enheter/{per_session}/logg-ut", data={"csrf_token": csrf_from(client, "/innstillinger")}
    )
    assert response.status_code == 404
    assert other.get("/").status_code == 200


def test_log_out_all_other_devices(client, app, kari, login_as):
    login_as(kari)
    devices = [app.test_client() for _ in range(3)]
    for device in devices:
        login_as(kari, device)
    client.post("/innstillinger/enheter/logg-ut-andre", data={"csrf_token": csrf_from(client, "/innstillinger")})
    assert all(device.get("/").status_code == 303 for device in devices)
    assert client.get("/").status_code == 200


def test_anonymous_visits_to_assets_create_no_sessions(client):
    for path in ("/manifest.webmanifest", "/sw.js", "/static/css/varde.css"):
        client.get(path).close()
    assert db.session.scalar(select(func.count()).select_from(ServerSession)) == 0


def test_expired_sessions_are_cleared_out_as_new_ones_start(client, app, kari, login_as, frozen_clock, monkeypatch):
    login_as(kari)
    frozen_clock.advance(minutes=31)
    monkeypatch.setitem(app.config, "SESSION_PRUNE_ONE_IN", 1)
    app.test_client().get("/logg-inn")  # a new visitor's session
    assert (
        db.session.scalar(select(func.count()).select_from(ServerSession).where(ServerSession.user_id == kari.id)) == 0
    )


def test_pages_without_a_form_start_no_session_for_visitors(client):
    for path in ("/logget-ut", "/frakoblet", "/finnes-ikke", "/healthz"):
        client.get(path)
    assert db.session.scalar(select(func.count()).select_from(ServerSession)) == 0


def test_a_malformed_device_id_is_not_found(client, kari, login_as):
    login_as(kari)
    token = csrf_from(client, "/innstillinger")
    for junk in ("x", "%00" * 64, "A" * 64):
        assert client.post(f"/innstillinger/enheter/{junk}/logg-ut", data={"csrf_token": token}).status_code == 404
