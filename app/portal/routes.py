"""The pages behind the tab bar, the menu and settings. Domain issues fill the tabs with content."""

from __future__ import annotations

import re

from flask import Blueprint, Response, abort, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.access.services import audit
from app.auth import services as auth_services
from app.auth import sessions
from app.auth.models import Role
from app.db import db
from app.web import htmx
from app.web.numbers import db_int

bp = Blueprint("portal", __name__)
SESSION_ID = re.compile(r"[0-9a-f]{64}")


@bp.route("/")
def overview() -> Response:
    """What is new across every organisation. Staff see the way into their console instead."""
    context: dict = {"active_tab": "overview", "new_items": None, "unread": 0, "people": [], "next_appointments": []}
    if current_user.role is Role.PATIENT and current_user.person is not None:
        from app.access import policy
        from app.record import services as record_services

        patient = policy.current_patient(current_user)
        decision = policy.check(current_user, patient, category="overview")
        context["new_items"], context["unread"] = record_services.whats_new(decision, patient)
        # The next times, under the same decision (the overview is one read, one audit row).
        from app import clock
        from app.appointments import services as appointment_services

        context["next_appointments"] = appointment_services.upcoming(
            patient, policy.appointment_scope(decision), clock.utcnow(), limit=3
        )
        context["patient"] = patient
        context["people"] = policy.switchable_people(current_user)
    return htmx.render("portal/overview.html", **context)


@bp.route("/profil", methods=["POST"])
def switch_profile() -> Response:
    """The profile switcher: whose record the patient pages show (yours, or a child's)."""
    from app.access import policy

    person = policy.switch_to(current_user, request.form.get("person", type=db_int) or 0)
    if person is None:
        abort(404)
    db.session.commit()
    return htmx.redirect_to(url_for("portal.overview"))


@bp.route("/velg-journal")
def choose() -> Response:
    """After login, for someone who may see others' records: whose to see first."""
    from app.access import policy

    people = policy.switchable_people(current_user)
    if len(people) < 2:
        return htmx.redirect_to(url_for("portal.overview"))
    return htmx.render("portal/choose.html", people=people, active_tab="overview")


@bp.route("/meny")
def menu() -> Response:
    return htmx.render("portal/menu.html", active_tab="menu")


def _settings_context() -> dict:
    return {
        "active_tab": "menu",
        "sessions": sessions.sessions_of(current_user.id),
        "current_session_id": sessions.current_session_id(session),
        "recovery_left": auth_services.remaining_recovery_codes(current_user),
    }


@bp.route("/innstillinger")
def settings() -> Response:
    return htmx.render("portal/settings.html", **_settings_context())


@bp.route("/innstillinger/enheter/<session_id>/logg-ut", methods=["POST"])
def end_session(session_id: str) -> Response:
    """Log out one device. The row replaces itself for htmx; a plain form gets the page again."""
    if not SESSION_ID.fullmatch(session_id):
        abort(404)
    if session_id == sessions.current_session_id(session):
        abort(400)  # this device logs out with the ordinary log-out button
    if not sessions.revoke_session(current_user.id, session_id):
        abort(404)  # not one of yours, or already gone
    audit("session_revoked", actor_user_id=current_user.id, object_type="session")
    db.session.commit()
    if htmx.wants_fragment():
        return htmx.render("portal/settings.html", "portal/_session_ended.html", message=_("Enheten er logget ut."))
    return htmx.redirect_to(url_for("portal.settings"))


@bp.route("/innstillinger/enheter/logg-ut-andre", methods=["POST"])
def end_other_sessions() -> Response:
    count = sessions.revoke_sessions(current_user.id, except_token=session.token)
    audit("sessions_revoked", actor_user_id=current_user.id, object_type="session", object_id=count)
    db.session.commit()
    return htmx.redirect_to(url_for("portal.settings"))
