"""The staff console. Every read goes through the access policy (care relation), like the patient's."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, flash, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from app.access import policy
from app.auth.models import Role
from app.db import db
from app.people.models import CareUnit, Person
from app.record import release as release_service
from app.record import services as record_services
from app.record.models import ItemKind, RecordItem, ReleaseState
from app.staff import services
from app.staff.forms import FindPatientForm, ReleaseForm, VisitSummaryForm, WithholdForm
from app.web import htmx

bp = Blueprint("staff", __name__, url_prefix="/ansatt")


@bp.before_request
def staff_only() -> None:
    if not current_user.is_authenticated or current_user.role is not Role.CLINICIAN:
        abort(404)


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
    newest first, a page at a time."""
    person = _patient(person_id)
    decision = policy.check(current_user, person, category="record")
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
    return htmx.render("staff/patient.html", person=person, held=held, pager=page, active_tab="record")


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
        release_form=release_form or ReleaseForm(),
        withhold_form=withhold_form or WithholdForm(),
        status=status,
        active_tab="record",
    )


@bp.route("/element/<int:item_id>")
def item(item_id: int) -> Response:
    return _item_page(_item(item_id, "read"))


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
