"""A patient's relatives and representatives: parents with parental responsibility, guardians
(verge), and a young person's objection to their parents seeing their information.

Plain functions on objects the access policy has already let through (the staff console calls
``policy.check(..., category="record")`` first; the FHIR ingest runs for a trusted source system).
A refused change raises ``Refused`` with the reason in plain Norwegian before anything is written;
the caller commits what succeeded, audit row included. What a relation lets its holder see is the
access policy's alone (``app/access/policy.py``); this module only keeps the relations.

A relation is never deleted and never inserted twice: (holder, subject, kind) is unique, so
registering again after it ended reuses the row (``put_in_force``), and the history of who had access
stays in the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from app import clock
from app.access import policy
from app.access.services import audit
from app.auth.models import User
from app.db import db
from app.people.models import Person, ProxyLevel, Relation, RelationKind
from app.people.nin import InvalidNin, parse_nin
from app.refusal import Refused

# A parent registered in Varde acts for the child in a health portal: they must be old enough to
# have full access to their own record (16), and older than the child.
PARENT_MIN_AGE = policy.PARENT_ACCESS_UNTIL_AGE
# A guardian (verge) is appointed for an adult; the guardian is an adult too.
GUARDIAN_SUBJECT_MIN_AGE = 18
GUARDIAN_MIN_AGE = policy.PROXY_HOLDER_MIN_AGE
# The young person's objection (pasient- og brukerrettighetsloven § 3-4 second paragraph) matters
# while parents have the limited access of 12–16.
OBJECTION_FROM_AGE = policy.PARENT_FULL_ACCESS_UNTIL_AGE
OBJECTION_UNTIL_AGE = policy.PARENT_ACCESS_UNTIL_AGE
SCOPE_MAX_CHARS = 500

SOURCE_STAFF = "staff"
SOURCE_REGISTER = "register"


def protected_message() -> str:
    return _(
        "Personer med fortrolig eller strengt fortrolig adresse kan ikke representere eller representeres i Varde."
    )


# -- Reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Relations:
    """A patient's relations as the staff console lists them: those in force, then ended ones."""

    in_force: list[Relation]
    ended: list[Relation]


def relations_of(patient: Person, today: date) -> Relations:
    """Everyone who may act, or could act, for the patient: parents, proxies and guardians, with
    their holders loaded. Newest first in each list."""
    rows = db.session.scalars(
        select(Relation)
        .options(joinedload(Relation.holder))
        .where(Relation.subject_id == patient.id)
        .order_by(Relation.created_at.desc(), Relation.id.desc())
    ).all()
    return Relations(
        in_force=[r for r in rows if r.in_force_on(today)],
        ended=[r for r in rows if not r.in_force_on(today)],
    )


def relation_of(patient: Person, relation_id: int) -> Relation | None:
    """The relation with this id if it is one of the patient's (someone acting for them); else
    None, so a forged id looks the same as one that does not exist."""
    relation = db.session.get(Relation, relation_id)
    if relation is None or relation.subject_id != patient.id:
        return None
    return relation


def may_register_parent(patient: Person, today: date) -> bool:
    return patient.age_on(today) < policy.PARENT_ACCESS_UNTIL_AGE and not patient.is_protected


def may_register_guardian(patient: Person, today: date) -> bool:
    return patient.age_on(today) >= GUARDIAN_SUBJECT_MIN_AGE and not patient.is_protected


def may_object(patient: Person, today: date) -> bool:
    return OBJECTION_FROM_AGE <= patient.age_on(today) < OBJECTION_UNTIL_AGE


# -- Shared by the staff console and the population register feed --------------------------------


def existing_relation(holder_id: int, subject_id: int, kind: RelationKind) -> Relation | None:
    return db.session.scalar(
        select(Relation).where(
            Relation.holder_id == holder_id, Relation.subject_id == subject_id, Relation.kind == kind
        )
    )


def put_in_force(
    relation: Relation | None,
    holder_id: int,
    subject_id: int,
    kind: RelationKind,
    *,
    source: str,
    now: datetime,
    by_id: int | None,
    level: ProxyLevel | None = None,
    scope_text: str | None = None,
    valid_until: date | None = None,
) -> Relation:
    """Add the relation, or put the ended row back in force with the new terms (never a second
    row: the unique constraint would refuse it, and the row's history is the patient's)."""
    if relation is None:
        relation = Relation(holder_id=holder_id, subject_id=subject_id, kind=kind)
        db.session.add(relation)
    relation.level = level
    relation.scope_text = scope_text
    relation.valid_until = valid_until
    relation.source = source
    relation.created_by_id = by_id
    relation.created_at = now
    relation.revoked_at = None
    relation.revoked_by_id = None
    db.session.flush()
    return relation


def _renew_by_staff(
    existing: Relation | None, holder: Person, patient: Person, kind: RelationKind, **terms: Any
) -> Relation:
    """``put_in_force`` for a clinician's form: a second submit racing the first (a double click, two
    clinicians at once) meets the unique constraint; it is told so, and the caller rolls back."""
    name, holder_id, patient_id = holder.display_name, holder.id, patient.id  # read before a failed flush
    try:
        return put_in_force(existing, holder_id, patient_id, kind, source=SOURCE_STAFF, **terms)
    except IntegrityError:
        raise Refused(_("%(name)s ble nettopp registrert av noen andre. Last siden på nytt.", name=name)) from None


def _audit(action: str, by: User | None, patient_id: int, relation_id: int | None, organisation_id: int | None) -> None:
    audit(
        action,
        actor_user_id=by.id if by is not None else None,
        subject_person_id=patient_id,
        object_type="relation",
        object_id=relation_id,
        basis="care_relation" if by is not None else "register",
        organisation_id=organisation_id,
    )


# -- Staff: parents and guardians ------------------------------------------------------------------


def _holder_by_national_id(national_id: str, allow_synthetic: bool) -> Person:
    try:
        nin = parse_nin(national_id, allow_synthetic=allow_synthetic).value
    except InvalidNin as invalid:
        raise Refused(str(invalid.message)) from None
    holder = db.session.scalar(select(Person).where(Person.national_id == nin))
    if holder is None:
        raise Refused(_("Vi finner ingen med dette fødselsnummeret i Varde."))
    return holder


def register_parent(
    patient: Person,
    national_id: str,
    *,
    by: User,
    organisation_id: int | None,
    allow_synthetic: bool,
    now: datetime | None = None,
) -> Relation:
    """Register the person with this national id as holding parental responsibility for the
    patient (a child under 16), or put an ended registration back in force.

    Raises ``Refused`` (nothing written) for a patient of 16 or more, an unknown or invalid
    national id, the patient themselves, a holder under 16 or younger than the child, a
    confidential address on either side, or a parent already registered.
    """
    now = now or clock.utcnow()
    today = clock.today_in_norway()
    if patient.age_on(today) >= policy.PARENT_ACCESS_UNTIL_AGE:
        raise Refused(_("Foreldre kan bare registreres for barn under %(age)s år.", age=policy.PARENT_ACCESS_UNTIL_AGE))
    if patient.is_protected:
        raise Refused(protected_message())
    holder = _holder_by_national_id(national_id, allow_synthetic)
    if holder.id == patient.id:
        raise Refused(_("Pasienten kan ikke registreres som sin egen forelder."))
    if holder.is_protected:
        raise Refused(protected_message())
    if holder.age_on(today) < PARENT_MIN_AGE or holder.birth_date >= patient.birth_date:
        raise Refused(
            _(
                "%(name)s er for ung til å registreres som forelder. En forelder må være minst %(age)s år "
                "og eldre enn barnet.",
                name=holder.display_name,
                age=PARENT_MIN_AGE,
            )
        )
    existing = existing_relation(holder.id, patient.id, RelationKind.PARENT)
    if existing is not None and existing.in_force_on(today):
        raise Refused(_("%(name)s er allerede registrert som forelder.", name=holder.display_name))
    relation = _renew_by_staff(existing, holder, patient, RelationKind.PARENT, now=now, by_id=by.id)
    _audit("register_parent", by, patient.id, relation.id, organisation_id)
    return relation


def register_guardian(
    patient: Person,
    national_id: str,
    *,
    level: ProxyLevel,
    scope_text: str,
    valid_until: date | None,
    by: User,
    organisation_id: int | None,
    allow_synthetic: bool,
    now: datetime | None = None,
) -> Relation:
    """Register a guardian (verge) for an adult patient at ``level``, with the mandate as the
    county governor wrote it (``scope_text``) and an optional last day; or put an ended
    guardianship back in force with these terms.

    Raises ``Refused`` (nothing written) for a patient under 18, an unknown or invalid national
    id, the patient themselves, a guardian under 18, a confidential address on either side, an
    empty or too long mandate, an end date in the past, or a guardian already registered.
    """
    now = now or clock.utcnow()
    today = clock.today_in_norway()
    if patient.age_on(today) < GUARDIAN_SUBJECT_MIN_AGE:
        raise Refused(
            _(
                "Verge kan bare registreres for pasienter som er %(age)s år eller eldre. Barn representeres av "
                "foreldrene.",
                age=GUARDIAN_SUBJECT_MIN_AGE,
            )
        )
    if patient.is_protected:
        raise Refused(protected_message())
    scope = (scope_text or "").strip()
    if not scope:
        raise Refused(_("Skriv omfanget av vergemålet slik det står i vedtaket."))
    if len(scope) > SCOPE_MAX_CHARS:
        raise Refused(_("Omfanget av vergemålet kan være høyst %(n)s tegn.", n=SCOPE_MAX_CHARS))
    if valid_until is not None and valid_until < today:
        raise Refused(_("Sluttdatoen kan ikke være tilbake i tid."))
    holder = _holder_by_national_id(national_id, allow_synthetic)
    if holder.id == patient.id:
        raise Refused(_("Pasienten kan ikke registreres som sin egen verge."))
    if holder.is_protected:
        raise Refused(protected_message())
    if holder.age_on(today) < GUARDIAN_MIN_AGE:
        raise Refused(
            _(
                "%(name)s er for ung til å være verge. En verge må være minst %(age)s år.",
                name=holder.display_name,
                age=GUARDIAN_MIN_AGE,
            )
        )
    existing = existing_relation(holder.id, patient.id, RelationKind.GUARDIAN)
    if existing is not None and existing.in_force_on(today):
        raise Refused(
            _(
                "%(name)s er allerede registrert som verge. Avslutt vergemålet først hvis det skal endres.",
                name=holder.display_name,
            )
        )
    relation = _renew_by_staff(
        existing,
        holder,
        patient,
        RelationKind.GUARDIAN,
        now=now,
        by_id=by.id,
        level=level,
        scope_text=scope,
        valid_until=valid_until,
    )
    _audit("register_guardian", by, patient.id, relation.id, organisation_id)
    return relation


def end_relation(
    patient: Person, relation: Relation, *, by: User, organisation_id: int | None, now: datetime | None = None
) -> Relation:
    """End a parent's or a guardian's relation to the patient: the holder loses access on their
    next request (the policy asks on every one). A proxy is the patient's to end, not staff's.

    Raises ``Refused`` for a proxy, or for a relation that has already ended.
    """
    now = now or clock.utcnow()
    if relation.subject_id != patient.id:
        raise ValueError("relation of another patient")  # the caller loads it with relation_of
    if relation.kind is RelationKind.PROXY:
        raise Refused(_("En fullmakt avsluttes av pasienten selv eller av fullmektigen, ikke her."))
    already = _("Denne relasjonen er allerede avsluttet. Ingenting ble endret.")
    if not relation.in_force_on(clock.today_in_norway()):
        raise Refused(already)
    # Conditional, so a second click racing the first ends nothing twice.
    ended = db.session.execute(
        update(Relation)
        .where(Relation.id == relation.id, Relation.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by_id=by.id)
        .execution_options(synchronize_session="fetch")
    ).rowcount
    if ended != 1:
        raise Refused(already)
    _audit("end_relation", by, patient.id, relation.id, organisation_id)
    return relation


# -- Staff: the young person's objection ---------------------------------------------------------


def record_objection(patient: Person, *, by: User, organisation_id: int | None, now: datetime | None = None) -> None:
    """Record that the young person (12–15) objects to their parents seeing their information
    (pasient- og brukerrettighetsloven § 3-4 second paragraph): from the parents' next request
    they see nothing of the patient's and hear of nothing.

    Raises ``Refused`` outside 12–15, or when it is already recorded.
    """
    now = now or clock.utcnow()
    if not may_object(patient, clock.today_in_norway()):
        raise Refused(
            _(
                "Dette kan bare registreres for ungdom fra %(start)s til og med %(end)s år.",
                start=OBJECTION_FROM_AGE,
                end=OBJECTION_UNTIL_AGE - 1,
            )
        )
    if patient.objects_to_parents_at is not None:
        raise Refused(_("Det er allerede registrert at ungdommen motsetter seg at foreldrene får innsyn."))
    patient.objects_to_parents_at = now
    patient.objects_to_parents_by_id = by.id
    _audit("record_objection", by, patient.id, None, organisation_id)


def withdraw_objection(patient: Person, *, by: User, organisation_id: int | None) -> None:
    """Undo the recorded objection: the parents' limited access of 12–16 applies again.

    Raises ``Refused`` when no objection is recorded.
    """
    if patient.objects_to_parents_at is None:
        raise Refused(_("Det er ikke registrert at ungdommen motsetter seg innsyn. Ingenting ble endret."))
    patient.objects_to_parents_at = None
    patient.objects_to_parents_by_id = None
    _audit("withdraw_objection", by, patient.id, None, organisation_id)


# -- The population register (FHIR RelatedPerson) -----------------------------------------------------


def parent_from_register(
    holder_id: int, subject_id: int, *, valid_until: date | None, now: datetime
) -> Relation | None:
    """The register says the holder has parental responsibility for the subject: add the
    relation (source "register"), put an ended one back in force, or keep the one in force (its
    last day follows the register when the register gave it). Returns the relation changed, or
    None when nothing changed."""
    today = clock.today_in_norway()
    existing = existing_relation(holder_id, subject_id, RelationKind.PARENT)
    if existing is not None and existing.in_force_on(today):
        if existing.source == SOURCE_REGISTER and existing.valid_until != valid_until:
            existing.valid_until = valid_until
            return existing
        return None
    if existing is not None and existing.revoked_by_id is not None:
        # A clinician ended it (a court order, a protection case the register does not show):
        # the daily feed does not put it back; staff may register it again.
        return None
    relation = put_in_force(
        existing,
        holder_id,
        subject_id,
        RelationKind.PARENT,
        source=SOURCE_REGISTER,
        now=now,
        by_id=None,
        valid_until=valid_until,
    )
    _audit("register_parent", None, subject_id, relation.id, None)
    return relation


def end_parent_from_register(holder_id: int, subject_id: int, *, now: datetime) -> Relation | None:
    """The register says the parental responsibility has ended: end the relation in force,
    whoever registered it (the register is the authority on foreldreansvar). None if there was
    none in force."""
    existing = existing_relation(holder_id, subject_id, RelationKind.PARENT)
    if existing is None or not existing.in_force_on(clock.today_in_norway()):
        return None
    existing.revoked_at = now
    existing.revoked_by_id = None
    _audit("end_relation", None, subject_id, existing.id, None)
    return existing
