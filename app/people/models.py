"""Persons, organisations and their care units."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from flask import current_app, has_app_context
from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from app.db import db, now_default, str_enum
from app.people.nin import parse_nin


class OrganisationKind(StrEnum):
    HOSPITAL = "hospital"
    MUNICIPALITY = "municipality"
    GP_OFFICE = "gp_office"
    HEALTH_STATION = "health_station"

    @property
    def is_specialist(self) -> bool:
        """Hospitals give specialist care; the rest is primary care (kommunehelsetjenesten)."""
        return self is OrganisationKind.HOSPITAL


class Organisation(db.Model):
    """A hospital, a municipality, a GP office or a health station."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[OrganisationKind] = mapped_column(str_enum(OrganisationKind))
    # Enhetsregisteret's organisation number (9 digits); FHIR sources identify themselves by it.
    org_number: Mapped[str | None] = mapped_column(String(9), unique=True)
    # A GP office or health station belongs to its municipality; a hospital may belong to a trust.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"))
    created_at: Mapped[datetime] = mapped_column(default=now_default)

    parent: Mapped[Organisation | None] = relationship(remote_side=[id])
    care_units: Mapped[list[CareUnit]] = relationship(back_populates="organisation", order_by="CareUnit.name")

    @property
    def is_specialist(self) -> bool:
        return self.kind.is_specialist


class CareUnit(db.Model):
    """A ward, clinic, outpatient unit or team inside an organisation (a care team patients meet)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # The address register's id of the service (HER-id); FHIR sources name a GP office by it.
    her_id: Mapped[str | None] = mapped_column(String(20), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=now_default)

    organisation: Mapped[Organisation] = relationship(back_populates="care_units")

    @property
    def patient_label(self) -> str:
        """What patients call it: the office for primary care ("Lade legesenter"), the unit and
        hospital for specialist care ("Hjertemedisinsk poliklinikk, St. Olavs hospital")."""
        if self.organisation.is_specialist:
            return f"{self.name}, {self.organisation.name}"
        return self.organisation.name


def age_on(birth: date, day: date) -> int:
    """Whole years on ``day`` (a birthday counts from its first moment)."""
    years = day.year - birth.year
    if (day.month, day.day) < (birth.month, birth.day):
        years -= 1
    return years


class Person(db.Model):
    """Someone the health services hold data about, identified by a national identity number."""

    id: Mapped[int] = mapped_column(primary_key=True)
    national_id: Mapped[str] = mapped_column(String(11), unique=True)
    given_name: Mapped[str] = mapped_column(String(200))
    family_name: Mapped[str] = mapped_column(String(200))
    birth_date: Mapped[date]
    # The population register's address protection: "6" strengt fortrolig (also 6 utland), "7"
    # fortrolig. Such a person can neither represent anyone nor be represented in Varde.
    address_protection: Mapped[str | None] = mapped_column(String(1))
    # A young person (12–16) has objected, and a clinician recorded it, to their parents seeing
    # their appointments and messages (pbrl. § 3-4 second paragraph): parents then see nothing.
    objects_to_parents_at: Mapped[datetime | None]
    # The clinician's account (no foreign key: account already refers to person; the audit log
    # holds the same).
    objects_to_parents_by_id: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=now_default)
    updated_at: Mapped[datetime] = mapped_column(default=now_default, onupdate=now_default)

    @property
    def is_protected(self) -> bool:
        return self.address_protection is not None

    @validates("national_id")
    def _validate_national_id(self, _key: str, value: str) -> str:
        """Only valid fødselsnummer/D-numbers are stored; synthetic test numbers only in demo mode."""
        allow_synthetic = has_app_context() and bool(current_app.config.get("DEMO_MODE"))
        return parse_nin(value, allow_synthetic=allow_synthetic).value

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    def age_on(self, day: date) -> int:
        return age_on(self.birth_date, day)


class PersonIdentifier(db.Model):
    """Another system's identifier for a person (a hospital's patient number, a FHIR Patient id).

    The national id lives on Person itself; these let a source system that sends only its own
    identifier be matched to the right person. (system, value) is unique across the region.
    """

    __tablename__ = "person_identifier"
    __table_args__ = (UniqueConstraint("system", "value", name="uq_person_identifier_system_value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    system: Mapped[str] = mapped_column(String(300))
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=now_default)

    person: Mapped[Person] = relationship()


class RelationKind(StrEnum):
    # A parent with parental responsibility (foreldreansvar): from the population register (FHIR
    # RelatedPerson) or registered by staff.
    PARENT = "parent"
    # An adult the patient gave power of attorney (fullmakt) in Varde, at a level.
    PROXY = "proxy"
    # A guardian (verge) appointed for an adult who cannot consent, registered by staff, at a level.
    GUARDIAN = "guardian"


class ProxyLevel(StrEnum):
    """HelsaMi's levels of access for an adult proxy or a guardian. What each lets the holder do is
    decided by the access policy (app/access/policy.py, LEVEL_RIGHTS) alone."""

    STANDARD = "standard"  # appointments, health information, messages, booking
    READ_ONLY = "read_only"  # see what Standard sees, do nothing
    COMMUNICATE = "communicate"  # appointments and messages, no health information
    FULL = "full"  # everything the patient has: notes, history, questionnaires, settings


class Relation(db.Model):
    """Someone (``holder``) who may act for someone else (``subject``): a parent, an adult proxy
    or a guardian. What the holder may see is decided by the access policy alone. A revoked or
    ended relation is kept (``revoked_at``) so the patient's history of who had access stays."""

    __tablename__ = "person_relation"
    __table_args__ = (UniqueConstraint("holder_id", "subject_id", "kind", name="uq_person_relation"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    kind: Mapped[RelationKind] = mapped_column(str_enum(RelationKind))
    level: Mapped[ProxyLevel | None] = mapped_column(str_enum(ProxyLevel))  # proxies and guardians
    scope_text: Mapped[str | None] = mapped_column(String(500))  # a guardianship's mandate, as written
    valid_until: Mapped[date | None]  # the last day it holds; None: until revoked
    source: Mapped[str] = mapped_column(String(16), default="staff")  # staff, register, patient (invited)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"))
    revoked_at: Mapped[datetime | None]
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=now_default)

    holder: Mapped[Person] = relationship(foreign_keys=[holder_id])
    subject: Mapped[Person] = relationship(foreign_keys=[subject_id])

    def in_force_on(self, today: date) -> bool:
        """Not revoked and not past its last day (``policy.in_force`` is the same rule in SQL)."""
        return self.revoked_at is None and (self.valid_until is None or self.valid_until >= today)


class ProxyInvitation(db.Model):
    """A one-time code a patient made for someone to become their proxy. Only a hash of the code
    is stored; it works once, before ``expires_at``."""

    __tablename__ = "proxy_invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    level: Mapped[ProxyLevel] = mapped_column(str_enum(ProxyLevel))
    valid_until: Mapped[date | None]  # the proxy's end date, carried to the relation
    expires_at: Mapped[datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"))
    used_at: Mapped[datetime | None]
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    cancelled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=now_default)


class AgeNotice(db.Model):
    """That the notice before a child's access change (at 11 years 11 months, at 15 years 11
    months) was written, once per child and threshold, so the daily job never writes it twice."""

    __tablename__ = "age_notice"
    __table_args__ = (UniqueConstraint("person_id", "threshold", name="uq_age_notice"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    threshold: Mapped[int]  # the age the access changes at: 12 or 16
    created_at: Mapped[datetime] = mapped_column(default=now_default)


class UnitRelationKind(StrEnum):
    GP = "gp"  # on the GP's list (fastlegeordningen)
    REFERRAL = "referral"  # referred to the unit, waiting for or in treatment there
    FOLLOW_UP = "follow_up"  # in a unit's follow-up (a programme, need-based follow-up)


class UnitRelation(db.Model):
    """A standing relation between a patient and a care unit that is not a visit or a time: their
    GP office, a referral, a follow-up. Registered by staff, the demo or a source system; visits and
    appointments count as relations by themselves (see messages.services.units_for)."""

    __tablename__ = "unit_relation"
    __table_args__ = (UniqueConstraint("person_id", "care_unit_id", "kind", name="uq_unit_relation"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    care_unit_id: Mapped[int] = mapped_column(ForeignKey("care_unit.id", ondelete="CASCADE"), index=True)
    kind: Mapped[UnitRelationKind] = mapped_column(str_enum(UnitRelationKind))
    valid_until: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(default=now_default)

    care_unit: Mapped[CareUnit] = relationship()
