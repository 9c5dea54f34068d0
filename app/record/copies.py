"""A copy of the record (innsyn, pasient- og brukerrettighetsloven § 5-1).

The patient (or a parent of a child under 12, or a proxy at the Full level: whoever holds the
EXPORT right) asks one organisation for a copy of the whole record or a part of it. The
organisation must answer within ``COPY_REQUEST_DAYS`` (30); staff see a queue with the deadline
counting down (app/record/copies_staff.py) and answer with a PDF, which becomes a released
document in the patient's record with a ``copy_answered`` event in the same transaction — or they
refuse it with a reason the patient reads. The instant copy (the FHIR file and the printable
record, ``record.export_json`` / ``record.printable``) stays the instant path.

The first half of this file is what the routes call (plain functions on already-authorised
objects, never reading ``request``); the patient's routes follow.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flask import Blueprint, Response, current_app, flash, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import joinedload

from app import clock
from app.access import policy
from app.access.policy import Decision
from app.appointments.models import Appointment
from app.auth.models import User
from app.db import db
from app.messages import attachments
from app.notify import events
from app.people.models import Organisation, Person
from app.record.forms import PART_MAX_CHARS, CopyRequestForm
from app.record.models import (
    CopyRequest,
    CopyRequestState,
    ItemKind,
    RecordContent,
    RecordItem,
    ReleasePolicy,
    ReleaseState,
)
from app.record.present import item_date
from app.record.release import item_url
from app.refusal import Refused
from app.web import htmx

EVENT_KIND = "copy_answered"
SOURCE_SYSTEM = "varde"
SOURCE_TYPE = "CopyRequest"


# -- What the routes call ---------------------------------------------------------------------


def organisation_choices(decision: Decision, patient: Person) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(near, others): the organisations the patient has record items (that they may see) or
    appointments with, then every other organisation; each by name."""
    has_items = exists().where(
        RecordItem.person_id == patient.id, RecordItem.organisation_id == Organisation.id, decision.items
    )
    has_times = exists().where(
        Appointment.person_id == patient.id,
        Appointment.organisation_id == Organisation.id,
        policy.appointment_scope(decision),
    )
    near_flag = or_(has_items, has_times).label("near")
    rows = db.session.execute(
        select(Organisation.id, Organisation.name, near_flag).order_by(Organisation.name, Organisation.id)
    ).all()
    near = [(oid, name) for oid, name, is_near in rows if is_near]
    others = [(oid, name) for oid, name, is_near in rows if not is_near]
    return near, others


def requests_of(patient: Person, limit: int = 100) -> list[CopyRequest]:
    """The patient's requests, newest first, with their organisations."""
    return list(
        db.session.scalars(
            select(CopyRequest)
            .options(joinedload(CopyRequest.organisation))
            .where(CopyRequest.person_id == patient.id)
            .order_by(CopyRequest.requested_at.desc(), CopyRequest.id.desc())
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class Asked:
    """What the patient asks for (already validated)."""

    organisation: Organisation
    whole_record: bool
    part_text: str | None = None
    period_from: date | None = None
    period_to: date | None = None


def create_request(patient: Person, decision: Decision, by: User, asked: Asked) -> CopyRequest:
    """Add the request to the transaction (the caller commits). Refused, with nothing added, when
    the whole record is already asked for from that organisation and not yet answered."""
    # One request at a time per patient: the check below and the insert cannot interleave with
    # another (PostgreSQL locks the patient's row; SQLite has one writer anyway).
    db.session.execute(select(Person.id).where(Person.id == patient.id).with_for_update())
    if asked.whole_record:
        pending = db.session.scalar(
            select(CopyRequest.id)
            .where(
                CopyRequest.person_id == patient.id,
                CopyRequest.organisation_id == asked.organisation.id,
                CopyRequest.whole_record.is_(True),
                CopyRequest.state == CopyRequestState.RECEIVED,
            )
            .limit(1)
        )
        if pending is not None:
            raise Refused(
                _("Du har allerede en forespørsel hos %(org)s som ikke er besvart.", org=asked.organisation.name)
            )
    request_row = CopyRequest(
        person_id=patient.id,
        organisation_id=asked.organisation.id,
        whole_record=asked.whole_record,
        part_text=None if asked.whole_record else asked.part_text,
        period_from=None if asked.whole_record else asked.period_from,
        period_to=None if asked.whole_record else asked.period_to,
        requested_by_id=by.id,
        requested_by_relation=None if decision.basis == "own" else decision.basis,
        requested_at=clock.utcnow(),
        due_on=clock.today_in_norway() + timedelta(days=current_app.config["COPY_REQUEST_DAYS"]),
        state=CopyRequestState.RECEIVED,
    )
    db.session.add(request_row)
    db.session.flush()
    return request_row


def days_left(copy_request: CopyRequest, today: date | None = None) -> int:
    """Days until the deadline (0: today; negative: that many days over it)."""
    return (copy_request.due_on - (today or clock.today_in_norway())).days


def deadline_text(copy_request: CopyRequest, today: date | None = None) -> str:
    """ "12 dager igjen", "Frist i dag" or "3 dager over fristen"."""
    left = days_left(copy_request, today)
    if left > 0:
        return ngettext("%(num)s dag igjen", "%(num)s dager igjen", left)
    if left == 0:
        return _("Frist i dag")
    return ngettext("%(num)s dag over fristen", "%(num)s dager over fristen", -left)


class AlreadyAnswered(Refused):
    """The request was answered or refused already (by someone else, or a second click)."""


def already_answered() -> str:
    return _("Forespørselen er allerede besvart. Ingenting ble endret.")


def _claim(copy_request: CopyRequest, values: dict) -> None:
    """Move the request from received to answered or refused: a conditional UPDATE, so two staff
    members (or a double click) cannot both answer it. Refused, with nothing changed, if it was
    answered already."""
    result = db.session.execute(
        update(CopyRequest)
        .where(CopyRequest.id == copy_request.id, CopyRequest.state == CopyRequestState.RECEIVED)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise AlreadyAnswered(already_answered())


def _not_open(copy_request: CopyRequest) -> None:
    if copy_request.state is not CopyRequestState.RECEIVED:
        raise AlreadyAnswered(already_answered())


def answer(copy_request: CopyRequest, by: User, filename: str | None, data: bytes, text: str | None) -> RecordItem:
    """Send the copy: the PDF becomes a released document in the patient's record from the
    organisation, the request is answered, and the patient hears of it — all in the caller's
    transaction. Refused (nothing added) for a file that is not a clean PDF, or a request that is
    answered already."""
    _not_open(copy_request)
    try:
        checked = attachments.check(filename, data)
    except attachments.Rejected as rejected:
        raise Refused(str(rejected)) from None
    if checked.content_type != attachments.PDF_TYPE:
        raise Refused(_("Kopien må være en PDF-fil."))
    now = clock.utcnow()
    _claim(
        copy_request,
        {
            "state": CopyRequestState.ANSWERED,
            "answered_at": now,
            "handled_by_id": by.id,
            "answer_text": text or None,
        },
    )
    organisation = copy_request.organisation
    item = RecordItem(
        person_id=copy_request.person_id,
        kind=ItemKind.DOCUMENT,
        section=ItemKind.DOCUMENT.value,
        organisation_id=organisation.id,
        source_system=SOURCE_SYSTEM,
        source_type=SOURCE_TYPE,
        source_id=str(copy_request.id),
        content_hash=hashlib.sha256(checked.data).hexdigest(),
        # Record content is kept in the language it was written in (bokmål), like what sources send.
        title=f"Kopi av journalen fra {organisation.name}",
        status="current",
        effective_at=now,
        data={"size": len(checked.data), "file_type": attachments.PDF_TYPE, "copy_request": copy_request.id},
        release_policy=ReleasePolicy.IMMEDIATE,
        release_state=ReleaseState.RELEASED,
        released_at=now,
        released_by_id=by.id,
        announced=True,
        # A copy the patient asked for may hold what a clinician hid from guardians: it is the
        # patient's, not their parents' or guardian's (one a relative asked for is theirs to read).
        hidden_from_guardians=copy_request.requested_by_relation is None,
        guardian_hidden_reason=None,
    )
    item.content = RecordContent(content_type=attachments.PDF_TYPE, binary=checked.data)
    db.session.add(item)
    db.session.flush()
    db.session.execute(
        update(CopyRequest)
        .where(CopyRequest.id == copy_request.id)
        .values(document_id=item.id)
        .execution_options(synchronize_session=False)
    )
    # The event says only that a copy is ready, and leads to the document.
    events.emit(
        copy_request.person_id,
        EVENT_KIND,
        guardians_may_know=not item.hidden_from_guardians,
        object_type="record_item",
        object_id=item.id,
        url=item_url(item.id, ItemKind.DOCUMENT),
    )
    return item


def refuse(copy_request: CopyRequest, by: User, reason: str) -> None:
    """Refuse the request with the reason the patient reads (in the caller's transaction)."""
    _not_open(copy_request)
    _claim(
        copy_request,
        {
            "state": CopyRequestState.REFUSED,
            "answered_at": clock.utcnow(),
            "handled_by_id": by.id,
            "answer_text": reason,
        },
    )
    # The patient hears that there is an answer (never what it says); it leads to their requests.
    events.emit(
        copy_request.person_id,
        "copy_refused",
        object_type="copy_request",
        object_id=copy_request.id,
        url="/journal/kopi",
    )


QUEUE_VIEWS = ("apne", "besvarte")


def _day_position(day: date, row_id: int) -> tuple[datetime, int]:
    return datetime.combine(day, time(), tzinfo=UTC), row_id


def queue(
    org_ids: tuple[int, ...], view: str, after: tuple[datetime, int] | None, limit: int
) -> tuple[list[CopyRequest], tuple[datetime, int] | None]:
    """A page of the organisations' requests: open ones by deadline, soonest (or most overdue)
    first; answered and refused ones newest answer first. Returns the rows and the position of
    the next page (None: no more)."""
    if not org_ids:
        return [], None
    q = (
        select(CopyRequest)
        .options(joinedload(CopyRequest.person), joinedload(CopyRequest.organisation))
        .where(CopyRequest.organisation_id.in_(org_ids))
    )
    if view == "apne":
        q = q.where(CopyRequest.state == CopyRequestState.RECEIVED).order_by(CopyRequest.due_on, CopyRequest.id)
        if after is not None:
            day, row_id = after[0].date(), after[1]
            q = q.where(or_(CopyRequest.due_on > day, and_(CopyRequest.due_on == day, CopyRequest.id > row_id)))
    else:
        q = q.where(CopyRequest.state != CopyRequestState.RECEIVED).order_by(
            CopyRequest.answered_at.desc(), CopyRequest.id.desc()
        )
        if after is not None:
            moment, row_id = after
            q = q.where(
                or_(
                    CopyRequest.answered_at < moment,
                    and_(CopyRequest.answered_at == moment, CopyRequest.id < row_id),
                )
            )
    rows = list(db.session.scalars(q.limit(limit + 1)).unique())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    if view == "apne":
        return rows, _day_position(last.due_on, last.id)
    return rows, (last.answered_at, last.id)  # type: ignore[return-value]


def open_count(org_ids: tuple[int, ...]) -> tuple[int, int]:
    """(open, of them overdue) for the organisations."""
    if not org_ids:
        return 0, 0
    today = clock.today_in_norway()
    row = db.session.execute(
        select(
            func.count(CopyRequest.id),
            func.count(CopyRequest.id).filter(CopyRequest.due_on < today),
        ).where(CopyRequest.organisation_id.in_(org_ids), CopyRequest.state == CopyRequestState.RECEIVED)
    ).one()
    return int(row[0]), int(row[1])


# -- The patient's pages ------------------------------------------------------------------------

bp = Blueprint("copies", __name__, url_prefix="/journal/kopi")


def _viewer():  # type: ignore[no-untyped-def]
    patient = policy.current_patient(current_user)
    return current_user, patient


@bp.context_processor
def helpers() -> dict:
    return {
        "deadline_text": deadline_text,
        "days_left": days_left,
    }


def _form(decision: Decision, patient: Person) -> CopyRequestForm:
    form = CopyRequestForm()  # the posted fields on a POST, the defaults on a GET
    near, others = organisation_choices(decision, patient)
    form.set_organisations(near, others)
    return form


def _page(patient: Person, form: CopyRequestForm, status: int = 200, error: str | None = None) -> Response:
    return htmx.render(
        "record/copies/index.html",
        status=status,
        active_tab="record",
        patient=patient,
        form=form,
        requests=requests_of(patient),
        error=error,
        max_part=PART_MAX_CHARS,
        days=current_app.config["COPY_REQUEST_DAYS"],
    )


@bp.route("", methods=["GET", "POST"])
def index() -> Response:
    """The form, and the patient's earlier requests with their state."""
    viewer, patient = _viewer()
    if request.method == "GET":
        decision = policy.check(viewer, patient, category="export", action="list_copy_requests")
        return _page(patient, _form(decision, patient))
    decision = policy.check(viewer, patient, category="export", action="request_copy")
    form = _form(decision, patient)
    if not form.validate_on_submit():
        return _page(patient, form, status=400)
    organisation = db.session.get(Organisation, form.organisation_id)
    asked = Asked(
        organisation,  # type: ignore[arg-type]
        form.whole_record,
        form.part_text.data or None,
        form.period_from.data,
        form.period_to.data,
    )
    try:
        created = create_request(patient, decision, viewer, asked)
    except Refused as refused:
        # Nothing was added (the refusal comes first); the attempt's audit row is committed.
        form.organisation.errors = [refused.message]
        return _page(patient, form, status=409)
    db.session.commit()
    flash(
        _(
            "Forespørselen er sendt til %(org)s. De skal svare innen %(date)s.",
            org=organisation.name,  # type: ignore[union-attr]
            date=item_date(created.due_on, "long"),
        ),
        "success",
    )
    return htmx.redirect_to(url_for("copies.index"))
