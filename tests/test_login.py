"""Logging in: password, then the second factor; enrolment; recovery codes; limits; redirects."""

from __future__ import annotations

import pyotp
import pytest
from sqlalchemy import func, select

from app.access.models import AuditEvent
from app.auth.models import RecoveryCode, ServerSession, User
from app.db import db
from tests.conftest import csrf_from
from tests.factories import PASSWORD, totp_now


def _password_step(client, csrf, username, password=PASSWORD, next_url=None):
    data = {"csrf_token": csrf(), "username": username, "password": password}
    if next_url:
        data["next"] = next_url
    return client.post("/logg-inn", data=data)


def _sessions_with_user():
    return db.session.scalar(select(func.count()).select_from(ServerSession).where(ServerSession.user_id.is_not(None)))


def test_it_logs_in_with_password_and_code(client, csrf, kari):
    response = _password_step(client, csrf, "kari")
    assert response.status_code == 303
    assert response.headers["Location"] == "/logg-inn/kode"
    assert _sessions_with_user() == 0  # the password alone logs no one in

    response = client.post("/logg-inn/kode", data={"csrf_token": csrf("/logg-inn/kode"), "totp-code": totp_now(kari)})
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert "Hei, Kari" in page.get_data(as_text=True)
    assert db.session.scalar(select(AuditEvent.action).where(AuditEvent.actor_user_id == kari.id)) == "login"


def test_it_returns_to_the_page_first_asked_for(client, csrf, kari):
    first = client.get("/innstillinger?fane=enheter")
    assert first.status_code == 303
    assert first.headers["Location"] == "/logg-inn?next=/innstillinger?fane%3Denheter"
    _password_step(client, csrf, "kari", next_url="/innstillinger?fane=enheter")
    response = client.post("/logg-inn/kode", data={"csrf_token": csrf("/logg-inn/kode"), "totp-code": totp_now(kari)})
    assert response.headers["Location"] == "/innstillinger?fane=enheter"


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"]
)
def test_it_never_redirects_off_site_after_login(client, csrf, kari, target):
    _password_step(client, csrf, "kari", next_url=target)
    response = client.post("/logg-inn/kode", data={"csrf_token": csrf("/logg-inn/kode"), "totp-code": totp_now(kari)})
    assert response.headers["Location"] == "/"


def test_a_wrong_password_gets_a_clear_message_and_logs_no_one_in(client, csrf, kari):
    response = _password_step(client, csrf, "kari", password="feil-passord")
    assert response.status_code == 401
    html = response.get_data(as_text=True)
    assert "brukernavnet eller passordet er feil" in html
    assert "<title>Feil: Logg inn" in html
    assert 'class="error-summary"' in html
    assert client.get("/logg-inn/kode").headers["Location"] == "/logg-inn"
    assert _sessions_with_user() == 0


def test_an_unknown_account_gets_the_same_message_as_a_wrong_password(client, csrf):
    response = _password_step(client, csrf, "ingen-slik")
    assert response.status_code == 401
    assert "brukernavnet eller passordet er feil" in response.get_data(as_text=True)


def test_a_malformed_national_id_says_what_is_wrong_without_checking_a_password(client, csrf, kari):
    response = _password_step(client, csrf, "0201612600")
    assert response.status_code == 400
    assert "Fødselsnummeret må ha 11 siffer" in response.get_data(as_text=True)
    response = _password_step(client, csrf, "02016126008")
    assert "Fødselsnummeret er ikke gyldig" in response.get_data(as_text=True)
    response = _password_step(client, csrf, "٠٢٠١٦١٢٦٠٠٧")
    assert "bare inneholde sifrene 0–9" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 0  # nothing written


def test_patients_log_in_with_their_national_id(client, csrf, kari):
    response = _password_step(client, csrf, kari.person.national_id[:6] + " " + kari.person.national_id[6:])
    assert response.headers["Location"] == "/logg-inn/kode"


def test_a_wrong_code_is_refused_with_a_message(client, csrf, kari):
    _password_step(client, csrf, "kari")
    response = client.post("/logg-inn/kode", data={"csrf_token": csrf("/logg-inn/kode"), "totp-code": "000000"})
    assert response.status_code == 401
    assert "Koden er feil eller utløpt" in response.get_data(as_text=True)
    assert _sessions_with_user() == 0


def test_a_code_cannot_be_used_twice(client, app, csrf, kari):
    code = totp_now(kari)
    _password_step(client, csrf, "kari")
    assert (
        client.post("/logg-inn/kode", data={"csrf_token": csrf("/logg-inn/kode"), "totp-code": code}).status_code == 303
    )
    other = app.test_client()
    _password_step(other, lambda p="/logg-inn": csrf_from(other, p), "kari")
    replay = other.post("/logg-inn/kode", data={"csrf_token": csrf_from(other, "/logg-inn/kode"), "totp-code": code})
    assert replay.status_code == 401


def test_a_recovery_code_works_once(client, app, csrf, kari):
    from app.auth.services import new_recovery_codes

    codes = new_recovery_codes(kari)
    db.session.commit()
    _password_step(client, csrf, "kari")
    response = client.post(
        "/logg-inn/kode?reserve=1", data={"csrf_token": csrf("/logg-inn/kode"), "rc-recovery_code": codes[0].upper()}
    )
    assert response.status_code == 303
    assert (
        db.session.scalar(select(func.count()).select_from(RecoveryCode).where(RecoveryCode.used_at.is_not(None))) == 1
    )

    other = app.test_client()
    other.post("/logg-inn", data={"csrf_token": csrf_from(other), "username": "kari", "password": PASSWORD})
    again = other.post(
        "/logg-inn/kode?reserve=1",
        data={"csrf_token": csrf_from(other, "/logg-inn/kode"), "rc-recovery_code": codes[0]},
    )
    assert again.status_code == 401
    assert "brukt før" in again.get_data(as_text=True)


def test_first_login_enrols_an_authenticator_app_and_shows_recovery_codes_once(client, csrf, nora):
    response = _password_step(client, csrf, "nora")
    assert response.headers["Location"] == "/logg-inn/ny-kode"
    page = client.get("/logg-inn/ny-kode")
    html = page.get_data(as_text=True)
    assert "<svg" in html  # the QR code
    secret = html.split('class="secret">')[1].split("<")[0].replace(" ", "")
    wrong = client.post("/logg-inn/ny-kode", data={"csrf_token": csrf("/logg-inn/ny-kode"), "code": "123456"})
    assert wrong.status_code == 401
    assert db.session.get(User, nora.id).totp_enabled_at is None

    code = pyotp.TOTP(secret).now()
    response = client.post("/logg-inn/ny-kode", data={"csrf_token": csrf("/logg-inn/ny-kode"), "code": code})
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/reservekoder")
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    assert shown.count("<li><code>") == 10
    assert client.get("/reservekoder").get_data(as_text=True).count("<li><code>") == 0  # only once
    user = db.session.get(User, nora.id)
    db.session.refresh(user)
    assert user.totp_enabled_at is not None


def test_demo_accounts_skip_the_second_factor_only_in_demo_mode(client, app, csrf, kari):
    kari.is_demo = True
    db.session.commit()
    assert _password_step(client, csrf, "kari").headers["Location"] == "/logg-inn/kode"
    app.config["DEMO_MODE"] = True
    fresh = app.test_client()
    response = fresh.post("/logg-inn", data={"csrf_token": csrf_from(fresh), "username": "kari", "password": PASSWORD})
    assert response.headers["Location"] == "/"
    assert "Hei, Kari" in fresh.get("/").get_data(as_text=True)


def test_ordinary_accounts_need_the_second_factor_even_in_demo_mode(client, app, csrf, per):
    app.config["DEMO_MODE"] = True
    assert _password_step(client, csrf, "per").headers["Location"] == "/logg-inn/kode"


def test_the_login_page_says_when_demo_logins_skip_the_code(client, app):
    assert "Demomodus" not in client.get("/logg-inn").get_data(as_text=True)
    app.config["DEMO_MODE"] = True
    assert "Demobrukere logges inn uten engangskode" in client.get("/logg-inn").get_data(as_text=True)


def test_failed_logins_are_limited_per_account(client, app, csrf, kari):
    for _ in range(5):
        assert _password_step(client, csrf, "kari", password="feil").status_code == 401
    other = app.test_client()  # another browser, same account: still limited
    response = other.post(
        "/logg-inn",
        data={"csrf_token": csrf_from(other), "username": "kari", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )
    assert response.status_code == 429
    assert "For mange forsøk" in response.get_data(as_text=True)


def test_failed_logins_are_limited_per_address(client, csrf, kari, per):
    for i in range(30):
        assert _password_step(client, csrf, f"ukjent{i}", password="feil").status_code == 401
    assert _password_step(client, csrf, "per").status_code == 429


def test_successful_logins_do_not_count_towards_the_limit(client, app, csrf, kari):
    for _ in range(7):
        c = app.test_client()
        assert (
            c.post("/logg-inn", data={"csrf_token": csrf_from(c), "username": "kari", "password": PASSWORD}).status_code
            == 303
        )


def test_wrong_codes_are_limited_too(client, csrf, kari):
    _password_step(client, csrf, "kari")
    for _ in range(5):
        client.post("/logg-inn/kode", data={"csrf_token": csrf("/logg-inn/kode"), "totp-code": "000000"})
    response = client.post("/logg-inn/kode", data={"csrf_token": csrf("/logg-inn/kode"), "totp-code": totp_now(kari)})
    assert response.status_code == 429


def test_a_pending_login_runs_out(client, csrf, kari, frozen_clock):
    _password_step(client, csrf, "kari")
    frozen_clock.advance(minutes=11)
    response = client.get("/logg-inn/kode")
    assert response.headers["Location"] == "/logg-inn"
