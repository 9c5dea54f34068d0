"""The poll's fast path: a poll with nothing new is answered before Flask, but only in the two
plainest cases the access policy grants; everything else goes through Flask and the policy."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.access.models import AuditEvent
from app.auth.models import Role
from app.db import db
from tests import factories
from tests.conftest import csrf_from


@pytest.fixture
def gp(gp, per):
    """Kari's GP office (tests/conftest.py), Per's too."""
    factories.gp_of(per.person, gp)
    return gp


@pytest.fixture
def through_flask(app):
    """Counts the polls that reached the Flask views (the fast path answered the rest)."""
    calls = []
    originals = {name: app.view_functions[name] for name in ("messages.poll", "messages_staff.poll")}

    def counting(name):  # type: ignore[no-untyped-def]
        def view(**kwargs):  # type: ignore[no-untyped-def]
            calls.append(name)
            return originals[name](**kwargs)

        return view

    for name in originals:
        app.view_functions[name] = counting(name)
    yield calls
    app.view_functions.update(originals)


def _audits() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def test_own_conversation_with_nothing_new_never_reaches_flask(client, login_as, kari, gp, through_flask):
    c = factories.conversation(kari, kari.person, gp)
    login_as(kari)
    before = _audits()
    response = client.get(f"/meldinger/{c.id}/nye?rev={c.revision}", headers={"HX-Request": "true"})
    assert response.status_code == 204 and response.data == b""
    assert through_flask == []
    assert _audits() == before
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    # Something new: Flask answers with the thread (a read, audited).
    changed = client.get(f"/meldinger/{c.id}/nye?rev={c.revision - 1}", headers={"HX-Request": "true"})
    assert changed.status_code == 200 and through_flask == ["messages.poll"]
    assert _audits() == before + 1


def test_staff_of_the_unit_are_answered_fast_and_others_go_through_the_policy(
    client, app, login_as, kari, gp, through_flask
):
    c = factories.conversation(kari, kari.person, gp)
    aune = factories.staff("fastlege.aune", "Dr. Siri Aune", Role.CLINICIAN)
    factories.member_of(aune, gp)
    login_as(aune)
    assert client.get(f"/ansatt/meldinger/{c.id}/nye?rev={c.revision}").status_code == 204
    assert through_flask == []
    # The staff page's poll is for staff; the patient page's poll is not answered fast for them.
    assert client.get(f"/meldinger/{c.id}/nye?rev={c.revision}").status_code == 404  # (no patient: not a poll)
    assert through_flask == ["messages.poll"]
    other = factories.staff("dr.byasen", "Dr. Ivar Moe", Role.CLINICIAN)
    factories.member_of(other, factories.message_unit("Byåsen legesenter"))
    stranger = app.test_client()
    login_as(other, stranger)
    stopped = stranger.get(f"/ansatt/meldinger/{c.id}/nye?rev={c.revision}")
    assert stopped.status_code == 286 and stopped.data == b""  # htmx stops polling
    denied = db.session.scalar(
        select(func.count()).where(AuditEvent.actor_user_id == other.id, AuditEvent.outcome == "denied")
    )
    assert denied == 1


def test_someone_elses_conversation_goes_through_flask_and_is_refused(client, login_as, kari, per, gp, through_flask):
    c = factories.conversation(per, per.person, gp)
    login_as(kari)
    assert client.get(f"/meldinger/{c.id}/nye?rev={c.revision}").status_code == 286
    assert through_flask == ["messages.poll"]


def test_a_parent_acting_for_a_child_goes_the_whole_way(client, login_as, kari, ola, gp, through_flask):
    factories.parent_of(kari, ola)
    factories.gp_of(ola, gp)
    c = factories.conversation(kari, ola, gp)
    login_as(kari)
    token = csrf_from(client, "/")
    client.post("/profil", data={"csrf_token": token, "person": ola.id})
    assert client.get(f"/meldinger/{c.id}/nye?rev={c.revision}").status_code == 204
    assert through_flask == ["messages.poll"]


def test_an_expired_or_ended_session_is_sent_to_login(client, login_as, kari, gp, frozen_clock, through_flask):
    c = factories.conversation(kari, kari.person, gp)
    login_as(kari)
    frozen_clock.advance(minutes=31)
    response = client.get(f"/meldinger/{c.id}/nye?rev={c.revision}")
    assert response.status_code in (302, 303, 401) or response.headers.get("HX-Redirect")
    assert response.status_code != 204
    login_as(kari)
    client.post("/logg-ut", data={"csrf_token": csrf_from(client, "/")})
    assert client.get(f"/meldinger/{c.id}/nye?rev={c.revision}").status_code != 204


@pytest.mark.parametrize("query", ["", "rev=", "rev=abc", "rev=-1", "rev=x&rev=0"])
def test_a_poll_without_a_plain_revision_goes_to_flask(client, login_as, kari, gp, through_flask, query):
    c = factories.conversation(kari, kari.person, gp)
    login_as(kari)
    client.get(f"/meldinger/{c.id}/nye?{query}")
    assert through_flask == ["messages.poll"]
