"""Parents from the population register: a RelatedPerson with parental responsibility (v3-RoleCode
MTH/FTH/PRN, or HL7 Norway's foreldreansvar codes) adds the parent relation through the FHIR ingest;
inactive or past its end, it ends it. What cannot be done is a warning, never a refused bundle."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app import clock
from app.access.models import AuditEvent
from app.db import db
from app.fhir.ingest import import_bundle
from app.fhir.relations import NO_FAMILY_RELATION, NO_PARENTAL_RESPONSIBILITY, ROLE_CODE_SYSTEM, parental_responsibility
from app.fhir.validate import BundleRefused
from app.people.models import Person, Relation, RelationKind
from app.people.nin import SYSTEM_DNR, SYSTEM_FNR, make_nin
from tests import factories
from tests.conftest import csrf_from

NO_BASIS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "fhir" / "no-basis"


def patient_resource(person: Person, rid: str = "pas-1") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": rid,
        "identifier": [{"system": SYSTEM_FNR, "value": person.national_id}],
        "name": [{"family": person.family_name, "given": [person.given_name]}],
    }


def related(
    parent_nin: str,
    *,
    rid: str = "rp-1",
    patient: dict[str, Any] | None = None,
    code: tuple[str, str] = (ROLE_CODE_SYSTEM, "MTH"),
    **extra: Any,
) -> dict[str, Any]:
    return {
        "resourceType": "RelatedPerson",
        "id": rid,
        "identifier": [{"system": SYSTEM_FNR, "value": parent_nin}],
        "patient": patient or {"reference": "Patient/pas-1"},
        "relationship": [{"coding": [{"system": code[0], "code": code[1]}]}],
        **extra,
    }


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{r['resourceType'].lower()}-{r.get('id', i)}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r.get('id', i)}"},
            }
            for i, r in enumerate(resources)
        ],
    }


def parent_relations() -> list[Relation]:
    return list(db.session.scalars(select(Relation).where(Relation.kind == RelationKind.PARENT).order_by(Relation.id)))


def switch(app, user, person_id: int) -> int:  # type: ignore[no-untyped-def]
    c = app.test_client()
    factories.session_for(user, c)
    return c.post("/profil", data={"csrf_token": csrf_from(c, "/"), "person": person_id}).status_code


def person_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Person))


@pytest.fixture(autouse=True)
def _register(source):  # type: ignore[no-untyped-def]
    """In this module the source system is the population register's feed (only it may change
    parental responsibility; see test_only_the_population_register_changes_parental_responsibility)."""
    source.population_register = True
    db.session.commit()


def test_only_the_population_register_changes_parental_responsibility(kari, ola, org):
    """Any other source system (a hospital's, a lab's) is refused that part, as a warning."""
    hospital, _token = factories.fhir_client(org, "lab-system")
    result = import_bundle(bundle(patient_resource(ola), related(kari.person.national_id)), hospital)
    [warning] = [w for w in result.warnings if w.severity == "warning"]
    assert warning.code == "forbidden" and "bare Folkeregisteret" in warning.diagnostics
    assert parent_relations() == []


# -- Adding and ending ---------------------------------------------------------------------------------


def test_a_parent_from_the_register_can_open_the_childs_record(app, kari, ola, source):
    result = import_bundle(bundle(patient_resource(ola), related(kari.person.national_id)), source)
    assert [w for w in result.warnings if w.severity == "warning"] == []
    [relation] = parent_relations()
    assert (relation.holder_id, relation.subject_id, relation.source) == (kari.person_id, ola.id, "register")
    assert relation.created_by_id is None and relation.revoked_at is None
    row = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "register_parent"))
    assert (row.actor_user_id, row.subject_person_id, row.basis, row.object_id) == (
        None,
        ola.id,
        "register",
        str(relation.id),
    )
    assert switch(app, kari, ola.id) == 303


def test_the_same_bundle_again_changes_nothing(kari, ola, source):
    import_bundle(bundle(patient_resource(ola), related(kari.person.national_id)), source)
    [before] = parent_relations()
    created_at = before.created_at
    import_bundle(bundle(patient_resource(ola), related(kari.person.national_id)), source)
    [after] = parent_relations()
    assert after.id == before.id and after.created_at == created_at
    assert db.session.scalar(select(func.count()).where(AuditEvent.action == "register_parent")) == 1


@pytest.mark.parametrize(
    "ended",
    [
        {"active": False},
        {"period": {"start": "2019-01-01", "end": "2020-01-01"}},
        {"relationship": [{"coding": [{"system": NO_PARENTAL_RESPONSIBILITY, "code": "ukjent"}]}]},
    ],
    ids=["inactive", "period-ended", "responsibility-unknown"],
)
def test_the_register_ends_the_relation_and_a_later_one_reuses_the_row(app, kari, ola, source, ended):
    import_bundle(bundle(patient_resource(ola), related(kari.person.national_id)), source)
    [first] = parent_relations()
    assert switch(app, kari, ola.id) == 303
    import_bundle(bundle(patient_resource(ola), {**related(kari.person.national_id), **ended}), source)
    db.session.refresh(first)
    assert first.revoked_at is not None and first.revoked_by_id is None
    assert switch(app, kari, ola.id) == 404  # her next request
    import_bundle(bundle(patient_resource(ola), related(kari.person.national_id)), source)
    [again] = parent_relations()
    assert again.id == first.id and again.revoked_at is None and again.source == "register"
    assert switch(app, kari, ola.id) == 303


def test_the_register_ends_a_parent_staff_registered_too(kari, ola, source):
    factories.parent_of(kari, ola)  # source "staff" by default
    import_bundle(bundle(patient_resource(ola), related(kari.person.national_id, active=False)), source)
    [relation] = parent_relations()
    assert relation.revoked_at is not None


def test_a_relation_a_clinician_ended_is_not_put_back_by_the_register(kari, ola, source):
    """The register sends the same RelatedPerson every day; a parent a clinician ended (a court
    order the register does not show) stays ended until staff register them again."""
    import_bundle(bundle(patient_resource(ola), related(kari.person.national_id)), source)
    [relation] = parent_relations()
    relation.revoked_at = clock.utcnow()
    relation.revoked_by_id = kari.id  # any account: ended by a person, not by the register
    db.session.commit()
    import_bundle(bundle(patient_resource(ola), related(kari.person.national_id)), source)
    db.session.expire_all()
    [relation] = parent_relations()
    assert relation.revoked_at is not None


def test_an_end_date_to_come_is_the_relations_last_day(kari, ola, source):
    last_day = clock.today_in_norway() + timedelta(days=30)
    import_bundle(
        bundle(patient_resource(ola), related(kari.person.national_id, period={"end": last_day.isoformat()})), source
    )
    [relation] = parent_relations()
    assert relation.valid_until == last_day and relation.revoked_at is None


def test_the_child_may_be_named_by_national_id_and_the_parent_by_d_number(kari, ola, source):
    parent = factories.PersonFactory(
        given_name="Aleksander",
        family_name="Nowak",
        birth_date=date(1988, 4, 2),
        national_id=make_nin(date(1988, 4, 2), 123, dnr=True),
    )
    resource = related(
        parent.national_id,
        patient={"identifier": {"system": SYSTEM_FNR, "value": ola.national_id}},
        code=(ROLE_CODE_SYSTEM, "FTH"),
    )
    resource["identifier"][0]["system"] = SYSTEM_DNR
    result = import_bundle(bundle(resource), source)
    assert [w for w in result.warnings if w.severity == "warning"] == []
    [relation] = parent_relations()
    assert (relation.holder_id, relation.subject_id) == (parent.id, ola.id)


def test_a_parent_new_to_varde_is_created_from_name_and_birth_date(app, ola, source):
    birth = date(1986, 9, 12)
    nin = factories.nin_for(birth)
    resource = related(
        nin,
        code=(ROLE_CODE_SYSTEM, "PRN"),
        name=[{"use": "official", "family": "Lie", "given": ["Siri", "Marie"]}],
        birthDate=birth.isoformat(),
    )
    second_child = factories.PersonFactory(given_name="Emil", family_name="Lie", birth_date=date(2020, 1, 5))
    other = related(nin, rid="rp-2", patient={"reference": "Patient/pas-2"}, code=(ROLE_CODE_SYSTEM, "PRN"))
    other.update(name=resource["name"], birthDate=resource["birthDate"])
    import_bundle(bundle(patient_resource(ola), patient_resource(second_child, "pas-2"), resource, other), source)
    parent = db.session.scalar(select(Person).where(Person.national_id == nin))
    assert (parent.given_name, parent.family_name, parent.birth_date) == ("Siri Marie", "Lie", birth)
    assert sorted(r.subject_id for r in parent_relations()) == sorted([ola.id, second_child.id])
    assert {r.holder_id for r in parent_relations()} == {parent.id}  # one person, both children


# -- Warnings: the rest of the bundle is kept ----------------------------------------------------------


def _observation() -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "obs-1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}], "text": "Hemoglobin"},
        "subject": {"reference": "Patient/pas-1"},
        "effectiveDateTime": "2026-01-05T08:00:00+01:00",
        "valueQuantity": {"value": 13.1, "unit": "g/dL"},
    }


@pytest.mark.parametrize(
    ("case", "code", "text"),
    [
        ("unknown_parent", "not-found", "forelderen er ukjent for Varde, og ressursen mangler navn eller fødselsdato"),
        ("invalid_parent_id", "required", "forelderen mangler gyldig fødselsnummer eller D-nummer"),
        ("unknown_child", "not-found", "barnet (RelatedPerson.patient) er ukjent for Varde"),
        ("protected_child", "business-rule", "fortrolig eller strengt fortrolig adresse"),
        ("protected_parent", "business-rule", "fortrolig eller strengt fortrolig adresse"),
        ("birth_date_mismatch", "value", "fødselsdatoen stemmer ikke med fødselsnummeret"),
        ("starts_later", "business-rule", "gjelder først fra en senere dato"),
    ],
)
def test_what_cannot_be_done_is_a_warning_and_the_bundle_is_kept(kari, ola, source, case, code, text):
    nin = kari.person.national_id
    extra: dict[str, Any] = {}
    patient = None
    if case == "unknown_parent":
        nin = factories.nin_for(date(1979, 6, 1))
    if case == "invalid_parent_id":
        nin = nin[:-1] + str((int(nin[-1]) + 1) % 10)
    if case == "unknown_child":
        patient = {"identifier": {"system": SYSTEM_FNR, "value": factories.nin_for(date(2017, 2, 2))}}
    if case == "protected_child":
        ola.address_protection = "6"
    if case == "protected_parent":
        kari.person.address_protection = "7"
    if case == "birth_date_mismatch":
        nin = factories.nin_for(date(1979, 6, 1))
        extra = {"name": [{"family": "Lie", "given": ["Siri"]}], "birthDate": "1979-06-02"}
    if case == "starts_later":
        extra = {"period": {"start": (clock.today_in_norway() + timedelta(days=3)).isoformat()}}
    db.session.commit()
    people = person_count()
    result = import_bundle(
        bundle(patient_resource(ola), _observation(), related(nin, patient=patient, **extra)), source
    )
    [warning] = [w for w in result.warnings if w.severity == "warning"]
    assert warning.code == code and text in warning.diagnostics and warning.diagnostics.startswith("RelatedPerson/rp-1")
    assert result.created == 1  # the observation is stored all the same
    assert parent_relations() == []
    assert person_count() == people


def test_a_warning_reaches_the_source_in_the_operation_outcome(client, ola, source_token):
    register, token = source_token
    register.population_register = True
    db.session.commit()
    unknown = factories.nin_for(date(1979, 6, 1))
    response = client.post(
        "/fhir",
        data=json.dumps(bundle(patient_resource(ola), related(unknown))),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
    )
    assert response.status_code == 200
    issues = response.get_json()["issue"]
    assert any(i["severity"] == "warning" and "forelderen er ukjent for Varde" in i["diagnostics"] for i in issues)
    assert parent_relations() == []


def test_a_refused_bundle_creates_no_parent_and_no_relation(ola, source):
    birth = date(1986, 9, 12)
    nin = factories.nin_for(birth)
    resource = related(nin, name=[{"family": "Lie", "given": ["Siri"]}], birthDate=birth.isoformat())
    stranger = {**_observation(), "id": "obs-2", "subject": {"reference": "Patient/nobody"}}
    people = person_count()
    with pytest.raises(BundleRefused):
        import_bundle(bundle(patient_resource(ola), resource, stranger), source)
    assert parent_relations() == []
    assert person_count() == people


# -- Which relationships are parental responsibility ---------------------------------------------------


@pytest.mark.parametrize(
    ("codings", "expected"),
    [
        ([(ROLE_CODE_SYSTEM, "MTH")], True),
        ([(ROLE_CODE_SYSTEM, "FTH")], True),
        ([(ROLE_CODE_SYSTEM, "PRN")], True),
        ([(ROLE_CODE_SYSTEM, "ROOM")], None),  # the Inferno patient's roommate
        ([(NO_FAMILY_RELATION, "far")], None),  # a father without parental responsibility said
        ([(NO_FAMILY_RELATION, "far"), (NO_PARENTAL_RESPONSIBILITY, "far")], True),
        ([(NO_FAMILY_RELATION, "far"), (NO_PARENTAL_RESPONSIBILITY, "felles")], True),
        ([(NO_FAMILY_RELATION, "far"), (NO_PARENTAL_RESPONSIBILITY, "mor")], False),  # the mother alone
        ([(NO_PARENTAL_RESPONSIBILITY, "medmor")], True),
        ([(NO_PARENTAL_RESPONSIBILITY, "andre")], True),
        ([(NO_PARENTAL_RESPONSIBILITY, "ukjent")], False),
        ([("http://hl7.no/fhir/CodeSystem/no-basis-marital-status", "gift")], None),
    ],
)
def test_which_relationships_are_parental_responsibility(codings, expected):
    resource = {"relationship": [{"coding": [{"system": s, "code": c}]} for s, c in codings]}
    assert parental_responsibility(resource) is expected


# -- HL7 Norway's examples (../shared/fixtures/fhir/no-basis) ------------------------------------------

REPEATING = {"identifier", "relationship", "coding", "name", "given", "extension", "address", "line", "profile"}
REFERENCES = {"patient", "valueReference"}  # a Reference holds one identifier


def from_xml(path: Path) -> dict[str, Any]:
    """FHIR XML to FHIR JSON, for these simple examples: repeating elements as lists, primitives
    from their value attribute."""
    root = ET.parse(path).getroot()  # noqa: S314 - a fixture file on disk, not input

    def name_of(element: ET.Element) -> str:
        return element.tag.split("}", 1)[1]

    def convert(element: ET.Element) -> Any:
        if "value" in element.attrib:
            value = element.attrib["value"]
            if name_of(element) == "valueInteger":
                return int(value)
            if name_of(element) == "valueBoolean":
                return value == "true"
            return value
        out: dict[str, Any] = {"url": element.attrib["url"]} if "url" in element.attrib else {}
        for child in element:
            key, converted = name_of(child), convert(child)
            if key in REPEATING and not (key == "identifier" and name_of(element) in REFERENCES):
                out.setdefault(key, []).append(converted)
            else:
                out[key] = converted
        return out

    return {"resourceType": name_of(root), **convert(root)}


@pytest.fixture
def no_basis() -> Path:
    if not NO_BASIS.is_dir():
        pytest.skip(f"HL7 Norway's examples are not here ({NO_BASIS}); see ../shared/fixtures/README.md")
    return NO_BASIS


def test_hl7_norways_foreldreansvar_example_adds_the_father_once_he_is_known(app, no_basis, source):
    father_example = from_xml(no_basis / "no-basis-RelatedPerson-Solid-æresdoktor.xml")
    child = factories.PersonFactory(
        given_name="Barn", family_name="Æresdoktor", birth_date=date(2019, 2, 4), national_id="04021950128"
    )
    # The example names the father (fødselsnummer, name) but gives no birth date: not created.
    result = import_bundle(bundle(father_example), source)
    [warning] = [w for w in result.warnings if w.severity == "warning"]
    assert "forelderen er ukjent for Varde" in warning.diagnostics
    assert parent_relations() == []
    father = factories.PersonFactory(
        given_name="Solid", family_name="Æresdoktor", birth_date=date(2000, 8, 15), national_id="15080050515"
    )
    result = import_bundle(bundle(father_example), source)
    assert [w for w in result.warnings if w.severity == "warning"] == []
    [relation] = parent_relations()
    assert (relation.holder_id, relation.subject_id, relation.source) == (father.id, child.id, "register")


def test_hl7_norways_spouse_example_is_no_parental_relation(no_basis, source):
    factories.PersonFactory(national_id="04021950128", birth_date=date(2019, 2, 4))
    factories.PersonFactory(national_id="05073500186", birth_date=date(1935, 7, 5))
    for example in (
        "no-basis-RelatedPerson-Ærlend-Sørgård.xml",
        "no-basis-RelatedPerson-Ærlend-Sørgård-person-extension.xml",
    ):
        result = import_bundle(bundle(from_xml(no_basis / example)), source)
        assert [w for w in result.warnings if w.severity == "warning"] == []
        assert parent_relations() == []
