"""A young person's own login is gated by age (``policy.own_grant``): from the region's youth age
(12) with limited content, from 16 with everything; younger, the parents act for them. A refused
login is told why, after the right password only, and audited; nothing else changes."""

from __future__ import annotations

from sqlalchemy import func, select

from app.access.models import AuditEvent
from app.auth.models import ServerSession
from app.db import db
from tests import factories
from tests.factories import PASSWORD, totp_now


def _password_step(client, csrf, username, password=PASSWORD):
    return client.post("/logg-inn", data={"csrf_token": csrf(), "username": username, "password": password})


def _code_step(client, csrf, user):
    return client.post("/logg-inn/kode", data={"csrf_token": csrf("/logg-inn/kode"), "totp-code": totp_now(user)})


def _logged_in_sessions() -> int:
    return db.session.scalar(select(func.count()).select_from(ServerSession).where(ServerSession.user_id.is_not(None)))


def _actions(user) -> list[str]:
    return list(
        db.session.scalars(select(AuditEvent.action).where(AuditEvent.actor_user_id == user.id).order_by(AuditEvent.id))
    )


def test_an_11_year_old_with_an_account_is_refused_after_the_right_password(client, csrf):
    emma = factories.patient("Emma", "Nordmann", age=11, username="emma", with_totp=True)

    response = _password_step(client, csrf, "emma")

    assert response.status_code == 403
    html = response.get_data(as_text=True)
    assert "Du må være 12 år for å logge inn selv. Til da kan foreldrene dine se journalen din for deg." in html
    assert 'class="error-summary"' in html
    row = db.session.scalar(select(AuditEvent).where(AuditEvent.actor_user_id == emma.id))
    assert (row.action, row.outcome, row.subject_person_id, row.object_type) == (
        "login_refused_age",
        "denied",
        emma.person_id,
        "auth",
    )
    # Nothing else: no login half-way, no session for the account, no last login.
    assert client.get("/logg-inn/kode").headers["Location"] == "/logg-inn"
    code = client.post("/logg-inn/kode", data={"csrf_token": csrf(), "totp-code": totp_now(emma)})
    assert code.headers["Location"] == "/logg-inn"  # back to the start, not logged in
    assert _logged_in_sessions() == 0
    db.session.refresh(emma)
    assert emma.last_login_at is None
    assert _actions(emma) == ["login_refused_age"]


def test_a_wrong_password_says_nothing_of_age(client, csrf):
    emma = factories.patient("Emma", "Nordmann", age=11, username="emma", with_totp=True)

    response = _password_step(client, csrf, "emma", password="feil-passord")

    assert response.status_code == 401
    html = response.get_data(as_text=True)
    assert "brukernavnet eller passordet er feil" in html
    assert "år for å logge inn selv" not in html
    assert _actions(emma) == []
    assert db.session.scalar(select(AuditEvent.action)) == "login_failed"


def test_a_14_year_old_logs_in_with_limited_access(client, csrf, ingrid):
    assert _password_step(client, csrf, "ingrid").headers["Location"] == "/logg-inn/kode"
    response = _code_step(client, csrf, ingrid)
    assert response.status_code == 303
    assert client.get("/").status_code == 200
    assert _logged_in_sessions() == 1
    assert "login_refused_age" not in _actions(ingrid)
    assert client.get("/journal/notater").status_code == 404  # notes open at 16


def test_a_14_year_old_is_refused_where_the_region_has_no_youth_access(app, monkeypatch, client, csrf, ingrid):
    monkeypatch.setitem(app.config, "YOUTH_OWN_ACCESS_FROM_AGE", None)

    response = _password_step(client, csrf, "ingrid")

    assert response.status_code == 403
    assert "Du må være 16 år for å logge inn selv." in response.get_data(as_text=True)
    assert _actions(ingrid) == ["login_refused_age"]
    assert _logged_in_sessions() == 0


def test_a_13_year_old_waits_for_a_region_youth_age_of_14(app, monkeypatch, client, csrf):
    monkeypatch.setitem(app.config, "YOUTH_OWN_ACCESS_FROM_AGE", 14)
    factories.patient("Sondre", "Nordmann", age=13, username="sondre", with_totp=True)

    response = _password_step(client, csrf, "sondre")

    assert response.status_code == 403
    assert "Du må være 14 år for å logge inn selv." in response.get_data(as_text=True)


def test_a_16_year_old_logs_in(app, monkeypatch, client, csrf):
    monkeypatch.setitem(app.config, "YOUTH_OWN_ACCESS_FROM_AGE", None)
    sindre = factories.patient("Sindre", "Nordmann", age=16, username="sindre", with_totp=True)

    assert _password_step(client, csrf, "sindre").headers["Location"] == "/logg-inn/kode"
    assert _code_step(client, csrf, sindre).status_code == 303
    assert client.get("/").status_code == 200
    assert _actions(sindre)[0] == "login"


def test_a_demo_child_is_refused_too(app, client, csrf):
    app.config["DEMO_MODE"] = True  # reset by the suite after each test
    emma = factories.patient("Emma", "Nordmann", age=9, username="emma", with_totp=False)
    emma.is_demo = True
    db.session.commit()

    response = _password_step(client, csrf, "emma")

    assert response.status_code == 403
    assert _logged_in_sessions() == 0


def test_staff_accounts_are_not_gated(client, csrf, dr_lund):
    assert _password_step(client, csrf, "dr.lund").headers["Location"] == "/logg-inn/kode"
    assert _code_step(client, csrf, dr_lund).status_code == 303
    assert _actions(dr_lund)[0] == "login"
