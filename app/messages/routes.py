"""The patient's messages: the list, writing to a care team, a conversation, its files, drafts.

Every route asks the access policy first (``check_messages`` / ``load_conversation``: the patient,
or a parent acting for a child under 12), on the record chosen in the profile switcher. Message
text is only ever put on a page through autoescaping, as text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Blueprint, Response, abort, current_app, request, send_file, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.exceptions import NotFound
from wtforms.fields.choices import SelectChoice

from app import clock
from app.access import policy
from app.db import db, keyset_position, keyset_token
from app.messages import attachments, limits, present, services
from app.messages.forms import NewConversationForm, ReplyForm
from app.messages.models import Attachment, Conversation
from app.people.models import Person
from app.refusal import Refused
from app.web import htmx
from app.web.numbers import db_int
from app.web.security import as_file
from app.web.uploads import takes_files

bp = Blueprint("messages", __name__, url_prefix="/meldinger")
STOP_POLLING = 286  # htmx stops an every-N-seconds poll on this status
T = TypeVar("T")
PAGE = 20


@bp.context_processor
def helpers() -> dict:
    return {
        "topic_label": present.topic_label,
        "row_words": present.row_words,
        "answer_due": services.answer_due,
        "max_chars": current_app.config["MESSAGE_MAX_CHARS"],
        "max_files": current_app.config["MESSAGE_MAX_ATTACHMENTS"],
        "max_mb": current_app.config["MESSAGE_ATTACHMENT_MAX_BYTES"] // (1024 * 1024),
        "accept": attachments.ACCEPT,
        "poll_seconds": current_app.config["MESSAGE_POLL_SECONDS"],
        "state_words": present.state_words,
        "status_words": present.status_words,
        "short_time": present.short_time,
        "short_clock": present.short_clock,
        "conversation_endpoint": "messages.conversation",
        "poll_endpoint": "messages.poll",
        "download_endpoint": "messages.download",
    }


def _patient() -> Person:
    return policy.current_patient(current_user)


@bp.route("")
def index() -> Response:
    patient = _patient()
    decision = policy.check_messages(current_user, patient, action="list")
    found = services.conversations(patient, decision, before=keyset_position(request.args.get("for")), limit=PAGE)
    more = len(found) > PAGE
    found = found[:PAGE]
    context = {
        "active_tab": "messages",
        "patient": patient,
        "conversations": found,
        "more_url": url_for("messages.index", **{"for": keyset_token(found[-1].last_message_at, found[-1].id)})
        if more
        else None,
        "new_drafts": services.new_message_drafts(current_user, patient),
        "notice": request.args.get("ok"),
    }
    return htmx.render("messages/index.html", "messages/_conversation_items.html", **context)


@bp.route("/ny")
def choose_unit() -> Response:
    patient = _patient()
    decision = policy.check_messages(current_user, patient, action="write")
    return htmx.render(
        "messages/choose_unit.html",
        active_tab="messages",
        patient=patient,
        choices=[c for c in services.units_for(patient) if policy.unit_in_scope(decision, c.unit)],
        drafts={d.care_unit_id for d in services.new_message_drafts(current_user, patient)},
    )


def _new_form_context(
    patient: Person, choice: services.UnitChoice, form: NewConversationForm, error: str | None = None
) -> dict:
    return {
        "active_tab": "messages",
        "patient": patient,
        "choice": choice,
        "form": form,
        "error": error,
    }


@bp.route("/ny/<int:unit_id>", methods=["GET", "POST"])
@takes_files
def new(unit_id: int) -> Response:
    """Write to one care unit: topic, heading, text, files, and an earlier conversation it is about."""
    patient = _patient()
    decision = policy.check_messages(current_user, patient, action="write")
    choice = services.unit_choice(patient, unit_id)
    if choice is None or not policy.unit_in_scope(decision, choice.unit):
        abort(404)
    form = NewConversationForm()
    earlier = services.earlier_conversations(patient, decision, unit_id)
    form.refers_to.choices = [SelectChoice("", _("Nei, dette er en ny sak"))] + [
        SelectChoice(str(c.id), f"{c.subject} ({c.care_unit.name})") for c in earlier
    ]
    if request.method == "GET":
        saved = services.new_message_draft(current_user, patient, unit_id)
        if saved is not None:
            form.topic.data = form.topic.data or saved.topic
            form.subject.data = saved.subject
            form.body.data = saved.body
            form.refers_to.data = str(saved.refers_to_id or "")
        if request.args.get("om", type=db_int):
            form.refers_to.data = str(request.args.get("om", type=db_int))
        return htmx.render("messages/new.html", **_new_form_context(patient, choice, form))
    if "utkast" in request.form:  # "Lagre utkast" without JavaScript
        _save_new_draft(patient, unit_id)
        db.session.commit()
        return htmx.redirect_to(url_for("messages.index", ok="utkast"))
    if not choice.accepts:
        abort(404)
    if not form.validate_on_submit():
        return htmx.render("messages/new.html", status=400, **_new_form_context(patient, choice, form))
    sent = send(
        lambda stored: services.start(
            current_user,
            patient,
            decision,
            choice=choice,
            topic=form.topic.data,
            subject=form.subject.data,
            body=form.body.data,
            uploads=form.uploads(),
            refers_to_id=int(form.refers_to.data) if (form.refers_to.data or "").isdigit() else None,
            stored=stored,
        ),
        limited=True,
    )
    if isinstance(sent, Refused):
        return htmx.render("messages/new.html", status=409, **_new_form_context(patient, choice, form, sent.message))
    conversation = sent
    return htmx.redirect_to(url_for("messages.conversation", conversation_id=conversation.id, ok="sendt"))


def send(action: Callable[[attachments.Stored], T], *, limited: bool) -> T | Refused:
    """Send a message with its files: counted against the account's share (``limited``: the
    patient's side), files written, committed. When it is refused — by the share, by a check, or by
    an error — nothing stays: not the files, not the count, not a row. A refusal is returned (the
    page shows it); an error is raised."""
    if limited:
        try:
            limits.take(current_user.id)
        except Refused as refused:
            return refused
    stored = attachments.Stored()
    try:
        result = action(stored)
        db.session.commit()
        return result
    except BaseException as error:
        db.session.rollback()
        stored.discard()
        if limited:
            limits.give_back(current_user.id)
        if isinstance(error, Refused):
            return error
        raise


def _save_new_draft(patient: Person, unit_id: int) -> None:
    refers = request.form.get("refers_to", "")
    services.save_draft(
        current_user,
        patient,
        services.new_scope(unit_id),
        care_unit_id=unit_id,
        topic=request.form.get("topic"),
        subject=request.form.get("subject"),
        body=request.form.get("body"),
        refers_to_id=int(refers) if refers.isdigit() else None,
    )


@bp.route("/utkast/<int:scope>", methods=["POST"])
def save_draft(scope: int) -> Response:
    """Autosave while writing (htmx, a second after typing stops, and when the field is left)."""
    patient = _patient()
    body = request.form.get("body")
    # Saving one's own text reads nothing of the patient's: allowed, it writes no audit row.
    if scope:
        policy.load_conversation(current_user, patient, scope, "draft", audited=False)
    else:
        policy.check_messages(current_user, patient, action="draft", audited=False)
    if services.just_sent(current_user, patient, scope, body):
        return Response(status=204)
    if scope:
        services.save_draft(current_user, patient, scope, body=body)
    else:
        _save_new_draft(patient, request.form.get("unit", type=db_int) or 0)
    db.session.commit()
    return htmx.render("messages/_draft_saved.html", "messages/_draft_saved.html", saved_at=clock.utcnow())


def _conversation_context(
    conversation: Conversation, decision: policy.Decision, form: ReplyForm | None = None, error: str | None = None
) -> dict:
    patient = conversation.person
    return {
        "active_tab": "messages",
        "patient": patient,
        "conversation": conversation,
        "messages": services.with_messages(conversation),
        "inbox": db.session.get(services.MessageInbox, conversation.care_unit_id),
        "form": form,
        "error": error,
        "notice": request.args.get("ok"),
        "staff_view": False,
    }


def _reply_form(conversation: Conversation, patient: Person, decision: policy.Decision) -> ReplyForm | None:
    if conversation.is_closed or not decision.may(policy.WRITE_MESSAGES):
        return None
    form = ReplyForm(formdata=None)
    saved = services.draft(current_user, patient, conversation.id)
    if saved is not None:
        form.body.data = saved.body
    return form


@bp.route("/<int:conversation_id>", methods=["GET", "POST"])
@takes_files
def conversation(conversation_id: int) -> Response:
    patient = _patient()
    action = "read" if request.method == "GET" else "reply"
    conversation, decision = policy.load_conversation(current_user, patient, conversation_id, action)
    if request.method == "GET":
        if decision.may(policy.WRITE_MESSAGES):  # who acts in it (not a read-only proxy) marks it seen
            services.seen_by_patient(conversation)
        return htmx.render(
            "messages/conversation.html",
            **_conversation_context(conversation, decision, _reply_form(conversation, patient, decision)),
        )
    form = ReplyForm()
    if "utkast" in request.form:
        services.save_draft(current_user, patient, conversation.id, body=form.body.data)
        db.session.commit()
        return htmx.redirect_to(url_for("messages.conversation", conversation_id=conversation.id, ok="utkast"))
    if not form.validate_on_submit():
        return htmx.render(
            "messages/conversation.html", status=400, **_conversation_context(conversation, decision, form)
        )
    sent = send(
        lambda stored: services.reply_as_patient(
            current_user, patient, decision, conversation, form.body.data, form.uploads(), stored
        ),
        limited=True,
    )
    if isinstance(sent, Refused):
        conversation, decision = policy.load_conversation(current_user, patient, conversation_id, "read")
        if conversation.is_closed and not isinstance(sent, limits.LimitReached):
            # Closed while they wrote: keep the text as the draft of a new message about this.
            services.carry_to_new(current_user, patient, conversation, form.body.data)
            db.session.commit()
            sent = Refused(
                _(
                    "Behandleren avsluttet samtalen før svaret ditt ble sendt. Teksten er tatt vare på: "
                    "velg «Skriv en ny melding om dette», så ligger den der."
                )
            )
        return htmx.render(
            "messages/conversation.html",
            status=409,
            **_conversation_context(conversation, decision, form if not conversation.is_closed else None, sent.message),
        )
    return htmx.redirect_to(url_for("messages.conversation", conversation_id=conversation.id, ok="sendt") + "#siste")


@bp.route("/<int:conversation_id>/nye")
def poll(conversation_id: int) -> Response:
    """Is anything new? 204 with nothing read when the revision is the page's; else the thread again
    (a read: audited, and marked seen). Not counted as the user being active."""
    session.passive = True  # type: ignore[attr-defined]
    patient = _patient()
    try:
        revision = policy.conversation_revision(current_user, patient, conversation_id)
    except NotFound:
        return Response(status=STOP_POLLING)  # no longer theirs to see (audited): stop asking
    if revision == request.args.get("rev", type=db_int):
        return Response(status=204)
    conversation, decision = policy.load_conversation(current_user, patient, conversation_id, "read")
    if decision.may(policy.WRITE_MESSAGES):
        services.seen_by_patient(conversation)
    return htmx.render(
        "messages/_thread.html", "messages/_thread.html", polled=True, **_conversation_context(conversation, decision)
    )


def send_attachment(attachment: Attachment, preview: bool) -> Response:
    """The file as a download (or an image's re-encoded preview, for an <img>), never as a page:
    a sandboxing CSP (``as_file``), and a type that came from the content."""
    if preview and attachment.preview_name is None:
        abort(404)
    name = attachment.preview_name if preview else attachment.stored_name
    try:
        path = attachments.path_of(name)  # type: ignore[arg-type]
    except ValueError:
        abort(404)
    if not path.is_file():
        abort(404)
    mimetype = attachment.content_type
    if preview:
        with open(path, "rb") as probe:
            mimetype = "image/png" if probe.read(4) == b"\x89PNG" else "image/jpeg"
    response = send_file(
        path,
        mimetype=mimetype,
        as_attachment=not preview,
        download_name=attachment.filename,
        conditional=False,
        etag=False,
        max_age=0,
    )
    if preview:
        response.headers["Content-Disposition"] = "inline"
    return as_file(response)


@bp.route("/<int:conversation_id>/vedlegg/<int:attachment_id>")
def download(conversation_id: int, attachment_id: int) -> Response:
    attachment = policy.load_attachment(current_user, _patient(), conversation_id, attachment_id)
    return send_attachment(attachment, preview=request.args.get("vis") == "bilde")
