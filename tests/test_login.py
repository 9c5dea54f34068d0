"""Logging in: password, then the second factor; enrolment; recovery codes; limits; redirects."""

from __future__ import annotations

import re

import pyotp
import pytest
from sqlalchemy import func, select

from app.access.models import AuditEvent
from app.auth.models import RecoveryCode, ServerSession, User
from app.db import db
from tests.conftest import CSRF_RE, csrf_from
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
    assert "allerede brukt. Vent til appen viser en ny kode" in replay.get_data(as_text=True)


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
    assert response.status_code == 200
    shown = response.get_data(as_text=True)
    codes = [c.split("</code>")[0] for c in shown.split("<li><code>")[1:]]
    assert len(codes) == 10
    assert client.get("/reservekoder").get_data(as_text=True).count("<li><code>") == 0  # only once
    # The codes exist nowhere in clear: not in any session row.
    stored = " ".join(str(row.data) for row in db.session.scalars(select(ServerSession)))
    assert not any(c in stored or c.replace("-", "") in stored for c in codes)
    assert db.session.get(User, nora.id).totp_enabled_at is not None
    assert client.get("/").status_code == 200  # logged in


def test_a_half_done_enrolment_never_passes_its_key_to_the_next_account(client, app, csrf, nora):
    from tests.factories import patient

    eva = patient("Eva", "Moen", age=33, username="eva", with_totp=False)
    _password_step(client, csrf, "nora")
    nora_page = client.get("/logg-inn/ny-kode").get_data(as_text=True)
    _password_step(client, csrf, "eva")  # Nora gives up; Eva logs in on the same phone
    eva_page = client.get("/logg-inn/ny-kode").get_data(as_text=True)
    key = lambda html: html.split('class="secret">')[1].split("<")[0]  # noqa: E731
    assert key(nora_page) != key(eva_page)
    assert eva.id


BATCH_RE = re.compile(r'name="batch" value="([^"]+)"')


def test_renewing_recovery_codes_shows_new_ones_once_and_the_old_stop_working(client, kari, login_as):
    from app.auth.services import new_recovery_codes

    old = new_recovery_codes(kari)
    db.session.commit()
    login_as(kari)
    # Asked first: the page says the old ones stop working, and making them is a button there.
    ask = client.get("/reservekoder").get_data(as_text=True)
    assert "slutter de gamle å virke med en gang" in ask
    form = {"csrf_token": CSRF_RE.search(ask).group(1), "batch": BATCH_RE.search(ask).group(1)}
    response = client.post("/reservekoder", data=form)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.count("<li><code>") == 10
    assert old[0] not in html
    hashes = db.session.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == kari.id)).all()
    assert len(hashes) == 10
    # Reloading the answer sends the form again: no new codes, and it says so.
    again = client.post("/reservekoder", data=form)
    assert again.status_code == 409 and "det ble ikke laget nye" in again.get_data(as_text=True)
    assert sorted(db.session.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == kari.id))) == sorted(
        hashes
    )


def test_the_csrf_token_changes_at_login(client, csrf, kari):
    before = csrf()
    _password_step(client, csrf, "kari")
    client.post("/logg-inn/kode", data={"csrf_token": csrf("/logg-inn/kode"), "totp-code": totp_now(kari)})
    after = csrf_from(client, "/innstillinger")
    assert before.split(".")[0] != after.split(".")[0]
    # The old token no longer works for a write.
    assert client.post("/sprak", data={"lang": "en", "csrf_token": before}).status_code == 400


def test_two_logins_racing_with_one_code_cannot_both_win(app, kari):
    from app.auth.services import claim_totp_step

    assert claim_totp_step(kari, 1000) is True
    assert claim_totp_step(kari, 1000) is False  # the conditional UPDATE lets one through
    assert claim_totp_step(kari, 999) is False
    assert claim_totp_step(kari, 1001) is True


@pytest.mark.parametrize("target", ["/\r\nSet-Cookie:x=y", "/\n", "/ok\x7f"])
def test_control_characters_in_next_are_dropped_not_a_500(client, csrf, kari, target):
    _password_step(client, csrf, "kari", next_url=target)
    response = client.post("/logg-inn/kode", data={"csrf_token": csrf("/logg-inn/kode"), "totp-code": totp_now(kari)})
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_a_nul_in_the_username_is_a_wrong_login_not_a_500(client, csrf, kari):
    response = _password_step(client, csrf, "kari\x00")
    assert response.status_code == 401


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


def test_failed_logins_are_limited_per_account_and_address(client, app, csrf, kari):
    for _ in range(5):
        assert _password_step(client, csrf, "kari", password="feil").status_code == 401
    other = app.test_client()  # another browser at the same address, right password: still limited
    response = other.post("/logg-inn", data={"csrf_token": csrf_from(other), "username": "kari", "password": PASSWORD})
    assert response.status_code == 429
    assert "For mange forsøk" in response.get_data(as_text=True)


def test_a_guesser_elsewhere_cannot_lock_the_patient_out(client, app, csrf, kari):
    for _ in range(6):
        _password_step(client, csrf, "kari", password="feil")  # the attacker's address
    home = app.test_client()
    response = home.post(
        "/logg-inn",
        data={"csrf_token": csrf_from(home), "username": "kari", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.9.8.7"},
    )
    assert response.status_code == 303


def test_guessing_one_account_from_many_addresses_is_limited_too(app, kari):
    for i in range(20):
        c = app.test_client()
        env = {"REMOTE_ADDR": f"10.0.0.{i}"}
        token = csrf_from(c)
        c.post("/logg-inn", data={"csrf_token": token, "username": "kari", "password": "feil"}, environ_base=env)
    c = app.test_client()
    token = csrf_from(c)
    response = c.post(
        "/logg-inn",
        data={"csrf_token": token, "username": "kari", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.0.1.1"},
    )
    assert response.status_code == 429


def test_failed_logins_are_limited_per_address(client, csrf, kari, per):
    for i in range(50):
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
    frozen_clock.advance(minutes=29)
    assert client.get("/logg-inn/kode").status_code == 200  # time to install an app
    frozen_clock.advance(minutes=2)
    response = client.get("/logg-inn/kode")
    assert response.headers["Location"] == "/logg-inn"


def test_the_language_asked_for_at_the_first_login_is_remembered_for_pushes(client, csrf, kari):
    """Pushes are written in the account's language; an account that never chose one gets the
    language its browser asked for at login (what its pages and service worker show)."""
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en-GB,en;q=0.9"
    _password_step(client, csrf, "kari")
    client.post("/logg-inn/kode", data={"csrf_token": csrf("/logg-inn/kode"), "totp-code": totp_now(kari)})
    db.session.refresh(kari)
    assert kari.locale == "en"


def test_empty_or_malformed_codes_are_not_counted_as_guesses(client, csrf, kari):
    _password_step(client, csrf, "kari")
    for bad in ("", "abc", "12345", "1234567", "12 34 5x"):
        response = client.post("/logg-inn/kode", data={"csrf_token": csrf("/logg-inn/kode"), "totp-code": bad})
        assert response.status_code == 400, bad
    # Still every real try left: the right code logs in.
    response = client.post("/logg-inn/kode", data={"csrf_token": csrf("/logg-inn/kode"), "totp-code": totp_now(kari)})
    assert response.status_code == 303
