"""The health record: one table of items (visits, results, reports, notes, medications, immunizations,
documents) with what every kind shares, kind-specific detail in ``data``, and large content apart.

One table because the things every kind needs are the same: whose it is, where it comes from
(organisation, specialist or primary care), when, and whether the patient may see it (release and
withholding). Lists read only this table; note text, PDFs and the original FHIR resource live in
``record_content`` and are loaded only when one item is opened or exported.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import db, now_default, str_enum
from app.people.models import Organisation, Person


class ItemKind(StrEnum):
    ENCOUNTER = "encounter"
    RESULT = "result"
    REPORT = "report"
    NOTE = "note"
    MEDICATION = "medication"
    IMMUNIZATION = "immunization"
    DOCUMENT = "document"


class ReleasePolicy(StrEnum):
    """HelsaMi's four kinds of release."""

    IMMEDIATE = "immediate"  # shown as soon as final
    HELD = "held"  # held for the clinician, released automatically after N days
    CLINICIAN = "clinician"  # released only by a clinician
    NEVER = "never"  # never shown digitally


class ReleaseState(StrEnum):
    PENDING = "pending"  # not final yet: shown once a final version arrives
    HELD = "held"  # waiting for a clinician or for release_due_at
    RELEASED = "released"
    NEVER = "never"  # never shown digitally
    ENTERED_IN_ERROR = "entered_in_error"  # the source withdrew it


class RecordItem(db.Model):
    __tablename__ = "record_item"
    __table_args__ = (
        # source_id before source_type: the ingest looks up a bundle's ids in one IN list.
        UniqueConstraint("source_system", "source_id", "source_type", name="uq_record_item_source"),
        # The patient's lists, newest first: one index range per list.
        Index("ix_record_item_person_section_effective", "person_id", "section", "effective_at", "id"),
        Index("ix_record_item_person_kind_effective", "person_id", "kind", "effective_at", "id"),
        # The overview's news, newest release first, and the unread count: both read only the
        # patient's announced items, never the bulk history.
        Index("ix_record_item_person_news", "person_id", "announced", "released_at", "id"),
        Index("ix_record_item_person_unread", "person_id", "announced", "read_at"),
        Index("ix_record_item_person_code", "person_id", "code"),
        # "Which organisations does this patient have items from": one probe per organisation.
        Index("ix_record_item_person_org", "person_id", "organisation_id"),
        Index("ix_record_item_due", "release_state", "release_due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    kind: Mapped[ItemKind] = mapped_column(str_enum(ItemKind))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    # Which visit it belongs to, and for a result the report it was reported in.
    encounter_id: Mapped[int | None] = mapped_column(ForeignKey("record_item.id", ondelete="SET NULL"))
    report_id: Mapped[int | None] = mapped_column(ForeignKey("record_item.id", ondelete="SET NULL"), index=True)

    # Where it came from: the source system (one per FHIR client) and the resource there.
    source_system: Mapped[str] = mapped_column(String(100))
    source_type: Mapped[str] = mapped_column(String(40))
    source_id: Mapped[str] = mapped_column(String(100))
    source_version: Mapped[str | None] = mapped_column(String(64))
    source_updated_at: Mapped[datetime | None]
    content_hash: Mapped[str] = mapped_column(String(64))

    # What it is.
    code_system: Mapped[str | None] = mapped_column(String(200))
    code: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(64))  # laboratory, vital-signs, clinical-note...
    title: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(32))  # the source's status (final, active, completed...)
    # When it happened (taken, signed, prescribed, given). Never empty, so lists sort on an index;
    # an item without a date gets its arrival time and data["date_unknown"].
    effective_at: Mapped[datetime]
    # Which list it belongs in: "results" for a report or a result outside any report,
    # "in_report" for a result listed under its report, else the kind. Lists are one index range.
    section: Mapped[str] = mapped_column(String(16))
    care_unit_name: Mapped[str | None] = mapped_column(String(200))
    author_name: Mapped[str | None] = mapped_column(String(200))
    # Kind-specific detail shown in lists and item pages (value, unit, range, flags, dosage...).
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    # Release and withholding.
    release_policy: Mapped[ReleasePolicy] = mapped_column(str_enum(ReleasePolicy))
    release_state: Mapped[ReleaseState] = mapped_column(str_enum(ReleaseState))
    release_due_at: Mapped[datetime | None]
    released_at: Mapped[datetime | None]
    released_by_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"))
    release_comment: Mapped[str | None] = mapped_column(Text)
    # Withheld from the patient (pbrl. § 5-1) with a recorded reason; or hidden from guardians only.
    withheld_reason: Mapped[str | None] = mapped_column(Text)
    withheld_at: Mapped[datetime | None]
    withheld_by_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"))
    hidden_from_guardians: Mapped[bool] = mapped_column(default=False)
    guardian_hidden_reason: Mapped[str | None] = mapped_column(Text)

    # Listed as news on the overview. Old history arriving in bulk is released quietly and is not
    # news; nor is a result released together with its report (the report is the news).
    announced: Mapped[bool] = mapped_column(default=False)
    # When the patient first opened it (unread marking on the overview and lists).
    read_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=now_default)
    updated_at: Mapped[datetime] = mapped_column(default=now_default, onupdate=now_default)

    person: Mapped[Person] = relationship()
    organisation: Mapped[Organisation] = relationship(lazy="joined", innerjoin=True)
    content: Mapped[RecordContent | None] = relationship(
        back_populates="item", cascade="all, delete-orphan", uselist=False, lazy="raise"
    )

    @property
    def is_visible_to_patient(self) -> bool:
        return self.release_state is ReleaseState.RELEASED and self.withheld_at is None

    @property
    def is_specialist(self) -> bool:
        return self.organisation.is_specialist

    @property
    def is_visit_summary(self) -> bool:
        return self.kind is ItemKind.NOTE and bool(self.data.get("visit_summary"))


class RecordContent(db.Model):
    """The large part of an item: note text, a PDF, and the resource as the source sent it."""

    __tablename__ = "record_content"

    item_id: Mapped[int] = mapped_column(ForeignKey("record_item.id", ondelete="CASCADE"), primary_key=True)
    text: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(String(100))
    binary: Mapped[bytes | None] = mapped_column(LargeBinary)
    resource: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    item: Mapped[RecordItem] = relationship(back_populates="content")


class ReleaseRule(db.Model):
    """How items are released. The most specific rule wins: code, then category, then kind, then
    organisation; a rule may be limited to one organisation. Without a matching rule: immediate."""

    __tablename__ = "release_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    kind: Mapped[ItemKind | None] = mapped_column(str_enum(ItemKind))
    category: Mapped[str | None] = mapped_column(String(64))
    code: Mapped[str | None] = mapped_column(String(64))
    policy: Mapped[ReleasePolicy] = mapped_column(str_enum(ReleasePolicy))
    hold_days: Mapped[int | None]
    description: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=now_default)

    organisation: Mapped[Organisation | None] = relationship()

    @property
    def specificity(self) -> int:
        return (
            (8 if self.code else 0)
            + (4 if self.category else 0)
            + (2 if self.kind else 0)
            + (1 if self.organisation_id else 0)
        )


class FhirClient(db.Model):
    """A source system allowed to send FHIR bundles. Each token belongs to one organisation."""

    __tablename__ = "fhir_client"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # Identifies the source system in record_item.source_system (stable across token changes).
    source_system: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    # The population register's feed (Folkeregisteret): the only source that may add or end
    # parental responsibility (RelatedPerson). Set by the operator, never by a bundle.
    population_register: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    created_at: Mapped[datetime] = mapped_column(default=now_default)
    last_used_at: Mapped[datetime | None]

    organisation: Mapped[Organisation] = relationship(lazy="joined", innerjoin=True)


class CopyRequestState(StrEnum):
    RECEIVED = "received"  # waiting for the organisation
    ANSWERED = "answered"  # the copy was sent as a document in Varde
    REFUSED = "refused"  # refused in whole, with the reason written (pbrl. § 5-1)


class CopyRequest(db.Model):
    """A patient's request for a copy of their record (innsyn, pbrl. § 5-1) from one organisation.
    The organisation must answer within 30 days (``due_on``); the answer is a document in the
    record, announced with an event."""

    __tablename__ = "copy_request"
    __table_args__ = (Index("ix_copy_request_org_state_due", "organisation_id", "state", "due_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    whole_record: Mapped[bool] = mapped_column(default=True)
    # What part, in the patient's words, when not the whole record ("Røntgen av kneet i 2024").
    part_text: Mapped[str | None] = mapped_column(Text)
    period_from: Mapped[date | None]
    period_to: Mapped[date | None]
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"))
    requested_by_relation: Mapped[str | None] = mapped_column(String(16))  # a relative asked for it
    requested_at: Mapped[datetime]
    due_on: Mapped[date]  # the legal deadline: 30 days after it was received
    state: Mapped[CopyRequestState] = mapped_column(str_enum(CopyRequestState), default=CopyRequestState.RECEIVED)
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"))
    answered_at: Mapped[datetime | None]
    answer_text: Mapped[str | None] = mapped_column(Text)  # the covering letter or the reason refused
    document_id: Mapped[int | None] = mapped_column(ForeignKey("record_item.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=now_default)

    person: Mapped[Person] = relationship()
    organisation: Mapped[Organisation] = relationship()
