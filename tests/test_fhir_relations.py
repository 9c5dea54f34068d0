"""The GP office from FHIR: Patient.generalPractitioner (by HER-id, or by an Organization's
number) becomes the patient's GP relation, which lets them write to the office; one at a time."""

from __future__ import annotations

from sqlalchemy import select

from app.db import db
from app.fhir.ingest import import_bundle
from app.fhir.relations import HER_SYSTEM, ORG_NUMBER_SYSTEM
from app.messages import services
from app.people.models import UnitRelation, UnitRelationKind
from app.people.nin import SYSTEM_FNR
from tests import factories


def _bundle(person, *general_practitioner: dict, extra: tuple = ()) -> dict:
    patient = {
        "resourceType": "Patient",
        "id": "pas-1",
        "identifier": [{"system": SYSTEM_FNR, "value": person.national_id}],
        "name": [{"family": person.family_name, "given": [person.given_name]}],
        "generalPractitioner": list(general_practitioner),
    }
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{r['resourceType'].lower()}-{r['id']}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in (patient, *extra)
        ],
    }


def _gp_units(person) -> list[int]:  # type: ignore[no-untyped-def]
    return db.session.scalars(
        select(UnitRelation.care_unit_id).where(
            UnitRelation.person_id == person.id, UnitRelation.kind == UnitRelationKind.GP
        )
    ).all()


def test_the_gp_office_named_by_her_id_becomes_the_patients_and_moves_with_the_list(kari):
    source = factories.fhir_client(factories.hospital("Trondheim kommune"), "tk-fastlege")[0]
    lade = factories.message_unit("Lade legesenter")
    byasen = factories.message_unit("Byåsen legesenter")
    lade.her_id, byasen.her_id = "720", "88123"
    db.session.commit()
    result = import_bundle(
        _bundle(kari.person, {"identifier": {"system": HER_SYSTEM, "value": "720"}, "display": "SIDSEL AASE JAVERY"}),
        source,
    )
    assert not result.warnings
    assert _gp_units(kari.person) == [lade.id]
    assert [c.relation for c in services.units_for(kari.person) if c.unit.id == lade.id] == ["gp"]
    # The patient changed GP: the relation moves; the same bundle again changes nothing.
    import_bundle(_bundle(kari.person, {"identifier": {"system": HER_SYSTEM, "value": "88123"}}), source)
    import_bundle(_bundle(kari.person, {"identifier": {"system": HER_SYSTEM, "value": "88123"}}), source)
    assert _gp_units(kari.person) == [byasen.id]


def test_an_organization_in_the_bundle_names_the_office_by_its_number(kari):
    source = factories.fhir_client(factories.hospital("Trondheim kommune"), "tk-fastlege")[0]
    lade = factories.message_unit("Lade legesenter")
    lade.organisation.org_number = "974760673"
    db.session.commit()
    org = {
        "resourceType": "Organization",
        "id": "lade",
        "identifier": [{"system": ORG_NUMBER_SYSTEM, "value": "974760673"}],
        "name": "Lade legesenter",
    }
    import_bundle(_bundle(kari.person, {"reference": "Organization/lade"}, extra=(org,)), source)
    assert _gp_units(kari.person) == [lade.id]


def test_an_unknown_gp_is_a_warning_and_changes_nothing(kari):
    source = factories.fhir_client(factories.hospital("Trondheim kommune"), "tk-fastlege")[0]
    lade = factories.message_unit("Lade legesenter")
    factories.gp_of(kari.person, lade)
    result = import_bundle(_bundle(kari.person, {"identifier": {"system": HER_SYSTEM, "value": "999999"}}), source)
    assert [w.code for w in result.warnings] == ["not-found"]
    assert "fastlegekontoret er ukjent" in result.warnings[0].diagnostics
    assert _gp_units(kari.person) == [lade.id]


def _referral(person, status: str, performer: dict, rid: str = "henv-1") -> dict:
    return {
        "resourceType": "ServiceRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "category": [{"text": "Henvisning"}],
        "code": {"text": "Utredning for hjertebank"},
        "subject": {"reference": "Patient/pas-1"},
        "performer": [performer],
    }


def _referral_units(person) -> list[int]:  # type: ignore[no-untyped-def]
    return db.session.scalars(
        select(UnitRelation.care_unit_id).where(
            UnitRelation.person_id == person.id, UnitRelation.kind == UnitRelationKind.REFERRAL
        )
    ).all()


def test_an_active_referral_lets_the_patient_write_and_ends_with_it(kari, org):
    source = factories.fhir_client(org, "stolav-dips")[0]
    unit = org.care_units[0]  # "Medisinsk poliklinikk", named by the HealthcareService
    service = {"resourceType": "HealthcareService", "id": "medpol", "name": "Medisinsk poliklinikk"}
    active = _referral(kari.person, "active", {"reference": "HealthcareService/medpol"})
    result = import_bundle(_bundle(kari.person, extra=(service, active)), source)
    assert not result.warnings
    assert _referral_units(kari.person) == [unit.id]
    assert [c.relation for c in services.units_for(kari.person) if c.unit.id == unit.id] == ["referral"]
    done = _referral(kari.person, "completed", {"reference": "HealthcareService/medpol"})
    import_bundle(_bundle(kari.person, extra=(service, done)), source)
    assert _referral_units(kari.person) == []


def test_a_referral_to_a_unit_varde_does_not_know_is_a_warning(kari, org):
    source = factories.fhir_client(org, "stolav-dips")[0]
    referral = _referral(kari.person, "active", {"display": "Ukjent poliklinikk"})
    result = import_bundle(_bundle(kari.person, extra=(referral,)), source)
    assert [w.code for w in result.warnings] == ["not-found"]
    assert _referral_units(kari.person) == []
