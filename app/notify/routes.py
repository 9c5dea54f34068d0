"""The notification centre (/varsler), opening a notification, devices and preferences."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, jsonify, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from app import clock
from app.access import policy
from app.access.services import audit
from app.auth.sessions import device_label
from app.db import db
from app.notify import services
from app.notify.forms import PreferencesForm
from app.people.models import Relation
from app.web import htmx
from app.web.numbers import db_int

bp = Blueprint("notify", __name__, url_prefix="/varsler")


def _list_context(before: int | None = None) -> dict:
    listed, next_before = services.notifications(current_user.id, current_user.person_id, before)
    return {"listed": listed, "next_before": next_before, "active_tab": "overview"}


@bp.route("")
def centre() -> Response:
    """Everything the account was notified of, newest first: the same list with or without push."""
    before = request.args.get("før", type=db_int)
    if before is not None and htmx.wants_fragment():
        return htmx.render("notify/centre.html", "notify/_list.html", **_list_context(before))
    return htmx.render("notify/centre.html", **_list_context(before))


@bp.route("/les-alle", methods=["POST"])
def read_all() -> Response:
    services.mark_all_read(current_user.id)
    db.session.commit()
    return htmx.redirect_to(url_for("notify.centre"))


@bp.route("/<token>/lest", methods=["POST"])
def read_one(token: str) -> Response:
    notification = services.by_token(current_user.id, token)
    if notification is None:
        abort(404)
    services.mark_read(current_user.id, notification.id)
    db.session.commit()
    return htmx.redirect_to(url_for("notify.centre"))


@bp.route("/<token>")
def open_(token: str) -> Response:
    """Where a notification tap lands (after login, if the session had ended): mark it read,
    show the right person's record (a parent's child), and go to the item."""
    notification = services.by_token(current_user.id, token)
    if notification is None:
        abort(404)
    services.mark_read(current_user.id, notification.id)
    # Show the record it is about: a child's, or one's own (also when looking at a child's now).
    allowed = policy.may_still_hear(current_user, notification.subject_person_id, notification.kind)
    person = policy.switch_to(current_user, notification.subject_person_id) if allowed else None
    if person is None:
        db.session.commit()
        # No longer allowed (the child turned 12, the relation ended): say so, and why, show nothing.
        return htmx.render("notify/gone.html", status=403, ended=_ended_relation(notification.subject_person_id))
    db.session.commit()
    return htmx.redirect_to(notification.url or url_for("notify.centre"))


def _ended_relation(subject_person_id: int | None) -> str | None:
    """What the viewer was to the person the notification is about (the newest relation between
    them): its kind says why the notice can no longer be opened."""
    if subject_person_id is None or current_user.person_id is None:
        return None
    kind = db.session.scalar(
        select(Relation.kind)
        .where(Relation.holder_id == current_user.person_id, Relation.subject_id == subject_person_id)
        .order_by(Relation.id.desc())
        .limit(1)
    )
    return kind.value if kind is not None else None


# -- Devices and preferences -----------------------------------------------------------------


def _settings_context(form: PreferencesForm | None = None) -> dict:
    prefs = services.settings_of(current_user.id)
    if form is None:
        form = PreferencesForm(obj=prefs)
    return {
        "active_tab": "menu",
        "form": form,
        "devices": services.devices(current_user.id),
        "vapid_public_key": current_app.config["VAPID_PUBLIC_KEY"],
    }


@bp.route("/innstillinger", methods=["GET", "POST"])
def settings() -> Response:
    if request.method == "POST":
        form = PreferencesForm()
        if not form.validate():
            return htmx.render("notify/settings.html", status=400, **_settings_context(form))
        services.save_settings(current_user.id, {name: getattr(form, name).data for name in PreferencesForm.FIELDS})
        db.session.commit()
        return htmx.redirect_to(url_for("notify.settings", lagret=1))
    device = {"paa": _("Varsler er slått på for denne enheten."), "av": _("Varsler er slått av for denne enheten.")}
    return htmx.render(
        "notify/settings.html",
        saved=request.args.get("lagret") == "1",
        device_message=device.get(request.args.get("enhet", "")),
        **_settings_context(),
    )


@bp.route("/enheter", methods=["POST"])
def add_device() -> Response:
    """This device's PushSubscription, posted by push.js after the user said yes (JSON, with the
    CSRF token in the X-CSRFToken header). With ``"refresh": true`` (varde.js, once a day) it only
    tells Varde the device still holds a subscription of this account's; never adds or takes one."""
    data = request.get_json(silent=True)
    if isinstance(data, dict) and data.get("refresh") is True:
        known = services.refresh(current_user.id, data)
        db.session.commit()
        return jsonify({"known": known})
    ua = request.headers.get("User-Agent", "")
    label = device_label(ua) or _("Ukjent nettleser")
    try:
        sub, created = services.subscribe(current_user.id, data, label)
    except services.SubscriptionError as exc:
        return jsonify({"error": str(exc)}), 400
    if created:
        audit("push_subscribed", actor_user_id=current_user.id, object_type="push_subscription", object_id=sub.id)
    db.session.commit()
    return jsonify({"id": sub.id, "label": sub.label, "created": created}), 201 if created else 200


@bp.route("/enheter/<int:subscription_id>/fjern", methods=["POST"])
def remove_device(subscription_id: int) -> Response:
    if not services.remove_device(current_user.id, subscription_id=subscription_id):
        abort(404)
    audit(
        "push_unsubscribed", actor_user_id=current_user.id, object_type="push_subscription", object_id=subscription_id
    )
    db.session.commit()
    if htmx.wants_fragment():
        return htmx.render(
            "notify/settings.html", "notify/_device_removed.html", message=_("Enheten får ikke lenger varsler.")
        )
    return htmx.redirect_to(url_for("notify.settings"))


@bp.route("/enheter/denne/fjern", methods=["POST"])
def remove_this_device() -> Response:
    """varde-push.js, when the user turns push off on this device: forget its endpoint."""
    data = request.get_json(silent=True) or {}
    endpoint = data.get("endpoint") if isinstance(data, dict) else None
    removed = isinstance(endpoint, str) and services.remove_device(current_user.id, endpoint=endpoint)
    if removed:
        audit("push_unsubscribed", actor_user_id=current_user.id, object_type="push_subscription")
    db.session.commit()
    return jsonify({"removed": bool(removed), "at": clock.utcnow().isoformat()})
