"""What patients and staff do with times: list, book, cancel, move, ask for an earlier one.

Plain functions on objects the access policy has already let through (routes call
``policy.check_appointment`` first). A refused action raises ``Refused`` with a message in plain
language, and changes nothing; the caller commits what succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import joinedload

from app import clock
from app.access import policy
from app.appointments.models import (
    Appointment,
    AppointmentStatus,
    Channel,
    Location,
    Mode,
    Offer,
    OfferState,
    Slot,
    SlotState,
    VisitType,
    WaitlistEntry,
)
from app.auth.models import User
from app.db import db
from app.notify import events
from app.people.models import CareUnit, Person, age_on
from app.refusal import Refused


def local(moment: datetime) -> datetime:
    return moment.astimezone(clock.NORWAY)


# -- Reading ---------------------------------------------------------------------------------

_DETAIL = (
    joinedload(Appointment.organisation),
    joinedload(Appointment.care_unit),
    joinedload(Appointment.visit_type),
    joinedload(Appointment.location),
)


def upcoming(patient: Person, scope: ColumnElement[bool], now: datetime, limit: int = 100) -> list[Appointment]:
    """Booked times not yet over, soonest first, from every organisation in ``scope``."""
    return list(
        db.session.scalars(
            select(Appointment)
            .options(*_DETAIL)
            .where(
                Appointment.person_id == patient.id,
                scope,
                Appointment.status == AppointmentStatus.BOOKED,
                Appointment.start >= now - timedelta(hours=12),
            )
            .order_by(Appointment.start, Appointment.id)
            .limit(limit)
        )
    )


def past(patient: Person, scope: ColumnElement[bool], now: datetime, limit: int = 50) -> list[Appointment]:
    """Times that are over or were cancelled, newest first (a moved time shows only as its new one)."""
    return list(
        db.session.scalars(
            select(Appointment)
            .options(*_DETAIL)
            .where(
                Appointment.person_id == patient.id,
                scope,
                Appointment.replaced_by_id.is_(None),
                Appointment.status != AppointmentStatus.ENTERED_IN_ERROR,
                or_(Appointment.status != AppointmentStatus.BOOKED, Appointment.start < now - timedelta(hours=12)),
            )
            .order_by(Appointment.start.desc(), Appointment.id.desc())
            .limit(limit)
        )
    )


def open_offers(patient: Person, now: datetime) -> list[Offer]:
    return list(
        db.session.scalars(
            select(Offer)
            .options(joinedload(Offer.slot).joinedload(Slot.visit_type), joinedload(Offer.appointment))
            .where(Offer.person_id == patient.id, Offer.state == OfferState.OPEN, Offer.expires_at > now)
            .order_by(Offer.expires_at)
        )
    )


def waiting_entry(appointment: Appointment) -> WaitlistEntry | None:
    return db.session.scalar(
        select(WaitlistEntry).where(WaitlistEntry.appointment_id == appointment.id, WaitlistEntry.active)
    )


def cutoff_hours(appointment: Appointment) -> int:
    if appointment.visit_type is not None and appointment.visit_type.cancel_cutoff_hours is not None:
        return appointment.visit_type.cancel_cutoff_hours
    return current_app.config["APPOINTMENT_CANCEL_CUTOFF_HOURS"]


def cancel_deadline(appointment: Appointment) -> datetime:
    return appointment.start - timedelta(hours=cutoff_hours(appointment))


def patient_may_change(appointment: Appointment, now: datetime) -> bool:
    """May the patient cancel or move it themselves now (booked, not past the cut-off)?"""
    return appointment.is_booked and now < cancel_deadline(appointment)


def contact_phone(appointment: Appointment) -> str | None:
    """Whom to call about this time (the place's number)."""
    return appointment.location.phone if appointment.location is not None else None


def map_url(location: Location | None) -> str | None:
    """A link to the place on OpenStreetMap (a link the patient follows, not a request the page makes)."""
    if location is None:
        return None
    if location.latitude is not None and location.longitude is not None:
        lat, lon = f"{location.latitude:.5f}", f"{location.longitude:.5f}"
        return f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=17/{lat}/{lon}"
    if location.one_line:
        from urllib.parse import quote

        return f"https://www.openstreetmap.org/search?query={quote(location.one_line)}"
    return None


# -- Self-booking ----------------------------------------------------------------------------


def age_allows(visit_type: VisitType, person: Person, on: date) -> bool:
    age = age_on(person.birth_date, on)
    if visit_type.min_age is not None and age < visit_type.min_age:
        return False
    return visit_type.max_age is None or age <= visit_type.max_age


def age_rule_text(visit_type: VisitType) -> str | None:
    if visit_type.min_age is not None and visit_type.max_age is not None:
        return _("For deg som er %(low)d–%(high)d år.", low=visit_type.min_age, high=visit_type.max_age)
    if visit_type.min_age is not None:
        return _("For deg som er %(low)d år eller eldre.", low=visit_type.min_age)
    if visit_type.max_age is not None:
        return _("For deg som er %(high)d år eller yngre.", high=visit_type.max_age)
    return None


def bookable_types(patient: Person, today: date) -> list[VisitType]:
    """The visit types the patient may book themselves, age rules applied, by organisation and name."""
    types = db.session.scalars(
        select(VisitType)
        .options(joinedload(VisitType.care_unit).joinedload(CareUnit.organisation))
        .where(VisitType.active.is_(True), VisitType.self_bookable.is_(True), VisitType.requires_referral.is_(False))
        .order_by(VisitType.name, VisitType.id)
    ).all()
    return [t for t in types if age_allows(t, patient, today)]


def _searchable(now: datetime) -> ColumnElement[bool]:
    """Free slots patients may take: not held for an offer round, not too soon to get there."""
    lead = timedelta(minutes=current_app.config["APPOINTMENT_OFFER_MIN_LEAD_MINUTES"])
    return and_(
        Slot.state == SlotState.FREE,
        Slot.start >= now + lead,
        or_(Slot.offered_until.is_(None), Slot.offered_until <= now),
    )


def free_slots(
    visit_type: VisitType, now: datetime, *, after: tuple[datetime, int] | None = None, limit: int = 20
) -> list[Slot]:
    """The next free times of a visit type, soonest first; ``after`` (start, id) continues a page."""
    horizon = now + timedelta(days=current_app.config["APPOINTMENT_BOOKING_DAYS"])
    query = (
        select(Slot)
        .options(joinedload(Slot.location), joinedload(Slot.schedule))
        .where(Slot.visit_type_id == visit_type.id, _searchable(now), Slot.start < horizon)
        .order_by(Slot.start, Slot.id)
        .limit(limit)
    )
    if after is not None:
        # "start >= …" first, so the index range starts there (the OR alone is only a filter).
        query = query.where(
            Slot.start >= after[0], or_(Slot.start > after[0], and_(Slot.start == after[0], Slot.id > after[1]))
        )
    return list(db.session.scalars(query))


def _slot_for_booking(slot_id: int | None, now: datetime) -> Slot:
    slot = db.session.get(Slot, slot_id) if slot_id else None
    if slot is None:
        raise Refused(_("Vi finner ikke den timen. Velg en ledig tid fra listen."))
    if slot.start <= now:
        raise Refused(_("Den tiden har allerede vært. Velg en ledig tid fra listen."))
    if slot.state is not SlotState.FREE or (slot.offered_until is not None and slot.offered_until > now):
        raise Refused(_("Noen andre har nettopp fått den timen. Velg en annen ledig tid."))
    if not slot.schedule.active or not slot.schedule.is_open(local(slot.start), slot.minutes):
        raise Refused(_("Den tiden er utenfor åpningstiden. Velg en ledig tid fra listen."))
    return slot


def _overlaps(person_id: int, start: datetime, end: datetime, ignore: int | None = None) -> bool:
    query = select(Appointment.id, Appointment.start, Appointment.minutes).where(
        Appointment.person_id == person_id,
        Appointment.status == AppointmentStatus.BOOKED,
        Appointment.start < end,
        Appointment.start > start - timedelta(hours=12),
    )
    for appointment_id, other_start, minutes in db.session.execute(query):
        if appointment_id != ignore and other_start + timedelta(minutes=minutes) > start:
            return True
    return False


def _overlap_message(viewer: User | None, patient: Person) -> str:
    """The time clashes with another of the patient's: said so to whoever may see all their times;
    a parent of a 12–16 year old, who may not see the hospital's, is not told that one exists."""
    if viewer is not None and not policy.sees_every_time(viewer, patient):
        return _("Den tiden kan ikke bestilles. Velg en annen ledig tid.")
    return _("Du har allerede en time på det tidspunktet. Velg en annen tid.")


def _take(slot: Slot, now: datetime, *, for_offer: bool = False) -> bool:
    """The one step only one booking can win: free → booked, in the database."""
    condition = [Slot.id == slot.id, Slot.state == SlotState.FREE]
    if not for_offer:
        condition.append(or_(Slot.offered_until.is_(None), Slot.offered_until <= now))
    won = db.session.execute(
        update(Slot)
        .where(*condition)
        .values(state=SlotState.BOOKED, offered_until=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if won:
        db.session.refresh(slot)
    return bool(won)


def _appointment_on(slot: Slot, patient: Person, via: Channel, viewer: User | None) -> Appointment:
    schedule = slot.schedule
    appointment = Appointment(
        person_id=patient.id,
        organisation_id=schedule.care_unit.organisation_id,
        care_unit_id=schedule.care_unit_id,
        slot_id=slot.id,
        visit_type_id=slot.visit_type_id,
        title=slot.visit_type.name,
        start=slot.start,
        minutes=slot.minutes,
        mode=slot.mode,
        # A video or phone time has no address to go to.
        location_id=(slot.location_id or schedule.location_id) if slot.mode is Mode.IN_PERSON else None,
        practitioner=schedule.practitioner,
        status=AppointmentStatus.BOOKED,
        booked_via=via,
        booked_by_user_id=viewer.id if viewer is not None else None,
        booked_by_relation=policy.acting_as(viewer, patient),
    )
    db.session.add(appointment)
    db.session.flush()
    return appointment


def book(viewer: User, patient: Person, slot_id: int | None, now: datetime) -> Appointment:
    """A patient (or their parent) books a free slot of a type they may book themselves."""
    if slot_id and db.session.scalar(
        select(Appointment.id).where(
            Appointment.slot_id == slot_id,
            Appointment.person_id == patient.id,
            Appointment.status == AppointmentStatus.BOOKED,
        )
    ):
        # Back to the page after booking, and "Bestill timen" again: not "someone else got it".
        raise Refused(_("Denne timen er allerede bestilt til deg. Du finner den under Timer."))
    slot = _slot_for_booking(slot_id, now)
    visit_type = slot.visit_type
    if not visit_type.bookable_by_patients:
        raise Refused(_("Denne timen kan du ikke bestille selv. Ta kontakt med stedet for å få time."))
    if not age_allows(visit_type, patient, local(slot.start).date()):
        raise Refused(age_rule_text(visit_type) or _("Denne timen er ikke for din aldersgruppe."))
    if _overlaps(patient.id, slot.start, slot.end):
        raise Refused(_overlap_message(viewer, patient))
    if not _take(slot, now):
        raise Refused(_("Noen andre har nettopp fått den timen. Velg en annen ledig tid."))
    appointment = _appointment_on(slot, patient, Channel.PATIENT, viewer)
    _announce(appointment, "appointment_booked", viewer)
    return appointment


def _announce(appointment: Appointment, kind: str, actor: User | None = None) -> None:
    """The event for a time; ``actor``: the account that did it itself (told quietly, see emit)."""
    events.emit(
        appointment.person_id,
        kind,
        object_type="appointment",
        object_id=appointment.id,
        url=f"/timer/{appointment.id}",
        actor_account_id=actor.id if actor is not None else None,
    )


# -- Cancelling and moving -------------------------------------------------------------------


def _release(appointment: Appointment, now: datetime, *, via: Channel, viewer: User | None, reason: str | None) -> None:
    """The appointment is cancelled and its slot freed, which starts a round of earlier-time
    offers for it; its waiting-list entry and any offers made to it end."""
    from app.appointments import offers

    appointment.status = AppointmentStatus.CANCELLED
    appointment.cancelled_at = now
    appointment.cancelled_via = via
    appointment.cancelled_by_user_id = viewer.id if viewer is not None else None
    appointment.cancelled_by_relation = policy.acting_as(viewer, appointment.person)
    appointment.cancel_reason = (reason or "").strip()[:300] or None
    offers.end_waiting_for(appointment, now)
    slot = appointment.slot
    if slot is not None and slot.state is SlotState.BOOKED:
        slot.state = SlotState.FREE
        slot.offered_until = None
        db.session.flush()
        offers.offer_slot(slot, now, exclude_person_ids={appointment.person_id})


def cancel_by_patient(viewer: User, appointment: Appointment, now: datetime) -> None:
    if not appointment.is_booked:
        raise Refused(_("Timen er allerede avbestilt eller over."))
    if appointment.start <= now:
        raise Refused(_("Timen har allerede vært."))
    if not patient_may_change(appointment, now):
        raise Refused(_late_message(appointment))
    _release(appointment, now, via=Channel.PATIENT, viewer=viewer, reason=None)


def cancel_by_staff(viewer: User, appointment: Appointment, reason: str, now: datetime) -> None:
    """Staff cancel on the patient's behalf (or because the unit must): the patient hears of it."""
    if not appointment.is_booked:
        raise Refused(_("Timen er allerede avbestilt eller over."))
    if appointment.start <= now:
        raise Refused(_("Timen har allerede begynt. Registrer heller om pasienten møtte."))
    if not reason.strip():
        raise Refused(_("Skriv hvorfor timen avbestilles. Pasienten får beskjed."))
    _release(appointment, now, via=Channel.STAFF, viewer=viewer, reason=reason)
    _announce(appointment, "appointment_changed")


def _late_message(appointment: Appointment) -> str:
    phone = contact_phone(appointment)
    hours = cutoff_hours(appointment)
    if phone:
        return _(
            "Det er mindre enn %(hours)d timer til timen, så du kan ikke endre den her. Ring %(phone)s.",
            hours=hours,
            phone=phone,
        )
    return _(
        "Det er mindre enn %(hours)d timer til timen, så du kan ikke endre den her. Ring %(place)s.",
        hours=hours,
        place=appointment.organisation.name,
    )


def reschedule(viewer: User, appointment: Appointment, slot_id: int | None, now: datetime) -> Appointment:
    """Move a time to another free slot of the same kind at the same unit, in one transaction:
    the new time is taken first, then the old one freed (and offered to those waiting)."""
    if not appointment.is_booked or appointment.start <= now:
        raise Refused(_("Bare kommende timer kan flyttes."))
    if not patient_may_change(appointment, now):
        raise Refused(_late_message(appointment))
    slot = _slot_for_booking(slot_id, now)
    if slot.visit_type_id != appointment.visit_type_id or slot.schedule.care_unit_id != appointment.care_unit_id:
        raise Refused(_("Du kan bare flytte timen til en ledig tid av samme slag, på samme sted."))
    if _overlaps(appointment.person_id, slot.start, slot.end, ignore=appointment.id):
        raise Refused(_overlap_message(viewer, appointment.person))
    if not _take(slot, now):
        raise Refused(_("Noen andre har nettopp fått den timen. Velg en annen ledig tid."))
    return move_to(appointment, slot, now, via=Channel.PATIENT, viewer=viewer)


def move_to(old: Appointment, slot: Slot, now: datetime, *, via: Channel, viewer: User | None) -> Appointment:
    """The time moves to ``slot`` (already taken for it): a new appointment there with the old
    one's instructions, and the old one released (its slot offered on) and pointing to the new."""
    new = _appointment_on(slot, old.person, via, viewer)
    new.preparation = old.preparation
    _release(old, now, via=via, viewer=viewer, reason=None)
    old.replaced_by_id = new.id
    return new


def reschedule_options(appointment: Appointment, now: datetime, limit: int = 20) -> list[Slot]:
    if appointment.visit_type is None:
        return []
    return [
        s
        for s in free_slots(appointment.visit_type, now, limit=limit + 5)
        if s.schedule.care_unit_id == appointment.care_unit_id
    ][:limit]


# -- The waiting list ------------------------------------------------------------------------


@dataclass
class Wish:
    weekdays: int
    earliest: time
    latest: time
    notice_hours: int


def want_earlier(appointment: Appointment, wish: Wish, now: datetime) -> WaitlistEntry:
    """Put (or update) the appointment on the waiting list for an earlier time."""
    if not appointment.is_booked or appointment.start <= now:
        raise Refused(_("Bare kommende timer kan få tilbud om tidligere time."))
    if appointment.visit_type_id is None or appointment.care_unit_id is None:
        raise Refused(_("Denne timen kan ikke flyttes fram her. Ta kontakt med stedet."))
    if not wish.weekdays:
        raise Refused(_("Velg minst én dag du kan komme."))
    if wish.latest <= wish.earliest:
        raise Refused(_("«Til» må være senere enn «fra»."))
    span = datetime.combine(date.min, wish.latest) - datetime.combine(date.min, wish.earliest)
    if span < timedelta(minutes=appointment.minutes):
        # The time must end by "til": a shorter window could never be offered anything.
        raise Refused(
            _(
                "Tidsrommet må være minst %(n)d minutter, så lenge timen varer. Velg et senere «til».",
                n=appointment.minutes,
            )
        )
    entry = waiting_entry(appointment)
    if entry is None:
        entry = WaitlistEntry(
            appointment_id=appointment.id,
            person_id=appointment.person_id,
            visit_type_id=appointment.visit_type_id,
            care_unit_id=appointment.care_unit_id,
            current_start=appointment.start,
            created_at=now,
        )
        db.session.add(entry)
    entry.weekdays, entry.earliest, entry.latest = wish.weekdays, wish.earliest, wish.latest
    entry.notice_hours = wish.notice_hours
    db.session.flush()
    return entry


def stop_waiting(appointment: Appointment, now: datetime) -> None:
    from app.appointments import offers

    offers.end_waiting_for(appointment, now)
