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
    created_at: Mapped[datetime] = mapped_column(default=now_default)
    updated_at: Mapped[datetime] = mapped_column(default=now_default, onupdate=now_default)

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
    # A parent with parental responsibility (foreldreansvar). Adult proxies and guardians (verge)
    # arrive with the relatives issue as further kinds.
    PARENT = "parent"


class Relation(db.Model):
    """Someone (``holder``) who may act for someone else (``subject``): registered by staff or from
    the population register. What the holder may see is decided by the access policy alone."""

    __tablename__ = "person_relation"
    __table_args__ = (UniqueConstraint("holder_id", "subject_id", "kind", name="uq_person_relation"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    kind: Mapped[RelationKind] = mapped_column(str_enum(RelationKind))
    valid_until: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(default=now_default)

    holder: Mapped[Person] = relationship(foreign_keys=[holder_id])
    subject: Mapped[Person] = relationship(foreign_keys=[subject_id])


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
