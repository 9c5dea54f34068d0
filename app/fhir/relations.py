"""A patient's standing relations from FHIR: the GP office and referrals, and parents.

GP office: ``Patient.generalPractitioner`` (the fastlege list, as a municipal or national source
sends it with the patient).
The office is found by the HER-id of the service (``urn:oid:2.16.578.1.12.4.1.2``, the address
register's id, as the Norwegian base profile sends it) on one of Varde's care units, or — for a
reference to an Organization in the bundle — by that organisation's number when it has exactly
one care unit. The patient's GP relation (``people.UnitRelation``, kind GP) then points there:
a patient has one GP office at a time. A GP Varde does not know is reported as a warning and
changes nothing; it never refuses the bundle (the record in it is still worth keeping).

Referral: a ``ServiceRequest`` with intent order (or plan) whose performer is one of Varde's care
units — named by HER-id, or by the name of a HealthcareService or Organization among the sending
organisation's units. While it is active (or on hold, or a draft) the patient has a referral
relation to that unit; once completed, revoked or entered in error, the relation goes.

Parents: a ``RelatedPerson`` from the population register feed. ``RelatedPerson.patient`` names the
child (a Patient in the bundle, one the source sent before, or by fødselsnummer/D-number), the
RelatedPerson's own identifier (fødselsnummer or D-number) names the parent. Parental
responsibility is a relationship coded with v3-RoleCode MTH, FTH or PRN, or — as HL7 Norway's
no-basis-RelatedPerson sends foreldreansvar from Folkeregisteret — with the no-basis
parental-responsibility code system (felles, mor, far, medmor, andre; a mor/far/medmor code that
is not this person's own family role, or ukjent, says this person does not hold it). An active
one adds the parent relation (source "register"), reusing an ended row; ``active`` false, a
``period.end`` in the past, or a coding saying this person does not hold it ends it. A parent
Varde does not know is created only from a name and a birth date in the resource; anything that
cannot be done is a warning and changes nothing else — it never refuses the bundle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask import current_app
from sqlalchemy import delete, func, select

from app import clock
from app.db import db
from app.fhir import mapping
from app.fhir.validate import Issue
from app.people import services as people_services
from app.people.models import CareUnit, Organisation, Person, UnitRelation, UnitRelationKind
from app.people.nin import InvalidNin, birth_date_of, parse_nin
from app.record.models import FhirClient

HER_SYSTEM = "urn:oid:2.16.578.1.12.4.1.2"
ORG_NUMBER_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.101"


OPEN_REFERRAL = {"draft", "active", "on-hold"}
ENDED_REFERRAL = {"completed", "revoked", "entered-in-error"}


def _unit_for(ref: dict[str, Any], resolver: mapping.Resolver, organisation_id: int | None = None) -> int | None:
    identifiers = [ref.get("identifier")] if ref.get("identifier") else []
    target = resolver.get(ref)
    if target is not None:
        identifiers += list(target.get("identifier") or [])
    for identifier in identifiers:
        system, value = identifier.get("system"), str(identifier.get("value") or "").strip()
        if system == HER_SYSTEM and value:
            unit_id = db.session.scalar(select(CareUnit.id).where(CareUnit.her_id == value))
            if unit_id is not None:
                return unit_id
        if system == ORG_NUMBER_SYSTEM and value:
            units = db.session.scalars(
                select(CareUnit.id).join(Organisation).where(Organisation.org_number == value).limit(2)
            ).all()
            if len(units) == 1:
                return units[0]
    name = resolver.display(ref)
    if organisation_id is not None and name:
        units = db.session.scalars(
            select(CareUnit.id)
            .where(CareUnit.organisation_id == organisation_id, func.lower(CareUnit.name) == name.strip().lower())
            .limit(2)
        ).all()
        if len(units) == 1:
            return units[0]
    return None


def _first_unit(
    refs: list[dict[str, Any]], resolver: mapping.Resolver, organisation_id: int | None = None
) -> int | None:
    """The first of the references that names one of Varde's care units."""
    return next((u for u in (_unit_for(ref, resolver, organisation_id) for ref in refs) if u is not None), None)


def prepare(
    resources: list[dict[str, Any]], patients: dict[str, int], resolver: mapping.Resolver, warnings: list[Issue]
) -> list[tuple[int, int]]:
    """(person id, GP care unit id) for every Patient in the bundle that names a GP Varde knows."""
    found: list[tuple[int, int]] = []
    for resource in resources:
        if resource["resourceType"] != "Patient" or not resource.get("generalPractitioner"):
            continue
        person_id = patients.get(f"Patient/{resource.get('id')}")
        if person_id is None:
            continue
        unit_id = _first_unit(resource["generalPractitioner"], resolver)
        if unit_id is None:
            warnings.append(
                Issue(
                    "warning",
                    "not-found",
                    f"Patient/{resource.get('id')}: fastlegekontoret er ukjent for Varde (HER-id eller "
                    "organisasjonsnummer). Pasientens fastlege er ikke endret.",
                    ["Patient.generalPractitioner"],
                )
            )
            continue
        found.append((person_id, unit_id))
    return found


def prepare_referrals(
    resources: list[dict[str, Any]],
    resolve_patient: Any,
    resolver: mapping.Resolver,
    client: FhirClient,
    warnings: list[Issue],
) -> list[tuple[int, int, bool]]:
    """(person id, care unit id, open) for every referral in the bundle to a unit Varde knows."""
    found: list[tuple[int, int, bool]] = []
    for resource in resources:
        if resource["resourceType"] != "ServiceRequest" or resource.get("intent") not in ("order", "plan"):
            continue
        status = resource.get("status")
        if status not in OPEN_REFERRAL | ENDED_REFERRAL:
            continue
        person_id = resolve_patient((resource.get("subject") or {}).get("reference"))
        if person_id is None:
            continue
        unit_id = _first_unit(resource.get("performer") or [], resolver, client.organisation_id)
        if unit_id is None:
            warnings.append(
                Issue(
                    "warning",
                    "not-found",
                    f"ServiceRequest/{resource.get('id')}: enheten henvisningen gjelder er ukjent for Varde. "
                    "Pasienten kan ikke skrive dit før den er kjent.",
                    ["ServiceRequest.performer"],
                )
            )
            continue
        found.append((person_id, unit_id, status in OPEN_REFERRAL))
    return found


def apply(pairs: list[tuple[int, int]], referrals: list[tuple[int, int, bool]] = ()) -> None:  # type: ignore[assignment]
    """Point each patient's GP relation at the office the source names (and at no other); add or
    end referral relations."""
    for person_id, unit_id, is_open in referrals:
        existing = db.session.scalar(
            select(UnitRelation).where(
                UnitRelation.person_id == person_id,
                UnitRelation.care_unit_id == unit_id,
                UnitRelation.kind == UnitRelationKind.REFERRAL,
            )
        )
        if is_open and existing is None:
            db.session.add(UnitRelation(person_id=person_id, care_unit_id=unit_id, kind=UnitRelationKind.REFERRAL))
        elif not is_open and existing is not None:
            db.session.delete(existing)
        db.session.flush()
    for person_id, unit_id in pairs:
        db.session.execute(
            delete(UnitRelation).where(
                UnitRelation.person_id == person_id,
                UnitRelation.kind == UnitRelationKind.GP,
                UnitRelation.care_unit_id != unit_id,
            )
        )
        exists = db.session.scalar(
            select(UnitRelation.id).where(
                UnitRelation.person_id == person_id,
                UnitRelation.kind == UnitRelationKind.GP,
                UnitRelation.care_unit_id == unit_id,
            )
        )
        if exists is None:
            db.session.add(UnitRelation(person_id=person_id, care_unit_id=unit_id, kind=UnitRelationKind.GP))


# -- Parents from the population register (RelatedPerson) ---------------------------------------------

ROLE_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
PARENT_ROLE_CODES = {"MTH", "FTH", "PRN"}
NO_PARENTAL_RESPONSIBILITY = "http://hl7.no/fhir/CodeSystem/no-basis-parental-responsibility"
NO_FAMILY_RELATION = "http://hl7.no/fhir/CodeSystem/no-basis-family-relation"
PARENT_ROLES = {"mor", "far", "medmor"}  # Folkeregisteret's family roles that are a parent's
SHARED_RESPONSIBILITY = {"felles", "andre"}  # joint, or someone other than the parents


@dataclass(frozen=True)
class ParentChange:
    """What one RelatedPerson says about a parent and a child, checked and ready to apply."""

    label: str
    subject_id: int
    national_id: str
    holds: bool  # True: add (or keep) the relation; False: end it
    valid_until: date | None = None
    holder_id: int | None = None  # None: a new person, from the fields below
    given_name: str | None = None
    family_name: str | None = None
    birth_date: date | None = None


def _codings(resource: dict[str, Any]) -> list[tuple[str | None, str]]:
    return [
        (coding.get("system"), str(coding.get("code")))
        for concept in resource.get("relationship") or []
        for coding in concept.get("coding") or []
        if coding.get("code")
    ]


def parental_responsibility(resource: dict[str, Any]) -> bool | None:
    """Does this RelatedPerson hold parental responsibility for the patient? True or False when
    the resource says so, None when it is not about parental responsibility at all (a spouse, a
    roommate) — Varde then leaves it alone."""
    codings = _codings(resource)
    responsibility = [code for system, code in codings if system == NO_PARENTAL_RESPONSIBILITY]
    if responsibility:
        own_roles = {code for system, code in codings if system == NO_FAMILY_RELATION} & PARENT_ROLES
        return any(
            code in SHARED_RESPONSIBILITY or (code in PARENT_ROLES and (not own_roles or code in own_roles))
            for code in responsibility
        )
    if any(system == ROLE_CODE_SYSTEM and code in PARENT_ROLE_CODES for system, code in codings):
        return True
    return None


def _fhir_date(value: Any) -> date | None:
    """A full FHIR date (or the date of a dateTime), else None."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _national_id(identifiers: list[dict[str, Any]], demo: bool) -> str | None:
    for identifier in identifiers:
        if identifier.get("system") in mapping.NIN_SYSTEMS:
            try:
                return parse_nin(str(identifier.get("value") or ""), allow_synthetic=demo).value
            except InvalidNin:
                continue
    return None


def _name(resource: dict[str, Any]) -> tuple[str | None, str | None]:
    names = resource.get("name") or []
    chosen = next((n for n in names if n.get("use") in ("official", "usual")), names[0] if names else None)
    if not chosen:
        return None, None
    given = " ".join(g for g in chosen.get("given") or [] if g).strip() or None
    family = (chosen.get("family") or "").strip() or None
    return given, family


def _child(ref: dict[str, Any], resolve_patient: Any, demo: bool) -> int | None:
    if ref.get("reference"):
        return resolve_patient(ref["reference"])
    identifier = ref.get("identifier")
    nin = _national_id([identifier] if isinstance(identifier, dict) else [], demo)
    if nin is None:
        return None
    return db.session.scalar(select(Person.id).where(Person.national_id == nin))


def prepare_parents(
    resources: list[dict[str, Any]], resolve_patient: Any, warnings: list[Issue], *, from_register: bool
) -> list[ParentChange]:
    """The parent relations the bundle's RelatedPersons add or end, checked before anything is
    written. What cannot be done becomes a warning (and is left out), never a refusal. Only the
    population register's feed (``FhirClient.population_register``) may change parental
    responsibility: from any other source it is a warning and nothing changes."""
    demo = bool(current_app.config["DEMO_MODE"])
    today = clock.today_in_norway()
    changes: list[ParentChange] = []

    def warn(label: str, code: str, text: str, where: str) -> None:
        warnings.append(Issue("warning", code, f"{label}: {text}", [where]))

    for resource in resources:
        if resource["resourceType"] != "RelatedPerson":
            continue
        holds = parental_responsibility(resource)
        if holds is None:
            continue
        label = f"RelatedPerson/{resource.get('id', '?')}"
        if not from_register:
            warn(
                label,
                "forbidden",
                "bare Folkeregisteret kan endre foreldreansvar. Foreldreansvaret er ikke endret.",
                "RelatedPerson",
            )
            continue
        period = resource.get("period") or {}
        last_day = _fhir_date(period.get("end"))
        if resource.get("active") is False or (last_day is not None and last_day < today):
            holds = False
        subject_id = _child(resource.get("patient") or {}, resolve_patient, demo)
        if subject_id is None:
            warn(
                label,
                "not-found",
                "barnet (RelatedPerson.patient) er ukjent for Varde. Foreldreansvaret er ikke endret.",
                "RelatedPerson.patient",
            )
            continue
        nin = _national_id(list(resource.get("identifier") or []), demo)
        if nin is None:
            warn(
                label,
                "required",
                "forelderen mangler gyldig fødselsnummer eller D-nummer. Foreldreansvaret er ikke endret.",
                "RelatedPerson.identifier",
            )
            continue
        holder = db.session.execute(
            select(Person.id, Person.address_protection).where(Person.national_id == nin)
        ).first()
        if not holds:
            if holder is not None:
                changes.append(ParentChange(label, subject_id, nin, holds=False, holder_id=holder.id))
            continue  # a parent Varde never knew has nothing to end
        start = _fhir_date(period.get("start"))
        if start is not None and start > today:
            warn(
                label,
                "business-rule",
                "foreldreansvaret gjelder først fra en senere dato og er ikke registrert ennå.",
                "RelatedPerson.period",
            )
            continue
        if holder is not None and holder.id == subject_id:
            warn(
                label,
                "business-rule",
                "forelderen og barnet er samme person. Foreldreansvaret er ikke registrert.",
                "RelatedPerson.identifier",
            )
            continue
        child_protected = db.session.scalar(select(Person.address_protection).where(Person.id == subject_id))
        if child_protected is not None or (holder is not None and holder.address_protection is not None):
            warn(
                label,
                "business-rule",
                "personer med fortrolig eller strengt fortrolig adresse kan ikke representere eller representeres i "
                "Varde. Foreldreansvaret er ikke registrert.",
                "RelatedPerson",
            )
            continue
        if holder is not None:
            changes.append(ParentChange(label, subject_id, nin, holds=True, valid_until=last_day, holder_id=holder.id))
            continue
        given, family = _name(resource)
        birth = _fhir_date(resource.get("birthDate"))
        if not (given and family and birth):
            warn(
                label,
                "not-found",
                "forelderen er ukjent for Varde, og ressursen mangler navn eller fødselsdato (RelatedPerson.name, "
                "RelatedPerson.birthDate). Foreldreansvaret er ikke registrert.",
                "RelatedPerson.identifier",
            )
            continue
        from_number = birth_date_of(parse_nin(nin, allow_synthetic=demo))
        if from_number is not None and from_number != birth:
            warn(
                label,
                "value",
                "fødselsdatoen stemmer ikke med fødselsnummeret. Forelderen er ikke opprettet, og foreldreansvaret "
                "er ikke registrert.",
                "RelatedPerson.birthDate",
            )
            continue
        changes.append(
            ParentChange(
                label,
                subject_id,
                nin,
                holds=True,
                valid_until=last_day,
                given_name=given[:200],
                family_name=family[:200],
                birth_date=birth,
            )
        )
    return changes


def apply_parents(changes: list[ParentChange], now: datetime) -> None:
    """Add, renew or end the parent relations, in the bundle's order (a parent new to Varde is
    created once, however many children the bundle names)."""
    for change in changes:
        holder_id = change.holder_id
        if holder_id is None:
            holder_id = db.session.scalar(select(Person.id).where(Person.national_id == change.national_id))
        if holder_id is None:
            person = Person(
                national_id=change.national_id,
                given_name=change.given_name,
                family_name=change.family_name,
                birth_date=change.birth_date,
            )
            db.session.add(person)
            db.session.flush()
            holder_id = person.id
        if change.holds:
            people_services.parent_from_register(holder_id, change.subject_id, valid_until=change.valid_until, now=now)
        else:
            people_services.end_parent_from_register(holder_id, change.subject_id, now=now)
        db.session.flush()
