"""Appointments: where and what (locations, visit types), when (schedules, opening hours, slots),
who has which time (appointments), who wants an earlier one (waiting list) and who was offered
a freed slot (offers).

Exactly one appointment can hold a slot: booking is a conditional UPDATE of the slot (free → booked)
that only one transaction can win, and a partial unique index on appointment.slot_id for booked
appointments makes a double booking impossible even for code that forgets the first.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import db, now_default, str_enum
from app.people.models import CareUnit, Organisation, Person


class Mode(StrEnum):
    IN_PERSON = "in_person"
    VIDEO = "video"
    PHONE = "phone"


class SlotState(StrEnum):
    FREE = "free"
    BOOKED = "booked"
    BLOCKED = "blocked"  # taken out of use by staff


class AppointmentStatus(StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"
    ATTENDED = "attended"
    NO_SHOW = "no_show"
    ENTERED_IN_ERROR = "entered_in_error"  # the source system withdrew it


class Channel(StrEnum):
    """Who made a booking or a cancellation."""

    PATIENT = "patient"
    STAFF = "staff"
    OFFER = "offer"  # an earlier-time offer the patient accepted
    SOURCE = "source"  # a hospital system, through FHIR


class OfferState(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    TAKEN = "taken"  # someone else in the round accepted first
    WITHDRAWN = "withdrawn"  # the slot or the patient's appointment changed meanwhile


class Location(db.Model):
    """A place appointments happen: an address patients find on a map."""

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(200))
    postal_code: Mapped[str | None] = mapped_column(String(10))
    city: Mapped[str | None] = mapped_column(String(100))
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    directions: Mapped[str | None] = mapped_column(Text)  # "Inngang B, 2. etasje"
    phone: Mapped[str | None] = mapped_column(String(30))  # whom to call about a time here
    created_at: Mapped[datetime] = mapped_column(default=now_default)

    organisation: Mapped[Organisation] = relationship()

    @property
    def one_line(self) -> str:
        place = " ".join(p for p in (self.postal_code, self.city) if p)
        return ", ".join(p for p in (self.address, place) if p)


class VisitType(db.Model):
    """What an appointment is for, at one care unit: its length, modes, who may book it themselves,
    how to prepare and what it costs."""

    __tablename__ = "visit_type"

    id: Mapped[int] = mapped_column(primary_key=True)
    care_unit_id: Mapped[int] = mapped_column(ForeignKey("care_unit.id"), index=True)
    code: Mapped[str | None] = mapped_column(String(64))  # the source system's code, if any
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    preparation: Mapped[str | None] = mapped_column(Text)  # "Ta med ..."
    price_nok: Mapped[int | None]  # egenandel; None: not stated, 0: free of charge
    price_note: Mapped[str | None] = mapped_column(String(300))  # "Gratis under 16 år"
    minutes: Mapped[int] = mapped_column(Integer, default=30)
    modes: Mapped[str] = mapped_column(String(60), default=Mode.IN_PERSON.value)  # comma-separated Mode values
    self_bookable: Mapped[bool] = mapped_column(Boolean, default=False)
    requires_referral: Mapped[bool] = mapped_column(Boolean, default=False)
    min_age: Mapped[int | None]
    max_age: Mapped[int | None]  # inclusive: 12–25 means up to the day before the 26th birthday
    cancel_cutoff_hours: Mapped[int | None]  # None: the region's default
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=now_default)

    care_unit: Mapped[CareUnit] = relationship()

    @property
    def mode_list(self) -> list[Mode]:
        return [Mode(m) for m in self.modes.split(",") if m]

    @property
    def bookable_by_patients(self) -> bool:
        return self.active and self.self_bookable and not self.requires_referral


class Schedule(db.Model):
    """A bookable calendar of one care unit (a room, a practitioner, a group session) with its
    opening hours; slots are made inside them."""

    id: Mapped[int] = mapped_column(primary_key=True)
    care_unit_id: Mapped[int] = mapped_column(ForeignKey("care_unit.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    practitioner: Mapped[str | None] = mapped_column(String(200))  # who patients meet, as shown
    location_id: Mapped[int | None] = mapped_column(ForeignKey("location.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    source_system: Mapped[str | None] = mapped_column(String(100))
    source_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=now_default)

    care_unit: Mapped[CareUnit] = relationship()
    location: Mapped[Location | None] = relationship()
    hours: Mapped[list[OpeningHours]] = relationship(
        back_populates="schedule", order_by="(OpeningHours.weekday, OpeningHours.opens)", cascade="all, delete-orphan"
    )

    def is_open(self, start_local: datetime, minutes: int) -> bool:
        """Does a time of ``minutes`` from ``start_local`` (Norwegian wall time) fit inside one of
        the opening periods of its weekday? (A period never runs past midnight.)"""
        end_local = start_local + timedelta(minutes=minutes)
        if end_local.date() != start_local.date():
            return False
        return any(
            p.weekday == start_local.weekday() and p.opens <= start_local.time() and end_local.time() <= p.closes
            for p in self.hours
        )


class OpeningHours(db.Model):
    """One opening period of a schedule on a weekday (0 = Monday), Norwegian wall time."""

    __tablename__ = "opening_hours"

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedule.id", ondelete="CASCADE"), index=True)
    weekday: Mapped[int]
    opens: Mapped[time]
    closes: Mapped[time]

    schedule: Mapped[Schedule] = relationship(back_populates="hours")


class Slot(db.Model):
    """A time in a schedule that one appointment can have."""

    __table_args__ = (
        # The free-time search: a visit type's free slots from now on, soonest first; with id, so the
        # next page's keyset (start, id) is an index range in PostgreSQL's generic plan too.
        Index("ix_slot_search", "visit_type_id", "state", "start", "id"),
        Index("ix_slot_schedule_start", "schedule_id", "start"),
        UniqueConstraint("source_system", "source_id", name="uq_slot_source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedule.id"))
    visit_type_id: Mapped[int] = mapped_column(ForeignKey("visit_type.id"))
    start: Mapped[datetime]
    minutes: Mapped[int]
    mode: Mapped[Mode] = mapped_column(str_enum(Mode), default=Mode.IN_PERSON)
    location_id: Mapped[int | None] = mapped_column(ForeignKey("location.id"))
    state: Mapped[SlotState] = mapped_column(str_enum(SlotState), default=SlotState.FREE)
    # While earlier-time offers for it are open, patients searching do not see it.
    offered_until: Mapped[datetime | None]
    source_system: Mapped[str | None] = mapped_column(String(100))
    source_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=now_default)

    schedule: Mapped[Schedule] = relationship()
    visit_type: Mapped[VisitType] = relationship()
    location: Mapped[Location | None] = relationship()

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.minutes)


class Appointment(db.Model):
    """A patient's time: booked in Varde (on a slot) or sent by a hospital system (FHIR)."""

    __table_args__ = (
        # The database's own guarantee of one booking per slot.
        Index(
            "uq_appointment_slot_booked",
            "slot_id",
            unique=True,
            postgresql_where=text("status = 'booked'"),
            sqlite_where=text("status = 'booked'"),
        ),
        Index("ix_appointment_person_start", "person_id", "start"),
        Index("ix_appointment_unit_start", "care_unit_id", "start"),
        Index("ix_appointment_status_start", "status", "start"),
        UniqueConstraint("source_system", "source_id", name="uq_appointment_source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    care_unit_id: Mapped[int | None] = mapped_column(ForeignKey("care_unit.id"))
    slot_id: Mapped[int | None] = mapped_column(ForeignKey("slot.id"))
    visit_type_id: Mapped[int | None] = mapped_column(ForeignKey("visit_type.id"))
    title: Mapped[str] = mapped_column(String(200))  # what, as the patient reads it
    start: Mapped[datetime]
    minutes: Mapped[int]
    mode: Mapped[Mode] = mapped_column(str_enum(Mode), default=Mode.IN_PERSON)
    location_id: Mapped[int | None] = mapped_column(ForeignKey("location.id"))
    practitioner: Mapped[str | None] = mapped_column(String(200))
    preparation: Mapped[str | None] = mapped_column(Text)  # beyond the visit type's own
    status: Mapped[AppointmentStatus] = mapped_column(str_enum(AppointmentStatus), default=AppointmentStatus.BOOKED)
    booked_via: Mapped[Channel] = mapped_column(str_enum(Channel))
    booked_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))
    # Set when a relative booked it for the patient: parent, proxy or guardian (staff see it).
    booked_by_relation: Mapped[str | None] = mapped_column(String(16))
    cancelled_at: Mapped[datetime | None]
    cancelled_via: Mapped[Channel | None] = mapped_column(str_enum(Channel))
    cancelled_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))
    cancelled_by_relation: Mapped[str | None] = mapped_column(String(16))
    cancel_reason: Mapped[str | None] = mapped_column(String(300))
    replaced_by_id: Mapped[int | None] = mapped_column(ForeignKey("appointment.id"))  # moved to
    marked_at: Mapped[datetime | None]  # attended / no-show recorded
    source_system: Mapped[str | None] = mapped_column(String(100))
    source_id: Mapped[str | None] = mapped_column(String(100))
    source_version: Mapped[str | None] = mapped_column(String(64))  # meta.versionId of the stored version
    source_updated_at: Mapped[datetime | None]  # its meta.lastUpdated
    created_at: Mapped[datetime] = mapped_column(default=now_default)
    updated_at: Mapped[datetime] = mapped_column(default=now_default, onupdate=now_default)

    person: Mapped[Person] = relationship()
    organisation: Mapped[Organisation] = relationship()
    care_unit: Mapped[CareUnit | None] = relationship()
    slot: Mapped[Slot | None] = relationship()
    visit_type: Mapped[VisitType | None] = relationship()
    location: Mapped[Location | None] = relationship()

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.minutes)

    @property
    def is_booked(self) -> bool:
        return self.status is AppointmentStatus.BOOKED


class WaitlistEntry(db.Model):
    """ "I want an earlier time" for one appointment: the days and times the patient can come and
    how short notice they accept. Ranked by staff priority, then by how long it has waited."""

    __tablename__ = "waitlist_entry"
    __table_args__ = (
        Index(
            "uq_waitlist_active_appointment",
            "appointment_id",
            unique=True,
            postgresql_where=text("active"),
            sqlite_where=text("active"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointment.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    visit_type_id: Mapped[int] = mapped_column(ForeignKey("visit_type.id"))
    care_unit_id: Mapped[int] = mapped_column(ForeignKey("care_unit.id"))
    current_start: Mapped[datetime]  # the appointment's start: only earlier slots are offered
    weekdays: Mapped[int] = mapped_column(Integer, default=0b0011111)  # bit 0 = Monday
    earliest: Mapped[time] = mapped_column(default=time(8, 0))  # time of day, Norwegian
    latest: Mapped[time] = mapped_column(default=time(16, 0))  # the appointment must end by then
    notice_hours: Mapped[int] = mapped_column(Integer, default=24)  # the shortest notice accepted
    priority: Mapped[int] = mapped_column(Integer, default=0)  # set by staff; higher first
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    ended_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=now_default)

    appointment: Mapped[Appointment] = relationship()
    person: Mapped[Person] = relationship()

    def allows_weekday(self, weekday: int) -> bool:
        return bool(self.weekdays & (1 << weekday))


# The offer round's candidates, in ranking order (priority first, then who waited longest), over
# the active entries only (so ended entries never slow the search down).
Index(
    "ix_waitlist_match",
    WaitlistEntry.visit_type_id,
    WaitlistEntry.care_unit_id,
    WaitlistEntry.priority.desc(),
    WaitlistEntry.created_at,
    WaitlistEntry.id,
    postgresql_where=text("active"),
    sqlite_where=text("active"),
)


class Offer(db.Model):
    """A freed slot offered to one waiting patient, in a round of a few, until it expires."""

    __table_args__ = (
        UniqueConstraint("slot_id", "waitlist_entry_id", name="uq_offer_slot_entry"),
        Index("ix_offer_state_expires", "state", "expires_at"),
        Index("ix_offer_slot_round", "slot_id", "round"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("slot.id"))
    waitlist_entry_id: Mapped[int] = mapped_column(ForeignKey("waitlist_entry.id"))
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointment.id"))  # the time it would replace
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    round: Mapped[int] = mapped_column(Integer, default=1)
    rank: Mapped[int] = mapped_column(Integer, default=1)  # place in the round's ranking
    state: Mapped[OfferState] = mapped_column(str_enum(OfferState), default=OfferState.OPEN)
    expires_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=now_default)

    slot: Mapped[Slot] = relationship()
    entry: Mapped[WaitlistEntry] = relationship()
    appointment: Mapped[Appointment] = relationship()


class ReminderSent(db.Model):
    """A reminder that was written for an appointment, so each goes out once."""

    __tablename__ = "appointment_reminder"
    __table_args__ = (UniqueConstraint("appointment_id", "hours_before", name="uq_appointment_reminder"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointment.id", ondelete="CASCADE"))
    hours_before: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=now_default)
