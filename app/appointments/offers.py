"""Earlier-time offers: a freed slot goes to the waiting patients it fits, a few at a time.

When a slot frees up (a cancellation, a moved time, an accepted offer that releases the old time,
new capacity), ``offer_slot`` finds the waiting-list entries it fits — same visit type and unit,
earlier than their time, on a day and within the hours they can come, with at least the notice
they asked for — ranks them (staff priority, then how long they have waited) and offers it to
the first few (APPOINTMENT_OFFER_BATCH) until the offers expire: the shorter of
APPOINTMENT_OFFER_MAX_MINUTES and half the time left to the slot. While the round is open the slot
is held from self-booking.

The first to accept gets the slot and their old time is released, which starts a round for that
one. The others' offers are marked taken in the same transaction. Declining or letting an offer
expire keeps the original time; when every offer of a round is answered or expired, the next round
goes to the next patients, and when nobody is left the slot is free for anyone to book.

Exactly one winner: every accept of a slot first locks the slot's row (the same order for all, so
they queue rather than deadlock), then moves its own offer from open to accepted and the slot from
free to booked with conditional UPDATEs that only one transaction can win; a partial unique index
on booked appointments' slot_id is the database's last word.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import exists, func, select, update

from app.appointments.models import (
    Appointment,
    Channel,
    Offer,
    OfferState,
    Slot,
    SlotState,
    WaitlistEntry,
)
from app.appointments.services import Refused, _announce, _overlaps, _take, local, move_to
from app.auth.models import User
from app.db import db
from app.notify import events


def _lock(slot_id: int) -> None:
    """Queue behind anyone else changing this slot's offers (PostgreSQL: the row; SQLite: the
    database, taken with the first write)."""
    if db.engine.dialect.name == "postgresql":
        db.session.execute(select(Slot.id).where(Slot.id == slot_id).with_for_update())
    else:
        db.session.execute(update(Slot).where(Slot.id == slot_id).values(state=Slot.state))


def answer_time_starts(now: datetime) -> datetime:
    """``now``, or the end of the night when it is night: nobody is asked to answer in their sleep.
    The night is the default quiet hours (22–07 Norwegian time), when an offer's push waits for
    the morning too, measured by the same rule (``events.next_allowed``)."""
    return events.next_allowed(now, events.default_settings(0))


def expiry_for(slot: Slot, now: datetime) -> datetime:
    """The shorter of APPOINTMENT_OFFER_MAX_MINUTES from when the answer time starts (the morning,
    for an offer made at night) and half the time left to the slot (a slot early in the morning
    cannot wait for anyone to wake up: it is offered, then free for anyone, as before)."""
    longest = timedelta(minutes=current_app.config["APPOINTMENT_OFFER_MAX_MINUTES"])
    return min(answer_time_starts(now) + longest, now + (slot.start - now) / 2)


def candidates(slot: Slot, now: datetime, exclude_person_ids: set[int], limit: int) -> list[WaitlistEntry]:
    """The waiting-list entries this slot fits, best first, not offered it before."""
    start, end = local(slot.start), local(slot.end)
    hours_left = (slot.start - now).total_seconds() / 3600
    query = (
        select(WaitlistEntry)
        .where(
            WaitlistEntry.active,
            WaitlistEntry.visit_type_id == slot.visit_type_id,
            WaitlistEntry.care_unit_id == slot.schedule.care_unit_id,
            WaitlistEntry.current_start > slot.start,
            WaitlistEntry.notice_hours <= hours_left,
            WaitlistEntry.weekdays.op("&")(1 << start.weekday()) != 0,
            WaitlistEntry.earliest <= start.time().replace(tzinfo=None),
            WaitlistEntry.latest >= end.time().replace(tzinfo=None),
            ~exists().where(Offer.slot_id == slot.id, Offer.waitlist_entry_id == WaitlistEntry.id),
        )
        .order_by(WaitlistEntry.priority.desc(), WaitlistEntry.created_at, WaitlistEntry.id)
        .limit(limit * 4 + len(exclude_person_ids))
    )
    if exclude_person_ids:
        query = query.where(WaitlistEntry.person_id.not_in(sorted(exclude_person_ids)))
    chosen: list[WaitlistEntry] = []
    people: set[int] = set()
    for entry in db.session.scalars(query):
        if entry.person_id in people or _overlaps(entry.person_id, slot.start, slot.end, ignore=entry.appointment_id):
            continue
        chosen.append(entry)
        people.add(entry.person_id)
        if len(chosen) == limit:
            break
    return chosen


def offer_slot(slot: Slot, now: datetime, exclude_person_ids: set[int] | None = None) -> list[Offer]:
    """Start the next round of offers for a free slot (nothing if it is not free, too soon, or
    already in an open round). The offers, their events and the slot's hold go into the caller's
    transaction."""
    lead = timedelta(minutes=current_app.config["APPOINTMENT_OFFER_MIN_LEAD_MINUTES"])
    if slot.state is not SlotState.FREE or slot.start - now < lead:
        return []
    open_round = db.session.scalar(
        select(func.count()).where(Offer.slot_id == slot.id, Offer.state == OfferState.OPEN, Offer.expires_at > now)
    )
    if open_round:
        return []
    batch = max(1, current_app.config["APPOINTMENT_OFFER_BATCH"])
    entries = candidates(slot, now, set(exclude_person_ids or ()), batch)
    if not entries:
        slot.offered_until = None
        return []
    expires = expiry_for(slot, now)
    last_round = db.session.scalar(select(func.max(Offer.round)).where(Offer.slot_id == slot.id)) or 0
    made = [
        Offer(
            slot_id=slot.id,
            waitlist_entry_id=entry.id,
            appointment_id=entry.appointment_id,
            person_id=entry.person_id,
            round=last_round + 1,
            rank=rank,
            state=OfferState.OPEN,
            expires_at=expires,
            created_at=now,
        )
        for rank, entry in enumerate(entries, start=1)
    ]
    db.session.add_all(made)
    slot.offered_until = expires
    db.session.flush()
    events.emit_many(
        [
            events.Change(
                offer.person_id,
                "appointment_offer",
                object_type="offer",
                object_id=offer.id,
                url=f"/timer/tilbud/{offer.id}",
                expires_at=expires,
            )
            for offer in made
        ]
    )
    return made


def next_round_if_closed(slot: Slot, now: datetime) -> list[Offer]:
    """Once no offer of a round is open any more and the slot is still free, the next round."""
    if slot.state is not SlotState.FREE:
        return []
    return offer_slot(slot, now)


def end_waiting_for(appointment: Appointment, now: datetime) -> None:
    """The appointment leaves the waiting list; offers still open to it are withdrawn, and their
    slots go on to the next patients."""
    db.session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.appointment_id == appointment.id, WaitlistEntry.active)
        .values(active=False, ended_at=now)
        .execution_options(synchronize_session=False)
    )
    withdrawn = db.session.execute(
        update(Offer)
        .where(Offer.appointment_id == appointment.id, Offer.state == OfferState.OPEN)
        .values(state=OfferState.WITHDRAWN, answered_at=now)
        .returning(Offer.id, Offer.slot_id)
        .execution_options(synchronize_session=False)
    ).all()
    if not withdrawn:
        return
    events.stop_pushes("offer", [offer_id for offer_id, _slot in withdrawn])
    for slot_id in sorted({slot_id for _offer, slot_id in withdrawn}):
        slot = db.session.get(Slot, slot_id)
        if slot is not None:
            db.session.refresh(slot)
            next_round_if_closed(slot, now)


def why_not(offer: Offer, now: datetime) -> str:
    """Why an offer cannot be accepted any more, as the patient reads it."""
    if offer.state is OfferState.TAKEN:
        return _("Noen andre takket ja først. Du beholder timen du har.")
    if offer.state is OfferState.DECLINED:
        return _("Du har takket nei til dette tilbudet. Du beholder timen du har.")
    if offer.state is OfferState.WITHDRAWN:
        return _("Tilbudet gjelder ikke lenger, fordi timen din er endret.")
    if offer.state is OfferState.EXPIRED or offer.expires_at <= now:
        return _("Tilbudet har gått ut. Du beholder timen du har.")
    return _("Tilbudet kan ikke brukes.")


def _answer(offer: Offer, state: OfferState, now: datetime) -> bool:
    """Queue behind others answering offers of this slot, then move this offer from open (and not
    expired) to ``state``. False, and nothing changed, if it was not open any more."""
    _lock(offer.slot_id)
    answered = db.session.execute(
        update(Offer)
        .where(Offer.id == offer.id, Offer.state == OfferState.OPEN, Offer.expires_at > now)
        .values(state=state, answered_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(offer)
    return bool(answered)


def accept(viewer: User, offer: Offer, now: datetime) -> Appointment:
    """Take the offered slot: the new time is booked and the old one released, or nothing changes
    and ``Refused`` says why. Accepting twice gives the same new time."""
    if not _answer(offer, OfferState.ACCEPTED, now):
        if offer.state is OfferState.ACCEPTED:  # a double tap: the first one did it
            old = db.session.get(Appointment, offer.appointment_id)
            if old is not None and old.replaced_by_id is not None:
                return db.session.get(Appointment, old.replaced_by_id)
        raise Refused(why_not(offer, now))
    old = offer.appointment
    slot = offer.slot
    db.session.refresh(slot)
    if not old.is_booked or old.start <= now:
        raise Refused(_("Tilbudet gjelder ikke lenger, fordi timen din er endret."))
    if not _take(slot, now, for_offer=True):
        raise Refused(_("Noen andre takket ja først. Du beholder timen du har."))
    others = db.session.execute(
        update(Offer)
        .where(Offer.slot_id == slot.id, Offer.state == OfferState.OPEN)
        .values(state=OfferState.TAKEN, answered_at=now)
        .returning(Offer.id)
        .execution_options(synchronize_session=False)
    ).scalars()
    events.stop_pushes("offer", list(others))
    new = move_to(old, slot, now, via=Channel.OFFER, viewer=viewer)
    _announce(new, "appointment_booked", viewer)
    return new


def decline(offer: Offer, now: datetime) -> None:
    """Say no: the original time stays; if the round is over, the next patients get the slot."""
    if not _answer(offer, OfferState.DECLINED, now):
        if offer.state is OfferState.DECLINED:
            return
        raise Refused(why_not(offer, now))
    slot = offer.slot
    db.session.refresh(slot)
    next_round_if_closed(slot, now)


def expire_due(now: datetime) -> int:
    """Offers whose time ran out expire, and their slots go to the next round. Returns how many."""
    expired = db.session.execute(
        update(Offer)
        .where(Offer.state == OfferState.OPEN, Offer.expires_at <= now)
        .values(state=OfferState.EXPIRED)
        .returning(Offer.slot_id)
        .execution_options(synchronize_session=False)
    ).scalars()
    slot_ids = sorted(set(expired))
    for slot_id in slot_ids:
        _lock(slot_id)
        slot = db.session.get(Slot, slot_id)
        db.session.refresh(slot)
        next_round_if_closed(slot, now)
    return len(slot_ids)


def offer_new_capacity(slots: list[Slot], now: datetime) -> int:
    """New free slots (staff added capacity): each is offered to those waiting first."""
    return sum(len(offer_slot(slot, now)) > 0 for slot in slots)


def offer_log(slot: Slot) -> list[Offer]:
    return list(
        db.session.scalars(select(Offer).where(Offer.slot_id == slot.id).order_by(Offer.round, Offer.rank, Offer.id))
    )
