"""The patient's times: the list, one time, calendar file, cancel, move, book, earlier-time offers.

Every route asks the access policy first (``check_appointment``: the patient, or a parent acting
for a child under 12), on the record chosen in the profile switcher.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flask import Blueprint, Response, abort, make_response, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app import clock
from app.access import policy
from app.appointments import ics, offers, services
from app.appointments.forms import WishForm
from app.appointments.models import Appointment, Offer, Slot, VisitType
from app.appointments.services import Refused
from app.db import db
from app.people.models import Person
from app.web import htmx
from app.web.numbers import db_int
from app.web.security import as_file

bp = Blueprint("appointments", __name__, url_prefix="/timer")
PAGE = 20  # free times per page


@bp.context_processor
def helpers() -> dict:
    return {
        "why_not": offers.why_not,
        "age_rule_text": services.age_rule_text,
    }


def _patient() -> Person:
    return policy.current_patient(current_user)


def _appointment(appointment_id: int, action: str) -> Appointment:
    return policy.load_appointment(current_user, _patient(), appointment_id, action)


def refused_page(template: str, refused: Refused, context: Callable[[], dict]) -> Response:
    """Nothing changed: the transaction is rolled back (the page's objects are read again as
    they are in the database) and the page is shown again with the reason, 409."""
    db.session.rollback()
    return htmx.render(template, status=409, error=refused.message, **context())


@bp.route("")
def index() -> Response:
    patient = _patient()
    decision = policy.check_appointment(current_user, patient, action="list")
    now = clock.utcnow()
    scope = policy.appointment_scope(decision)
    return htmx.render(
        "appointments/index.html",
        active_tab="appointments",
        patient=patient,
        upcoming=services.upcoming(patient, scope, now),
        past=services.past(patient, scope, now),
        open_offers=[
            o for o in services.open_offers(patient, now) if policy.appointment_in_scope(decision, o.appointment)
        ],
        now=now,
        notice=request.args.get("ok"),
    )


def _detail_context(appointment: Appointment, now: datetime) -> dict:
    return {
        "appointment": appointment,
        "now": now,
        "may_change": services.patient_may_change(appointment, now),
        "deadline": services.cancel_deadline(appointment),
        "phone": services.contact_phone(appointment),
        "map_url": services.map_url(appointment.location),
        "entry": services.waiting_entry(appointment) if appointment.is_booked else None,
        "active_tab": "appointments",
    }


@bp.route("/<int:appointment_id>")
def detail(appointment_id: int) -> Response:
    appointment = _appointment(appointment_id, "read")
    now = clock.utcnow()
    return htmx.render("appointments/detail.html", notice=request.args.get("ok"), **_detail_context(appointment, now))


@bp.route("/<int:appointment_id>/kalender.ics")
def calendar_file(appointment_id: int) -> Response:
    appointment = _appointment(appointment_id, "download")
    response = make_response(ics.calendar_for(appointment))
    response.headers["Content-Type"] = "text/calendar; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="varde-time-{appointment.id}.ics"'
    return as_file(response)


@bp.route("/<int:appointment_id>/avbestill", methods=["GET", "POST"])
def cancel(appointment_id: int) -> Response:
    appointment = _appointment(appointment_id, "cancel" if request.method == "POST" else "read")
    now = clock.utcnow()
    if request.method == "POST":
        try:
            services.cancel_by_patient(current_user, appointment, now)
        except Refused as refused:
            return refused_page("appointments/cancel.html", refused, lambda: _detail_context(appointment, now))
        db.session.commit()
        return htmx.redirect_to(url_for("appointments.index", ok="avbestilt"))
    return htmx.render("appointments/cancel.html", **_detail_context(appointment, now))


@bp.route("/<int:appointment_id>/flytt", methods=["GET", "POST"])
def move(appointment_id: int) -> Response:
    appointment = _appointment(appointment_id, "change" if request.method == "POST" else "read")
    now = clock.utcnow()

    def context() -> dict:
        return {"slots": services.reschedule_options(appointment, now), **_detail_context(appointment, now)}

    if request.method == "POST":
        try:
            moved = services.reschedule(current_user, appointment, request.form.get("slot", type=db_int), now)
        except Refused as refused:
            return refused_page("appointments/move.html", refused, context)
        db.session.commit()
        return htmx.redirect_to(url_for("appointments.detail", appointment_id=moved.id, ok="flyttet"))
    return htmx.render("appointments/move.html", **context())


@bp.route("/<int:appointment_id>/tidligere", methods=["GET", "POST"])
def earlier(appointment_id: int) -> Response:
    """ "I want an earlier time": days, hours and notice; or stop waiting."""
    appointment = _appointment(appointment_id, "change" if request.method == "POST" else "read")
    now = clock.utcnow()
    entry = services.waiting_entry(appointment)
    form = WishForm(obj=entry) if request.method == "GET" else WishForm()
    if request.method == "GET" and entry is not None:
        form.days.data = [str(d) for d in range(7) if entry.allows_weekday(d)]
    if request.method == "POST":
        if request.form.get("stopp"):
            services.stop_waiting(appointment, now)
            db.session.commit()
            return htmx.redirect_to(url_for("appointments.detail", appointment_id=appointment.id, ok="stoppet"))
        if form.validate():
            try:
                services.want_earlier(appointment, form.wish(), now)
            except Refused as refused:
                return refused_page(
                    "appointments/earlier.html", refused, lambda: {"form": form, **_detail_context(appointment, now)}
                )
            db.session.commit()
            return htmx.redirect_to(url_for("appointments.detail", appointment_id=appointment.id, ok="venter"))
        return htmx.render("appointments/earlier.html", status=400, form=form, **_detail_context(appointment, now))
    return htmx.render("appointments/earlier.html", form=form, **_detail_context(appointment, now))


# -- Offers ------------------------------------------------------------------------------------


def _offer(offer_id: int, action: str) -> Offer:
    return policy.load_offer(current_user, _patient(), offer_id, action)


@bp.route("/tilbud/<int:offer_id>")
def offer(offer_id: int) -> Response:
    offer = _offer(offer_id, "read")
    return htmx.render("appointments/offer.html", **_offer_context(offer, clock.utcnow()))


def _offer_context(offer: Offer, now: datetime) -> dict:
    return {"offer": offer, "now": now, "active_tab": "appointments"}


@bp.route("/tilbud/<int:offer_id>/ja", methods=["POST"])
def accept(offer_id: int) -> Response:
    offer = _offer(offer_id, "accept")
    now = clock.utcnow()
    try:
        new = offers.accept(current_user, offer, now)
    except Refused as refused:
        return refused_page("appointments/offer.html", refused, lambda: _offer_context(offer, now))
    db.session.commit()
    return htmx.redirect_to(url_for("appointments.detail", appointment_id=new.id, ok="tilbud"))


@bp.route("/tilbud/<int:offer_id>/nei", methods=["POST"])
def decline(offer_id: int) -> Response:
    offer = _offer(offer_id, "decline")
    now = clock.utcnow()
    try:
        offers.decline(offer, now)
    except Refused as refused:
        return refused_page("appointments/offer.html", refused, lambda: _offer_context(offer, now))
    db.session.commit()
    return htmx.redirect_to(url_for("appointments.index", ok="nei"))


# -- Self-booking ----------------------------------------------------------------------------


@bp.route("/bestill")
def choose_type() -> Response:
    patient = _patient()
    decision = policy.check_appointment(current_user, patient, action="book")
    types = [
        t
        for t in services.bookable_types(patient, clock.today_in_norway())
        if policy.unit_in_scope(decision, t.care_unit)
    ]
    return htmx.render("appointments/book_type.html", types=types, patient=patient, active_tab="appointments")


def _visit_type(visit_type_id: int) -> VisitType:
    visit_type = db.session.get(VisitType, visit_type_id)
    if visit_type is None or not visit_type.active:
        abort(404)
    return visit_type


@bp.route("/bestill/<int:visit_type_id>")
def choose_time(visit_type_id: int) -> Response:
    """The next free times of a visit type, soonest first; ``etter`` continues from a slot."""
    patient = _patient()
    decision = policy.check_appointment(current_user, patient, action="book")
    visit_type = _visit_type(visit_type_id)
    if not policy.unit_in_scope(decision, visit_type.care_unit):
        abort(404)
    now = clock.utcnow()
    after = None
    if (after_id := request.args.get("etter", type=db_int)) is not None:
        last = db.session.get(Slot, after_id)
        if last is not None and last.visit_type_id == visit_type.id:
            after = (last.start, last.id)
    refusal = None
    if not visit_type.bookable_by_patients:
        refusal = _("Denne timen kan du ikke bestille selv. Ta kontakt med stedet for å få time.")
    elif not services.age_allows(visit_type, patient, clock.today_in_norway()):
        refusal = services.age_rule_text(visit_type)
    # One more than shown: whether "Vis flere tider" will find any.
    slots = [] if refusal else services.free_slots(visit_type, now, after=after, limit=PAGE + 1)
    has_more, slots = len(slots) > PAGE, slots[:PAGE]
    return htmx.render(
        "appointments/book_time.html",
        "appointments/_slot_list.html",
        visit_type=visit_type,
        slots=slots,
        has_more=has_more,
        refusal=refusal,
        patient=patient,
        active_tab="appointments",
    )


@bp.route("/bestill/tid/<int:slot_id>", methods=["GET", "POST"])
def confirm(slot_id: int) -> Response:
    """Check the details, then book (POST). A taken, past or forged slot says so and changes nothing."""
    patient = _patient()
    decision = policy.check_appointment(current_user, patient, action="book")
    now = clock.utcnow()
    slot = db.session.get(Slot, slot_id)
    posted = db.session.get(Slot, request.form.get("slot", type=db_int) or 0) if request.method == "POST" else slot
    if posted is not None and not policy.unit_in_scope(decision, posted.schedule.care_unit):
        abort(404)  # a unit the relative may not book with (a hospital, for a parent of a teenager)
    if request.method == "POST":
        try:
            appointment = services.book(current_user, patient, request.form.get("slot", type=db_int), now)
        except Refused as refused:
            return refused_page(
                "appointments/confirm.html",
                refused,
                lambda: {"slot": slot, "patient": patient, "active_tab": "appointments"},
            )
        db.session.commit()
        return htmx.redirect_to(url_for("appointments.detail", appointment_id=appointment.id, ok="bestilt"))
    if slot is None:
        abort(404)
    return htmx.render("appointments/confirm.html", slot=slot, patient=patient, active_tab="appointments")
