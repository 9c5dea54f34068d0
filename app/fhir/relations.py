"""A patient's standing relations to care units, from FHIR: the GP office and referrals.

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
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select

from app.db import db
from app.fhir import mapping
from app.fhir.validate import Issue
from app.people.models import CareUnit, Organisation, UnitRelation, UnitRelationKind
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
