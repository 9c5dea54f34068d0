"""The staff console. Every read goes through the access policy (care relation), like the patient's."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, flash, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from app import clock
from app.access import policy
from app.auth.models import Role
from app.db import db
from app.people import services as people_services
from app.people.models import CareUnit, Person
from app.record import release as release_service
from app.record import services as record_services
from app.record.models import ItemKind, RecordItem, ReleaseState
from app.refusal import Refused
from app.staff import services
from app.staff.forms import (
    FindPatientForm,
    GuardianForm,
    ParentForm,
    RelationActionForm,
    ReleaseForm,
    VisitSummaryForm,
    WithholdForm,
)
from app.web import htmx
from app.web.gate import only_for

bp = Blueprint("staff", __name__, url_prefix="/ansatt")


bp.before_request(only_for(Role.CLINICIAN))


def _patient(person_id: int) -> Person:
    person = db.session.get(Person, person_id)
    if person is None:
        abort(404)
    return person


@bp.route("")
def find() -> Response:
    form = FindPatientForm(request.args)
    found: list[Person] | None = None
    if request.args and form.validate():
        org_ids = policy.staff_organisation_ids(current_user)
        found = services.find_patients(org_ids, form.q.data, current_app.config["DEMO_MODE"])
        policy.audit_search(current_user, found, org_ids)
    return htmx.render("staff/find.html", "staff/_found.html", form=form, found=found, active_tab="record")


@bp.route("/pasient/<int:person_id>")
def patient(person_id: int) -> Response:
    """What the clinician's organisations hold: what waits for release first, then everything,
    newest first, a page at a time; then the patient's relatives and representatives."""
    person = _patient(person_id)
    decision = policy.check(current_user, person, category="record")
    return _patient_page(person, decision)


def _patient_page(
    person: Person,
    decision: policy.Decision,
    *,
    parent_form: ParentForm | None = None,
    guardian_form: GuardianForm | None = None,
    relations_error: str | None = None,
    status: int = 200,
) -> Response:
    """The patient page; a relation form that failed comes back with its messages (400 for what
    the form itself finds, 409 for a refusal), and so does a refused change (``relations_error``)."""
    held = list(
        db.session.scalars(
            select(RecordItem)
            .where(RecordItem.person_id == person.id, decision.items, RecordItem.release_state == ReleaseState.HELD)
            .order_by(RecordItem.effective_at.desc(), RecordItem.id.desc())
            .limit(200)
        )
    )
    page = record_services.page_of(
        select(RecordItem).where(RecordItem.person_id == person.id, decision.items), request.args.get("etter")
    )
    today = clock.today_in_norway()
    parent_form = parent_form or ParentForm(formdata=None)
    guardian_form = guardian_form or GuardianForm(formdata=None)
    return htmx.render(
        "staff/patient.html",
        person=person,
        held=held,
        pager=page,
        active_tab="record",
        status=status,
        relations=people_services.relations_of(person, today),
        may_register_parent=people_services.may_register_parent(person, today),
        may_register_guardian=people_services.may_register_guardian(person, today),
        may_object=people_services.may_object(person, today),
        parent_form=parent_form,
        guardian_form=guardian_form,
        summary_forms=[parent_form, guardian_form],
        relations_error=relations_error,
    )


# -- Relatives and representatives ------------------------------------------------------------------
# Every change: the care relation first (404 without one), then the change and its audit row,
# committed together; a refusal rolls everything back and shows the page again with the reason.


def _for_change(person_id: int, *, button: bool = False) -> tuple[Person, policy.Decision]:
    """The patient, if the clinician has a care relation (else 404, audited). A button's POST
    (no fields) is checked for its CSRF token here; a form's by its own validation."""
    person = _patient(person_id)
    decision = policy.check(current_user, person, category="record", action="write")
    if button and not RelationActionForm().validate_on_submit():
        abort(400)
    return person, decision


def _refused(person_id: int, refused: Refused, **forms: object) -> Response:
    """Nothing changed: roll back, read the patient again (a read, audited) and show the page with
    the reason, 409."""
    db.session.rollback()
    person = _patient(person_id)
    decision = policy.check(current_user, person, category="record")
    return _patient_page(person, decision, status=409, **forms)  # type: ignore[arg-type]


def _back(person: Person, message: str) -> Response:
    db.session.commit()
    flash(message, "success")
    return htmx.redirect_to(url_for("staff.patient", person_id=person.id, _anchor="parorende"))


@bp.route("/pasient/<int:person_id>/forelder", methods=["POST"])
def register_parent(person_id: int) -> Response:
    person, decision = _for_change(person_id)
    form = ParentForm()
    if not form.validate_on_submit():
        return _patient_page(person, decision, parent_form=form, status=400)
    try:
        relation = people_services.register_parent(
            person,
            form.parent_national_id.data,
            by=current_user,
            organisation_id=decision.care_organisation_id,
            allow_synthetic=bool(current_app.config["DEMO_MODE"]),
        )
    except Refused as refused:
        form.parent_national_id.errors.append(refused.message)
        return _refused(person_id, refused, parent_form=form)
    return _back(person, _("%(name)s er registrert som forelder.", name=relation.holder.display_name))


@bp.route("/pasient/<int:person_id>/verge", methods=["POST"])
def register_guardian(person_id: int) -> Response:
    person, decision = _for_change(person_id)
    form = GuardianForm()
    if not form.validate_on_submit():
        return _patient_page(person, decision, guardian_form=form, status=400)
    try:
        relation = people_services.register_guardian(
            person,
            form.guardian_national_id.data,
            level=form.level_value(),
            scope_text=form.scope_text.data,
            valid_until=form.valid_until.data,
            by=current_user,
            organisation_id=decision.care_organisation_id,
            allow_synthetic=bool(current_app.config["DEMO_MODE"]),
        )
    except Refused as refused:
        form.guardian_national_id.errors.append(refused.message)
        return _refused(person_id, refused, guardian_form=form)
    return _back(person, _("%(name)s er registrert som verge.", name=relation.holder.display_name))


@bp.route("/pasient/<int:person_id>/relasjon/<int:relation_id>/avslutt", methods=["POST"])
def end_relation(person_id: int, relation_id: int) -> Response:
    person, decision = _for_change(person_id, button=True)
    relation = people_services.relation_of(person, relation_id)
    if relation is None:
        policy.not_found(current_user, person, "end_relation", "relation", relation_id)
    try:
        people_services.end_relation(person, relation, by=current_user, organisation_id=decision.care_organisation_id)
    except Refused as refused:
        return _refused(person_id, refused, relations_error=refused.message)
    return _back(
        person, _("Relasjonen er avsluttet. %(name)s har ikke lenger tilgang.", name=relation.holder.display_name)
    )


@bp.route("/pasient/<int:person_id>/innsigelse", methods=["POST"])
def record_objection(person_id: int) -> Response:
    """The young person (12–15) objects to their parents seeing their information (§ 3-4)."""
    person, decision = _for_change(person_id, button=True)
    try:
        people_services.record_objection(person, by=current_user, organisation_id=decision.care_organisation_id)
    except Refused as refused:
        return _refused(person_id, refused, relations_error=refused.message)
    return _back(
        person, _("Registrert. Foreldrene ser ikke lenger noe av det som gjelder %(name)s.", name=person.given_name)
    )


@bp.route("/pasient/<int:person_id>/innsigelse/opphev", methods=["POST"])
def withdraw_objection(person_id: int) -> Response:
    person, decision = _for_change(person_id, button=True)
    try:
        people_services.withdraw_objection(person, by=current_user, organisation_id=decision.care_organisation_id)
    except Refused as refused:
        return _refused(person_id, refused, relations_error=refused.message)
    return _back(person, _("Innsigelsen er opphevet. Foreldrene har igjen begrenset innsyn."))


def _item(item_id: int, action: str):  # type: ignore[no-untyped-def]
    item = db.session.get(RecordItem, item_id)
    if item is None:
        abort(404)
    item, _decision = policy.load_item(current_user, item.person, item_id, ALL_KINDS, action)
    return item


ALL_KINDS = tuple(kind.value for kind in ItemKind)


def _item_page(
    record_item: RecordItem,
    release_form: ReleaseForm | None = None,
    withhold_form: WithholdForm | None = None,
    status: int = 200,
) -> Response:
    """The item with its forms; a form that failed comes back with its messages (status 400)."""
    return htmx.render(
        "staff/item.html",
        item=record_item,
        content=record_services.content_of(record_item),
        release_form=release_form or ReleaseForm(),
        withhold_form=withhold_form or WithholdForm(),
        status=status,
        active_tab="record",
    )


@bp.route("/element/<int:item_id>")
def item(item_id: int) -> Response:
    return _item_page(_item(item_id, "read"))


@bp.route("/element/<int:item_id>/fil")
def item_file(item_id: int) -> Response:
    """The document's file, so the clinician sees what they release or withhold (a download, audited)."""
    from app.record.routes import _download

    return _download(_item(item_id, "download"))


@bp.route("/element/<int:item_id>/frigi", methods=["POST"])
def release(item_id: int) -> Response:
    record_item = _item(item_id, "release")
    form = ReleaseForm()
    if not form.validate_on_submit():
        return _item_page(record_item, release_form=form, status=400)
    if release_service.release(record_item, by_user_id=current_user.id, comment=(form.comment.data or "").strip()):
        db.session.commit()
        flash(_("Frigitt. Pasienten får beskjed."), "success")
    else:
        flash(_("Dette var allerede frigitt eller kan ikke frigis. Ingenting ble endret."), "info")
    return htmx.redirect_to(url_for("staff.item", item_id=item_id))


@bp.route("/element/<int:item_id>/hold-tilbake", methods=["POST"])
def withhold(item_id: int) -> Response:
    record_item = _item(item_id, "withhold")
    form = WithholdForm()
    if not form.validate_on_submit():
        return _item_page(record_item, withhold_form=form, status=400)
    services.withhold(record_item, reason=form.reason.data.strip(), scope=form.scope.data, by=current_user)
    flash(_("Holdt tilbake. Begrunnelsen er lagret."), "success")
    return htmx.redirect_to(url_for("staff.item", item_id=item_id))


@bp.route("/element/<int:item_id>/opphev", methods=["POST"])
def lift(item_id: int) -> Response:
    record_item = _item(item_id, "lift_withholding")
    form = ReleaseForm()
    if not form.validate_on_submit():
        abort(400)
    services.lift_withholding(record_item)
    flash(_("Tilbakeholdingen er opphevet."), "success")
    return htmx.redirect_to(url_for("staff.item", item_id=item_id))


@bp.route("/pasient/<int:person_id>/oppsummering", methods=["GET", "POST"])
def visit_summary(person_id: int) -> Response:
    person = _patient(person_id)
    decision = policy.check(current_user, person, category="record", action="write")
    units = list(
        db.session.scalars(
            select(CareUnit)
            .where(CareUnit.organisation_id.in_(decision.organisation_ids or ()))
            .join(CareUnit.organisation)
            .order_by(CareUnit.name)
        )
    )
    mine = {m.care_unit_id for m in current_user.memberships}
    units = [u for u in units if u.id in mine]
    form = VisitSummaryForm()
    form.unit.choices = [SelectChoice(u.id, f"{u.name}, {u.organisation.name}") for u in units]
    if form.validate_on_submit():
        unit = next(u for u in units if u.id == form.unit.data)
        item = services.sign_visit_summary(
            author=current_user, patient=person, unit=unit, title=form.title.data.strip(), text=form.text.data.strip()
        )
        flash(_("Oppsummeringen er signert og delt med pasienten."), "success")
        return htmx.redirect_to(url_for("staff.item", item_id=item.id))
    status = 400 if request.method == "POST" else 200
    return htmx.render("staff/visit_summary.html", person=person, form=form, status=status, active_tab="record")
