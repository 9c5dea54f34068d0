"""The staff inbox: a care unit's conversations (new / mine / waiting for the patient / closed),
one conversation with its answer form, assigning, templates and closing.

Clinicians and clerks see the conversations of the units they work in and no others
(``policy.load_conversation`` with no patient: the unit decides). Each inbox page writes an audit
row per patient listed; opening a conversation or a file is a read like any other.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.exceptions import NotFound
from wtforms.fields.choices import SelectChoice

from app import clock
from app.access import policy
from app.access.services import audit
from app.auth.models import Role, User
from app.db import db, keyset_position, keyset_token
from app.messages import services
from app.messages.forms import AssignForm, InboxSettingsForm, StaffReplyForm, TemplateForm
from app.messages.models import Conversation, MessageInbox, MessageTemplate
from app.messages.routes import STOP_POLLING, send, send_attachment
from app.people.models import CareUnit
from app.refusal import Refused
from app.staff.services import chosen_unit, my_units
from app.web import htmx
from app.web.gate import only_for
from app.web.numbers import db_int
from app.web.uploads import takes_files

bp = Blueprint("messages_staff", __name__, url_prefix="/ansatt/meldinger")
PAGE = 20


bp.before_request(only_for(Role.CLINICIAN, Role.CLERK))


@bp.context_processor
def helpers() -> dict:
    from app import clock
    from app.messages.routes import helpers as patient_helpers

    return {
        **patient_helpers(),
        "conversation_endpoint": "messages_staff.conversation",
        "poll_endpoint": "messages_staff.poll",
        "download_endpoint": "messages_staff.download",
        "now": clock.utcnow,
    }


def _units() -> list[CareUnit]:
    return my_units(current_user)


def _unit(units: list[CareUnit]) -> CareUnit:
    return chosen_unit(units)


@bp.route("")
def inbox() -> Response:
    units = _units()
    if not units:
        return htmx.render("messages/staff/no_units.html", active_tab="messages")
    unit = _unit(units)
    view = request.args.get("visning", "ny")
    if view not in services.VIEWS:
        view = "ny"
    found = services.inbox(unit.id, view, current_user, after=keyset_position(request.args.get("etter")), limit=PAGE)
    more = len(found) > PAGE
    found = found[:PAGE]
    # One audit row per patient listed, committed with the response (a commit here would make
    # the page load every row again).
    policy.audit_unit_list(
        current_user, (c.person_id for c in found), unit.organisation_id, "list_inbox", object_type="conversations"
    )
    next_url = None
    if more:
        last = found[-1]
        next_url = url_for(
            "messages_staff.inbox", enhet=unit.id, visning=view, etter=keyset_token(last.last_message_at, last.id)
        )
    return htmx.render(
        "messages/staff/inbox.html",
        "messages/staff/_rows.html",
        active_tab="messages",
        units=units,
        unit=unit,
        view=view,
        conversations=found,
        counts=services.inbox_counts(unit.id, current_user),
        inbox_settings=db.session.get(MessageInbox, unit.id),
        next_url=next_url,
    )


def _context(conversation: Conversation, form: StaffReplyForm | None = None, error: str | None = None) -> dict:
    unsent = form.body.data if form is not None and conversation.is_closed else None
    form = form or StaffReplyForm(formdata=None)
    if not form.body.data:
        saved = services.draft(current_user, conversation.person, conversation.id)
        form.body.data = saved.body if saved is not None else ""
        template_id = request.args.get("mal", type=db_int)
        template = db.session.get(MessageTemplate, template_id) if template_id else None
        if template is not None and template.care_unit_id == conversation.care_unit_id:
            # A template adds to what was already written (kept as a draft as one types).
            form.body.data = "\n\n".join(part for part in (form.body.data.strip(), template.body) if part)
    assign = AssignForm(formdata=None)
    assign.to.choices = [SelectChoice("", _("Ingen (tilbake til Nye)"))] + [
        SelectChoice(str(u.id), u.display_name + (" " + _("(meg)") if u.id == current_user.id else ""))
        for u in services.colleagues(conversation.care_unit_id)
    ]
    assign.to.data = str(conversation.assigned_to_id or "")
    return {
        **_thread_context(conversation),
        "active_tab": "messages",
        "form": None if conversation.is_closed else form,
        "assign_form": assign,
        "templates": services.templates_for(conversation.care_unit_id),
        "error": error,
        "notice": request.args.get("ok"),
        "unsent": unsent,
    }


def _thread_context(conversation: Conversation) -> dict:
    """What the thread needs (all a poll renders): not the page's forms, colleagues or templates."""
    return {
        "conversation": conversation,
        "patient": conversation.person,
        "messages": services.with_messages(conversation),
        "inbox": db.session.get(MessageInbox, conversation.care_unit_id),
        "staff_view": True,
    }


@bp.route("/<int:conversation_id>")
def conversation(conversation_id: int) -> Response:
    conversation, _decision = policy.load_conversation(current_user, None, conversation_id, "read")
    services.seen_by_team(conversation)
    return htmx.render("messages/staff/conversation.html", **_context(conversation))


@bp.route("/<int:conversation_id>/svar", methods=["POST"])
@takes_files
def reply(conversation_id: int) -> Response:
    conversation, _decision = policy.load_conversation(current_user, None, conversation_id, "reply")
    form = StaffReplyForm()
    if "utkast" in request.form:
        services.save_draft(current_user, conversation.person, conversation.id, body=form.body.data)
        db.session.commit()
        return htmx.redirect_to(url_for("messages_staff.conversation", conversation_id=conversation.id, ok="utkast"))
    if not form.validate_on_submit():
        return htmx.render("messages/staff/conversation.html", status=400, **_context(conversation, form))
    sent = send(
        lambda stored: services.reply_as_staff(
            current_user, conversation, form.body.data, form.uploads(), form.close.data, stored, seen=form.seen.data
        ),
        limited=False,
    )
    if isinstance(sent, Refused):
        conversation, _decision = policy.load_conversation(current_user, None, conversation_id, "read")
        services.seen_by_team(conversation)  # the page now shows what the patient added
        return htmx.render("messages/staff/conversation.html", status=409, **_context(conversation, form, sent.message))
    ok = "avsluttet" if conversation.is_closed else "besvart"
    return htmx.redirect_to(url_for("messages_staff.conversation", conversation_id=conversation.id, ok=ok))


@bp.route("/<int:conversation_id>/utkast", methods=["POST"])
def save_draft(conversation_id: int) -> Response:
    """Autosave of the answer being written (so a template or a closed tab loses nothing)."""
    conversation, _decision = policy.load_conversation(current_user, None, conversation_id, "draft", audited=False)
    if services.just_sent(current_user, conversation.person, conversation.id, request.form.get("body")):
        return Response(status=204)
    services.save_draft(current_user, conversation.person, conversation.id, body=request.form.get("body"))
    db.session.commit()
    return htmx.render("messages/_draft_saved.html", "messages/_draft_saved.html", saved_at=clock.utcnow())


@bp.route("/<int:conversation_id>/tildel", methods=["POST"])
def assign(conversation_id: int) -> Response:
    conversation, _decision = policy.load_conversation(current_user, None, conversation_id, "assign")
    form = AssignForm()
    team = {str(u.id): u for u in services.colleagues(conversation.care_unit_id)}
    form.to.choices = [SelectChoice("", "")] + [SelectChoice(key, u.display_name) for key, u in team.items()]
    if request.form.get("meg"):
        form.to.data = str(current_user.id)
    elif not form.validate_on_submit():
        abort(400)
    chosen: User | None = team.get(form.to.data or "")
    if form.to.data and chosen is None:
        abort(400)
    services.assign(conversation, chosen)
    db.session.commit()
    notice = "tildelt" if chosen is not None else "ledig"
    return htmx.redirect_to(url_for("messages_staff.conversation", conversation_id=conversation.id, ok=notice))


@bp.route("/<int:conversation_id>/avslutt", methods=["POST"])
def close(conversation_id: int) -> Response:
    conversation, _decision = policy.load_conversation(current_user, None, conversation_id, "close")
    try:
        services.close(conversation, current_user, seen=request.form.get("seen", type=db_int))
    except Refused as refused:
        db.session.rollback()
        conversation, _decision = policy.load_conversation(current_user, None, conversation_id, "read")
        services.seen_by_team(conversation)
        return htmx.render(
            "messages/staff/conversation.html", status=409, **_context(conversation, None, refused.message)
        )
    db.session.commit()
    return htmx.redirect_to(url_for("messages_staff.conversation", conversation_id=conversation.id, ok="avsluttet"))


@bp.route("/<int:conversation_id>/nye")
def poll(conversation_id: int) -> Response:
    session.passive = True  # type: ignore[attr-defined]
    try:
        revision = policy.conversation_revision(current_user, None, conversation_id)
    except NotFound:
        return Response(status=STOP_POLLING)
    if revision == request.args.get("rev", type=db_int):
        return Response(status=204)
    conversation, _decision = policy.load_conversation(current_user, None, conversation_id, "read")
    services.seen_by_team(conversation)
    return htmx.render("messages/_thread.html", "messages/_thread.html", polled=True, **_thread_context(conversation))


@bp.route("/<int:conversation_id>/vedlegg/<int:attachment_id>")
def download(conversation_id: int, attachment_id: int) -> Response:
    attachment = policy.load_attachment(current_user, None, conversation_id, attachment_id)
    return send_attachment(attachment, preview=request.args.get("vis") == "bilde")


# -- The unit's settings and ready answers -----------------------------------------------------


def _settings_page(unit: CareUnit, units: list[CareUnit], settings_form=None, template_form=None, status=200):  # type: ignore[no-untyped-def]
    inbox_settings = db.session.get(MessageInbox, unit.id)
    if settings_form is None:
        settings_form = InboxSettingsForm(formdata=None, obj=inbox_settings)
        if inbox_settings is None:
            settings_form.accepts_messages.data = False
            settings_form.answer_days.data = 3
    template_form = template_form or TemplateForm(formdata=None)
    return htmx.render(
        "messages/staff/settings.html",
        status=status,
        active_tab="messages",
        unit=unit,
        units=units,
        settings_form=settings_form,
        template_form=template_form,
        templates=services.templates_for(unit.id),
        notice=request.args.get("ok"),
    )


@bp.route("/innstillinger", methods=["GET", "POST"])
def settings() -> Response:
    """Whether the unit takes messages, its promised answer time and what patients are told; and
    the unit's ready answers."""
    units = _units()
    if not units:
        abort(404)
    unit = _unit(units)
    if request.method == "GET":
        return _settings_page(unit, units)
    form = InboxSettingsForm()
    if not form.validate_on_submit():
        return _settings_page(unit, units, settings_form=form, status=400)
    inbox_settings = db.session.get(MessageInbox, unit.id) or MessageInbox(care_unit_id=unit.id)
    inbox_settings.accepts_messages = form.accepts_messages.data
    inbox_settings.answer_days = form.answer_days.data
    inbox_settings.info = form.info.data or None
    inbox_settings.phone = form.phone.data or None
    db.session.add(inbox_settings)
    audit("message_inbox_changed", actor_user_id=current_user.id, object_type="care_unit", object_id=unit.id)
    db.session.commit()
    return htmx.redirect_to(url_for("messages_staff.settings", enhet=unit.id, ok="lagret"))


@bp.route("/maler", methods=["POST"])
def add_template() -> Response:
    units = _units()
    if not units:
        abort(404)
    unit = _unit(units)
    form = TemplateForm()
    if not form.validate_on_submit():
        return _settings_page(unit, units, template_form=form, status=400)
    db.session.add(MessageTemplate(care_unit_id=unit.id, title=form.title.data, body=form.body.data))
    audit("message_template_added", actor_user_id=current_user.id, object_type="care_unit", object_id=unit.id)
    db.session.commit()
    return htmx.redirect_to(url_for("messages_staff.settings", enhet=unit.id, ok="mal"))


@bp.route("/maler/<int:template_id>/slett", methods=["POST"])
def delete_template(template_id: int) -> Response:
    template = db.session.get(MessageTemplate, template_id)
    if template is None or template.care_unit_id not in policy.staff_unit_ids(current_user):
        abort(404)
    unit_id = template.care_unit_id
    db.session.delete(template)
    audit("message_template_deleted", actor_user_id=current_user.id, object_type="care_unit", object_id=unit_id)
    db.session.commit()
    return htmx.redirect_to(url_for("messages_staff.settings", enhet=unit_id, ok="slettet"))
