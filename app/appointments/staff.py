"""The scheduling console for clinicians and clerks: the day's list, attended / no-show, cancelling
for the patient, schedules and their slots, the waiting list's priorities and a slot's offer log.

Staff see the units they work in (``policy.staff_unit_ids``); each list of patients writes an
audit row per patient shown, and acting on one time asks the access policy like any read.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from flask import Blueprint, Response, abort, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import or_, select, update
from sqlalchemy.orm import joinedload
from wtforms.fields.choices import SelectChoice

from app import clock
from app.access import policy
from app.access.services import audit
from app.appointments import offers, scheduling
from app.appointments.forms import WEEKDAYS, CancelForm, PriorityForm, ScheduleForm, SlotsForm
from app.appointments.models import (
    Appointment,
    AppointmentStatus,
    Location,
    OfferState,
    Schedule,
    Slot,
    SlotState,
    VisitType,
    WaitlistEntry,
)
from app.appointments.routes import refused_page
from app.appointments.services import Refused, cancel_by_staff
from app.auth.models import Role
from app.db import db
from app.people.models import CareUnit
from app.staff.services import chosen_unit, my_units
from app.web import htmx
from app.web.gate import only_for
from app.web.numbers import db_int

bp = Blueprint("appointments_staff", __name__, url_prefix="/ansatt/timer")

_OFFER_STATES = {
    OfferState.OPEN: _l("venter på svar"),
    OfferState.ACCEPTED: _l("takket ja – fikk tiden"),
    OfferState.DECLINED: _l("takket nei"),
    OfferState.EXPIRED: _l("svarte ikke i tide"),
    OfferState.TAKEN: _l("for sent – en annen takket ja først"),
    OfferState.WITHDRAWN: _l("trukket tilbake (timen ble endret)"),
}


@bp.context_processor
def helpers() -> dict:
    return {
        "now": clock.utcnow,
        "norway": clock.NORWAY,
        "weekday_name": lambda i: str(WEEKDAYS[i].label),
        "offer_state_words": lambda state: str(_OFFER_STATES[state]),
    }


bp.before_request(only_for(Role.CLINICIAN, Role.CLERK))


def _units() -> list[CareUnit]:
    return my_units(current_user)


def _unit(units: list[CareUnit]) -> CareUnit:
    return chosen_unit(units)


# Days the list can show: the day before and after must exist too (date.max has no next day).
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2999, 12, 31)


def _day() -> date:
    try:
        day = date.fromisoformat(request.args.get("dato", ""))
    except ValueError:
        return clock.today_in_norway()
    return day if FIRST_DAY <= day <= LAST_DAY else clock.today_in_norway()


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=clock.NORWAY)
    return start, start + timedelta(days=1)


@bp.route("")
def day() -> Response:
    """The day's list of one unit: every time, its patient and what became of it."""
    units = _units()
    if not units:
        return htmx.render("appointments/staff/no_units.html", active_tab="appointments")
    unit = _unit(units)
    the_day = _day()
    first, last = _day_bounds(the_day)
    appointments = list(
        db.session.scalars(
            select(Appointment)
            .options(
                joinedload(Appointment.person), joinedload(Appointment.visit_type), joinedload(Appointment.location)
            )
            .where(
                Appointment.care_unit_id == unit.id,
                Appointment.start >= first,
                Appointment.start < last,
                Appointment.status != AppointmentStatus.ENTERED_IN_ERROR,
                Appointment.replaced_by_id.is_(None),
            )
            .order_by(Appointment.start, Appointment.id)
        )
    )
    policy.audit_unit_list(current_user, [a.person_id for a in appointments], unit.organisation_id, "list_day")
    db.session.commit()
    return htmx.render(
        "appointments/staff/day.html",
        units=units,
        unit=unit,
        day=the_day,
        previous_day=the_day - timedelta(days=1),
        next_day=the_day + timedelta(days=1),
        appointments=appointments,
        notice=request.args.get("ok"),
        active_tab="appointments",
    )


def _staff_appointment(appointment_id: int, action: str) -> Appointment:
    appointment = db.session.get(Appointment, appointment_id)
    if appointment is None or appointment.care_unit_id not in policy.staff_unit_ids(current_user):
        abort(404)
    policy.check_appointment(current_user, appointment.person, appointment, action=action)
    return appointment


def _back_to_day(appointment: Appointment, ok: str) -> Response:
    day = appointment.start.astimezone(clock.NORWAY).date().isoformat()
    return htmx.redirect_to(url_for("appointments_staff.day", enhet=appointment.care_unit_id, dato=day, ok=ok))


@bp.route("/<int:appointment_id>/oppmote", methods=["POST"])
def mark(appointment_id: int) -> Response:
    """Attended or no-show, for a time that has begun."""
    appointment = _staff_appointment(appointment_id, "mark")
    outcome = request.form.get("utfall")
    now = clock.utcnow()
    statuses = {"mott": AppointmentStatus.ATTENDED, "ikke-mott": AppointmentStatus.NO_SHOW}
    if outcome not in statuses or appointment.status not in (
        AppointmentStatus.BOOKED,
        AppointmentStatus.ATTENDED,
        AppointmentStatus.NO_SHOW,
    ):
        abort(400)
    if appointment.start > now:
        db.session.rollback()
        return _back_to_day(appointment, "for-tidlig")
    appointment.status = statuses[outcome]
    appointment.marked_at = now
    db.session.commit()
    return _back_to_day(appointment, "registrert")


@bp.route("/<int:appointment_id>/avbestill", methods=["GET", "POST"])
def cancel(appointment_id: int) -> Response:
    """Cancel for the patient (or because the unit must): the reason goes to the patient, and the
    freed slot is offered to those waiting for an earlier time."""
    appointment = _staff_appointment(appointment_id, "cancel" if request.method == "POST" else "read")
    form = CancelForm()
    if request.method == "POST" and form.validate():
        try:
            cancel_by_staff(current_user, appointment, form.reason.data, clock.utcnow())
        except Refused as refused:
            return refused_page(
                "appointments/staff/cancel.html",
                refused,
                lambda: {"form": form, "appointment": appointment, "active_tab": "appointments"},
            )
        db.session.commit()
        return _back_to_day(appointment, "avbestilt")
    status = 400 if request.method == "POST" else 200
    return htmx.render(
        "appointments/staff/cancel.html", status=status, form=form, appointment=appointment, active_tab="appointments"
    )


# -- Schedules and slots -----------------------------------------------------------------------


@bp.route("/kalendere", methods=["GET", "POST"])
def schedules() -> Response:
    units = _units()
    if not units:
        return htmx.render("appointments/staff/no_units.html", active_tab="appointments")
    unit = _unit(units)
    form = ScheduleForm()
    form.location.choices = [SelectChoice("", _("Ingen fast adresse (video/telefon)"))] + [
        SelectChoice(str(loc.id), loc.name)
        for loc in db.session.scalars(
            select(Location).where(Location.organisation_id == unit.organisation_id).order_by(Location.name)
        )
    ]
    if request.method == "POST" and form.validate():
        schedule = scheduling.create_schedule(unit, form.data_for_schedule())
        db.session.commit()
        return htmx.redirect_to(url_for("appointments_staff.slots", schedule_id=schedule.id, ok="kalender"))
    listed = list(
        db.session.scalars(
            select(Schedule).where(Schedule.care_unit_id == unit.id).order_by(Schedule.active.desc(), Schedule.name)
        )
    )
    return htmx.render(
        "appointments/staff/schedules.html",
        status=400 if request.method == "POST" else 200,
        units=units,
        unit=unit,
        schedules=listed,
        form=form,
        active_tab="appointments",
    )


def _schedule(schedule_id: int) -> Schedule:
    schedule = db.session.get(Schedule, schedule_id)
    if schedule is None or schedule.care_unit_id not in policy.staff_unit_ids(current_user):
        abort(404)
    return schedule


@bp.route("/kalendere/<int:schedule_id>", methods=["GET", "POST"])
def slots(schedule_id: int) -> Response:
    """A schedule's coming slots, and new ones made from a pattern (days, hours, length) inside
    its opening hours; new slots are offered to those waiting first."""
    schedule = _schedule(schedule_id)
    types = list(
        db.session.scalars(
            select(VisitType)
            .where(VisitType.care_unit_id == schedule.care_unit_id, VisitType.active.is_(True))
            .order_by(VisitType.name)
        )
    )
    form = SlotsForm()
    form.visit_type.choices = [SelectChoice(str(t.id), t.name) for t in types]
    now = clock.utcnow()
    error = None
    if request.method == "POST" and form.validate():
        try:
            made = scheduling.make_slots(schedule, form.pattern(), now)
        except Refused as refused:
            db.session.rollback()
            error = refused.message
        else:
            offers.offer_new_capacity(made, now)
            db.session.commit()
            return htmx.redirect_to(
                url_for("appointments_staff.slots", schedule_id=schedule.id, ok="tider", antall=len(made))
            )
    coming = list(
        db.session.scalars(
            select(Slot)
            .options(joinedload(Slot.visit_type))
            .where(Slot.schedule_id == schedule.id, Slot.start >= now)
            .order_by(Slot.start, Slot.id)
            .limit(200)
        )
    )
    return htmx.render(
        "appointments/staff/slots.html",
        status=409 if error else (400 if request.method == "POST" else 200),
        error=error,
        schedule=schedule,
        form=form,
        slots=coming,
        made=request.args.get("antall", type=db_int),
        notice=request.args.get("ok"),
        active_tab="appointments",
    )


# -- The waiting list and offers -----------------------------------------------------------------


@bp.route("/venteliste", methods=["GET", "POST"])
def waitlist() -> Response:
    units = _units()
    if not units:
        return htmx.render("appointments/staff/no_units.html", active_tab="appointments")
    unit = _unit(units)
    if request.method == "POST":
        form = PriorityForm()
        entry = db.session.get(WaitlistEntry, request.form.get("entry", type=db_int) or 0)
        if entry is None or entry.care_unit_id != unit.id or not entry.active:
            abort(404)
        policy.check_appointment(current_user, entry.person, entry.appointment, action="prioritise")
        if form.validate():
            entry.priority = form.priority.data
            db.session.commit()
            return htmx.redirect_to(url_for("appointments_staff.waitlist", enhet=unit.id, ok="prioritet"))
        db.session.rollback()
        return htmx.redirect_to(url_for("appointments_staff.waitlist", enhet=unit.id, ok="ugyldig"))
    entries = list(
        db.session.scalars(
            select(WaitlistEntry)
            .options(joinedload(WaitlistEntry.person), joinedload(WaitlistEntry.appointment))
            .where(WaitlistEntry.care_unit_id == unit.id, WaitlistEntry.active)
            .order_by(WaitlistEntry.priority.desc(), WaitlistEntry.created_at, WaitlistEntry.id)
            .limit(500)
        )
    )
    policy.audit_unit_list(current_user, [e.person_id for e in entries], unit.organisation_id, "list_waitlist")
    db.session.commit()
    return htmx.render(
        "appointments/staff/waitlist.html",
        units=units,
        unit=unit,
        entries=entries,
        notice=request.args.get("ok"),
        active_tab="appointments",
    )


@bp.route("/tid/<int:slot_id>/ta-ut", methods=["POST"])
def block_slot(slot_id: int) -> Response:
    """Take a free time out of use (made by mistake, the practitioner is away). Only a time nobody
    holds and nobody is being offered: one conditional UPDATE, so a booking at the same moment wins
    or loses whole. A blocked time is never offered or shown to patients, and can be made again."""
    slot = db.session.get(Slot, slot_id)
    if slot is None or slot.schedule.care_unit_id not in policy.staff_unit_ids(current_user):
        abort(404)
    now = clock.utcnow()
    taken_out = db.session.execute(
        update(Slot)
        .where(
            Slot.id == slot.id,
            Slot.state == SlotState.FREE,
            or_(Slot.offered_until.is_(None), Slot.offered_until <= now),
        )
        .values(state=SlotState.BLOCKED, offered_until=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    audit(
        "block_slot",
        actor_user_id=current_user.id,
        object_type="slot",
        object_id=slot.id,
        outcome="ok" if taken_out else "denied",
        organisation_id=slot.schedule.care_unit.organisation_id,
    )
    db.session.commit()
    notice = "tatt-ut" if taken_out else "ikke-tatt-ut"
    return htmx.redirect_to(url_for("appointments_staff.slots", schedule_id=slot.schedule_id, ok=notice))


@bp.route("/tid/<int:slot_id>/tilbud")
def offer_log(slot_id: int) -> Response:
    slot = db.session.get(Slot, slot_id)
    if slot is None or slot.schedule.care_unit_id not in policy.staff_unit_ids(current_user):
        abort(404)
    log = offers.offer_log(slot)
    policy.audit_unit_list(
        current_user, [o.person_id for o in log], slot.schedule.care_unit.organisation_id, "read_offer_log"
    )
    db.session.commit()
    return htmx.render("appointments/staff/offer_log.html", slot=slot, log=log, active_tab="appointments")
