"""The staff's side of copies of the record (innsyn, pbrl. § 5-1): the queue of the requests made
to the organisations they work in, with the legal deadline counting down, and one request with
its two answers — send the copy as a PDF, or refuse with a reason.

Clinicians and clerks only (others: 404). A request to an organisation the staff member does not
work in is a 404 like one that does not exist, and the attempt is audited; each patient listed in
the queue and each request read or answered is an audit row the patient sees.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request, url_for
from flask_login import current_user

from app.access import policy
from app.auth.models import Role, User
from app.db import db, keyset_position, keyset_token
from app.messages import attachments
from app.record import copies
from app.record.forms import ANSWER_MAX_CHARS, AnswerCopyForm, RefuseCopyForm
from app.record.models import CopyRequest, CopyRequestState
from app.refusal import Refused
from app.web import htmx
from app.web.gate import only_for
from app.web.uploads import takes_files

bp = Blueprint("copies_staff", __name__, url_prefix="/ansatt/innsyn")
PAGE = 20


bp.before_request(only_for(Role.CLINICIAN, Role.CLERK))


@bp.context_processor
def helpers() -> dict:
    return {
        "deadline_text": copies.deadline_text,
        "days_left": copies.days_left,
        "max_answer": ANSWER_MAX_CHARS,
        "max_mb": current_app.config["MESSAGE_ATTACHMENT_MAX_BYTES"] // (1024 * 1024),
        "days": current_app.config["COPY_REQUEST_DAYS"],
    }


@bp.route("")
def queue() -> Response:
    """Open requests by deadline (overdue first), or the answered ones; 20 a page."""
    org_ids = policy.staff_organisation_ids(current_user)
    view = request.args.get("visning", "apne")
    if view not in copies.QUEUE_VIEWS:
        view = "apne"
    rows, after = copies.queue(org_ids, view, keyset_position(request.args.get("etter")), PAGE)
    # Each patient listed is an audit row, one INSERT per organisation shown; committed with the
    # response.
    by_organisation: dict[int, set[int]] = {}
    for row in rows:
        by_organisation.setdefault(row.organisation_id, set()).add(row.person_id)
    for organisation_id, person_ids in sorted(by_organisation.items()):
        policy.audit_unit_list(
            current_user, person_ids, organisation_id, "list_copy_requests", object_type="copy_requests"
        )
    next_url = url_for("copies_staff.queue", visning=view, etter=keyset_token(*after)) if after else None
    open_total, overdue = copies.open_count(org_ids)
    return htmx.render(
        "record/copies/staff_queue.html",
        "record/copies/_staff_rows.html",
        active_tab="record",
        view=view,
        requests=rows,
        next_url=next_url,
        has_organisations=bool(org_ids),
        several_organisations=len(org_ids) > 1,
        open_total=open_total,
        overdue=overdue,
    )


def _load(request_id: int, action: str) -> CopyRequest:
    return policy.load_copy_request(current_user, request_id, action)


def _page(
    copy_request: CopyRequest,
    *,
    answer_form: AnswerCopyForm | None = None,
    refuse_form: RefuseCopyForm | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    answer_form = answer_form or AnswerCopyForm(formdata=None)
    refuse_form = refuse_form or RefuseCopyForm(formdata=None)
    return htmx.render(
        "record/copies/staff_request.html",
        status=status,
        active_tab="record",
        copy_request=copy_request,
        patient=copy_request.person,
        requested_by=db.session.get(User, copy_request.requested_by_id) if copy_request.requested_by_id else None,
        handled_by=db.session.get(User, copy_request.handled_by_id) if copy_request.handled_by_id else None,
        answer_form=answer_form,
        refuse_form=refuse_form,
        summary_forms=[answer_form, refuse_form],
        accept=attachments.PDF_TYPE,
        error=error,
        notice=request.args.get("ok"),
    )


@bp.route("/<int:request_id>")
def show(request_id: int) -> Response:
    return _page(_load(request_id, "read"))


@bp.route("/<int:request_id>/send", methods=["POST"])
@takes_files
def send(request_id: int) -> Response:
    """Send the copy: one PDF (checked like any attachment: no scripts, actions or embedded
    files), which becomes a released document in the patient's record, with its event."""
    copy_request = _load(request_id, "answer")
    if copy_request.state is not CopyRequestState.RECEIVED:
        return _page(copy_request, error=copies.already_answered(), status=409)
    form = AnswerCopyForm()
    if not form.validate_on_submit():
        return _page(copy_request, answer_form=form, status=400)
    filename, data = form.upload()
    # Every refusal comes before anything is written (the file is checked first, then the request
    # claimed); the attempt's audit row is committed with the response.
    try:
        copies.answer(copy_request, current_user, filename, data, form.answer_text.data)
    except copies.AlreadyAnswered as refused:
        db.session.refresh(copy_request)
        return _page(copy_request, error=refused.message, status=409)
    except Refused as refused:
        form.document.errors = [refused.message]
        return _page(copy_request, answer_form=form, status=400)
    db.session.commit()
    return htmx.redirect_to(url_for("copies_staff.show", request_id=request_id, ok="sendt"))


@bp.route("/<int:request_id>/avsla", methods=["POST"])
def refuse(request_id: int) -> Response:
    """Refuse the request, with the reason the patient reads."""
    copy_request = _load(request_id, "refuse")
    if copy_request.state is not CopyRequestState.RECEIVED:
        return _page(copy_request, error=copies.already_answered(), status=409)
    form = RefuseCopyForm()
    if not form.validate_on_submit():
        return _page(copy_request, refuse_form=form, status=400)
    try:
        copies.refuse(copy_request, current_user, form.reason.data)
    except copies.AlreadyAnswered as refused:
        db.session.refresh(copy_request)
        return _page(copy_request, error=refused.message, status=409)
    db.session.commit()
    return htmx.redirect_to(url_for("copies_staff.show", request_id=request_id, ok="avslatt"))
