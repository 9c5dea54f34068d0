"""Clinicians register parents and guardians (verge), end them, and record a young person's
objection to their parents' access (pasient- og brukerrettighetsloven § 3-4 second paragraph).
Every change needs a care relation, is audited, and a refusal says why and changes nothing."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from app import clock
from app.access.models import AuditEvent
from app.db import db
from app.people import services as people_services
from app.people.models import ProxyLevel, Relation, RelationKind
from app.refusal import Refused
from tests import factories
from tests.conftest import csrf_from

PROTECTED = "Personer med fortrolig eller strengt fortrolig adresse kan ikke representere eller representeres i Varde."


@pytest.fixture
def lund(app, dr_lund, org):
    """Dr. Lund's own browser, at the hospital that treats the patients below."""
    factories.works_at(dr_lund, org)
    c = app.test_client()
    factories.session_for(dr_lund, c)
    return c


def treated(source, *people) -> None:  # type: ignore[no-untyped-def]
    """The hospital holds something about each (the care relation Dr. Lund needs)."""
    for person in people:
        factories.record(person, source, results=1, notes=0, years=0.1, prefix=f"c{person.id}")


def page(c, person) -> str:  # type: ignore[no-untyped-def]
    response = c.get(f"/ansatt/pasient/{person.id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def post(c, path: str, **data):  # type: ignore[no-untyped-def]
    return c.post(path, data={"csrf_token": csrf_from(c, "/ansatt"), **data})


def register_parent(c, child, national_id: str):  # type: ignore[no-untyped-def]
    return post(c, f"/ansatt/pasient/{child.id}/forelder", parent_national_id=national_id)


def register_guardian(c, patient, national_id: str, **fields):  # type: ignore[no-untyped-def]
    data = {"guardian_national_id": national_id, "level": "standard", "scope_text": "Helse og personlige forhold"}
    data.update(fields)
    return post(c, f"/ansatt/pasient/{patient.id}/verge", **data)


def relations() -> list[Relation]:
    return list(db.session.scalars(select(Relation).order_by(Relation.id)))


def audited(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def switch(c, person_id: int) -> int:  # type: ignore[no-untyped-def]
    return c.post("/profil", data={"csrf_token": csrf_from(c, "/"), "person": person_id}).status_code


def browser_of(app, user):  # type: ignore[no-untyped-def]
    c = app.test_client()
    factories.session_for(user, c)
    return c


def protect(person, code: str = "7") -> None:  # type: ignore[no-untyped-def]
    person.address_protection = code
    db.session.commit()


def unknown_national_id() -> str:
    return factories.nin_for(date(1975, 3, 14))


def wrong_check_digit(national_id: str) -> str:
    return national_id[:-1] + str((int(national_id[-1]) + 1) % 10)


# -- Parents -----------------------------------------------------------------------------------------


def test_a_clinician_registers_a_parent_who_can_then_open_the_childs_record(app, lund, dr_lund, kari, ola, source):
    treated(source, ola)
    assert "Registrer forelder" in page(lund, ola) and "Registrer verge" not in page(lund, ola)
    response = register_parent(lund, ola, kari.person.national_id)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/ansatt/pasient/{ola.id}#parorende")
    [relation] = relations()
    assert (relation.holder_id, relation.subject_id, relation.kind) == (kari.person_id, ola.id, RelationKind.PARENT)
    assert (relation.source, relation.created_by_id, relation.revoked_at) == ("staff", dr_lund.id, None)
    [row] = audited("register_parent")
    assert (row.actor_user_id, row.subject_person_id, row.object_type, row.object_id, row.basis) == (
        dr_lund.id,
        ola.id,
        "relation",
        str(relation.id),
        "care_relation",
    )
    shown = page(lund, ola)
    assert "Kari Nordmann er registrert som forelder." in shown
    assert "Kari Nordmann" in shown.split("Gjelder nå")[1] and "Forelder" in shown
    assert switch(browser_of(app, kari), ola.id) == 303


def test_ending_a_parent_stops_access_on_the_parents_next_request(app, lund, dr_lund, kari, ola, source):
    treated(source, ola)
    register_parent(lund, ola, kari.person.national_id)
    mother = browser_of(app, kari)
    assert switch(mother, ola.id) == 303
    assert "Du ser nå journalen til Ola" in mother.get("/").get_data(as_text=True)
    [relation] = relations()
    response = post(lund, f"/ansatt/pasient/{ola.id}/relasjon/{relation.id}/avslutt")
    assert response.status_code == 303
    db.session.refresh(relation)
    assert relation.revoked_at is not None and relation.revoked_by_id == dr_lund.id
    assert [r.object_id for r in audited("end_relation")] == [str(relation.id)]
    # The same session: the next page is her own, and switching back is refused.
    assert "Du ser nå journalen til Ola" not in mother.get("/").get_data(as_text=True)
    assert switch(mother, ola.id) == 404
    shown = page(lund, ola)
    assert "Ingen er registrert som forelder, verge eller fullmektig" in shown
    assert "avsluttet" in shown.split("<h3>Avsluttet</h3>")[1]


def test_registering_again_after_ending_reuses_the_same_row(app, lund, kari, ola, source):
    treated(source, ola)
    register_parent(lund, ola, kari.person.national_id)
    [first] = relations()
    post(lund, f"/ansatt/pasient/{ola.id}/relasjon/{first.id}/avslutt")
    assert register_parent(lund, ola, kari.person.national_id).status_code == 303
    [again] = relations()
    assert again.id == first.id and again.revoked_at is None and again.revoked_by_id is None
    assert switch(browser_of(app, kari), ola.id) == 303


def test_ending_a_relation_that_has_ended_is_refused(lund, kari, ola, source):
    treated(source, ola)
    register_parent(lund, ola, kari.person.national_id)
    [relation] = relations()
    post(lund, f"/ansatt/pasient/{ola.id}/relasjon/{relation.id}/avslutt")
    db.session.refresh(relation)
    ended_at = relation.revoked_at
    response = post(lund, f"/ansatt/pasient/{ola.id}/relasjon/{relation.id}/avslutt")
    assert response.status_code == 409
    assert "Denne relasjonen er allerede avsluttet." in response.get_data(as_text=True)
    db.session.refresh(relation)
    assert relation.revoked_at == ended_at
    assert len(audited("end_relation")) == 1


@pytest.mark.parametrize("case", ["unknown", "invalid", "self", "too_young", "protected_parent", "protected_child"])
def test_a_parent_registration_that_cannot_be_done_says_why_and_changes_nothing(lund, kari, ola, ingrid, source, case):
    treated(source, ola)
    national_id, message, status = {
        "unknown": (unknown_national_id(), "Vi finner ingen med dette fødselsnummeret i Varde.", 409),
        "invalid": (wrong_check_digit(kari.person.national_id), "Fødselsnummeret er ikke gyldig.", 400),
        "self": (ola.national_id, "Pasienten kan ikke registreres som sin egen forelder.", 409),
        "too_young": (ingrid.person.national_id, "er for ung til å registreres som forelder", 409),
        "protected_parent": (kari.person.national_id, PROTECTED, 409),
        "protected_child": (kari.person.national_id, PROTECTED, 409),
    }[case]
    if case == "protected_parent":
        protect(kari.person)
    if case == "protected_child":
        protect(ola, "6")
    response = register_parent(lund, ola, national_id)
    assert response.status_code == status
    text = response.get_data(as_text=True)
    assert message in text
    assert "Feil: " in text and 'href="#parent_national_id"' in text  # the error summary names the field
    assert relations() == []
    assert audited("register_parent") == []


def test_a_parent_registered_already_is_not_registered_twice(lund, kari, ola, source):
    treated(source, ola)
    register_parent(lund, ola, kari.person.national_id)
    response = register_parent(lund, ola, kari.person.national_id)
    assert response.status_code == 409
    assert "Kari Nordmann er allerede registrert som forelder." in response.get_data(as_text=True)
    assert len(relations()) == 1


def test_parents_are_registered_only_for_children_under_16(lund, kari, per, source):
    treated(source, per.person)
    assert "Registrer forelder" not in page(lund, per.person)
    response = register_parent(lund, per.person, kari.person.national_id)
    assert response.status_code == 409
    assert "Foreldre kan bare registreres for barn under 16 år." in response.get_data(as_text=True)
    assert relations() == []


# -- Guardians (verge) ----------------------------------------------------------------------------------


def test_a_clinician_registers_a_guardian_with_level_mandate_and_end_date(app, lund, dr_lund, kari, per, source):
    treated(source, per.person)
    last_day = clock.today_in_norway() + timedelta(days=365)
    assert "Registrer verge" in page(lund, per.person)
    response = register_guardian(
        lund,
        per.person,
        kari.person.national_id,
        level="read_only",
        scope_text="Økonomi og helse",
        valid_until=last_day.isoformat(),
    )
    assert response.status_code == 303
    [relation] = relations()
    assert (relation.kind, relation.level, relation.scope_text, relation.valid_until) == (
        RelationKind.GUARDIAN,
        ProxyLevel.READ_ONLY,
        "Økonomi og helse",
        last_day,
    )
    assert (relation.holder_id, relation.subject_id, relation.created_by_id) == (
        kari.person_id,
        per.person_id,
        dr_lund.id,
    )
    assert [r.object_id for r in audited("register_guardian")] == [str(relation.id)]
    shown = page(lund, per.person)
    assert "Verge (Bare lese)" in shown and "Mandat: Økonomi og helse" in shown
    assert switch(browser_of(app, kari), per.person_id) == 303
    # Ended by the clinician: gone on Kari's next request.
    post(lund, f"/ansatt/pasient/{per.person_id}/relasjon/{relation.id}/avslutt")
    assert switch(browser_of(app, kari), per.person_id) == 404


@pytest.mark.parametrize(
    ("case", "message", "status"),
    [
        ("unknown", "Vi finner ingen med dette fødselsnummeret i Varde.", 409),
        ("invalid", "Fødselsnummeret er ikke gyldig.", 400),
        ("self", "Pasienten kan ikke registreres som sin egen verge.", 409),
        ("too_young", "er for ung til å være verge. En verge må være minst 18 år.", 409),
        ("protected_guardian", PROTECTED, 409),
        ("protected_patient", PROTECTED, 409),
        ("no_mandate", "Skriv omfanget av vergemålet slik det står i vedtaket.", 400),
        ("blank_mandate", "Skriv omfanget av vergemålet slik det står i vedtaket.", 400),
        ("long_mandate", "Omfanget av vergemålet kan være høyst 500 tegn.", 400),
        ("past_end", "Sluttdatoen kan ikke være tilbake i tid.", 400),
        ("bad_level", "Ikke et gyldig valg", 400),
        ("bad_date", "Ikke en gyldig datoverdi", 400),
    ],
)
def test_a_guardian_registration_that_cannot_be_done_says_why_and_changes_nothing(
    lund, kari, per, ingrid, source, case, message, status
):
    treated(source, per.person)
    national_id = {
        "unknown": unknown_national_id(),
        "invalid": wrong_check_digit(kari.person.national_id),
        "self": per.person.national_id,
        "too_young": ingrid.person.national_id,
    }.get(case, kari.person.national_id)
    fields = {
        "no_mandate": {"scope_text": ""},
        "blank_mandate": {"scope_text": "   "},
        "long_mandate": {"scope_text": "x" * 501},
        "past_end": {"valid_until": (clock.today_in_norway() - timedelta(days=1)).isoformat()},
        "bad_level": {"level": "everything"},
        "bad_date": {"valid_until": "31.12.2030"},
    }.get(case, {})
    if case == "protected_guardian":
        protect(kari.person)
    if case == "protected_patient":
        protect(per.person)
    response = register_guardian(lund, per.person, national_id, **fields)
    assert response.status_code == status
    text = response.get_data(as_text=True)
    assert message in text
    assert "Feil: " in text and "<details open>" in text  # the form stays open with its error
    assert relations() == []
    assert audited("register_guardian") == []


def test_guardians_are_registered_only_for_adults(lund, kari, ingrid, source):
    treated(source, ingrid.person)
    assert "Registrer verge" not in page(lund, ingrid.person)
    response = register_guardian(lund, ingrid.person, kari.person.national_id)
    assert response.status_code == 409
    assert "Verge kan bare registreres for pasienter som er 18 år eller eldre." in response.get_data(as_text=True)
    assert relations() == []


def test_the_service_refuses_what_the_form_would_have_caught(kari, per, dr_lund):
    """Other callers than the form get the same rules."""
    common = {"level": ProxyLevel.STANDARD, "by": dr_lund, "organisation_id": None, "allow_synthetic": False}
    with pytest.raises(Refused, match="Skriv omfanget"):
        people_services.register_guardian(
            per.person, kari.person.national_id, scope_text=" ", valid_until=None, **common
        )
    with pytest.raises(Refused, match="tilbake i tid"):
        people_services.register_guardian(
            per.person,
            kari.person.national_id,
            scope_text="Helse",
            valid_until=clock.today_in_norway() - timedelta(days=1),
            **common,
        )
    with pytest.raises(Refused, match="høyst 500 tegn"):
        people_services.register_guardian(
            per.person, kari.person.national_id, scope_text="x" * 501, valid_until=None, **common
        )
    with pytest.raises(Refused, match="gyldig fødselsdato"):
        people_services.register_guardian(per.person, "12345678901", scope_text="Helse", valid_until=None, **common)
    assert relations() == []


# -- Ending: what staff may end, and ids that are not the patient's ------------------------------------


def test_a_proxy_is_shown_but_ended_by_the_patient_not_by_staff(lund, kari, per, source):
    treated(source, per.person)
    proxy = Relation(
        holder_id=kari.person_id,
        subject_id=per.person_id,
        kind=RelationKind.PROXY,
        level=ProxyLevel.FULL,
        source="patient",
    )
    db.session.add(proxy)
    db.session.commit()
    shown = page(lund, per.person)
    assert "Fullmektig (Full tilgang)" in shown and "Avsluttes av pasienten." in shown
    assert f"/relasjon/{proxy.id}/avslutt" not in shown
    response = post(lund, f"/ansatt/pasient/{per.person_id}/relasjon/{proxy.id}/avslutt")
    assert response.status_code == 409
    assert "En fullmakt avsluttes av pasienten selv" in response.get_data(as_text=True)
    db.session.refresh(proxy)
    assert proxy.revoked_at is None


def test_another_patients_relation_is_not_found(lund, kari, ola, per, source):
    treated(source, ola, per.person)
    register_parent(lund, ola, kari.person.national_id)
    [relation] = relations()
    # Ola's relation through Per's page, and an id that does not exist: the same 404.
    assert post(lund, f"/ansatt/pasient/{per.person_id}/relasjon/{relation.id}/avslutt").status_code == 404
    assert post(lund, f"/ansatt/pasient/{per.person_id}/relasjon/999999/avslutt").status_code == 404
    db.session.refresh(relation)
    assert relation.revoked_at is None
    denied = db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "end_relation", AuditEvent.outcome == "denied")
        .order_by(AuditEvent.id)
    ).all()
    assert [(d.subject_person_id, d.object_id) for d in denied] == [
        (per.person_id, str(relation.id)),
        (per.person_id, "999999"),
    ]


# -- Who may change anything --------------------------------------------------------------------------


def test_a_clinician_without_a_care_relation_gets_404_and_changes_nothing(app, dr_berg, kari, ola, ingrid, source):
    treated(source, ola, ingrid.person)
    factories.works_at(dr_berg, factories.hospital("Ålesund sjukehus"))
    berg = browser_of(app, dr_berg)
    assert berg.get(f"/ansatt/pasient/{ola.id}").status_code == 404
    assert register_parent(berg, ola, kari.person.national_id).status_code == 404
    assert post(berg, f"/ansatt/pasient/{ingrid.person_id}/innsigelse").status_code == 404
    assert relations() == []
    db.session.refresh(ingrid.person)
    assert ingrid.person.objects_to_parents_at is None
    # A patient cannot reach the console at all.
    assert register_parent(browser_of(app, kari), ola, kari.person.national_id).status_code == 404
    assert relations() == []


def test_a_change_without_the_csrf_token_is_refused(lund, kari, ola, source):
    treated(source, ola)
    response = lund.post(f"/ansatt/pasient/{ola.id}/forelder", data={"parent_national_id": kari.person.national_id})
    assert response.status_code == 400
    assert relations() == []


# -- The young person's objection (§ 3-4 second paragraph) -----------------------------------------------


def test_the_objection_hides_the_teenager_from_her_parents_until_it_is_withdrawn(
    app, lund, dr_lund, kari, ingrid, source
):
    treated(source, ingrid.person)
    factories.parent_of(kari, ingrid.person)
    mother = browser_of(app, kari)
    assert switch(mother, ingrid.person_id) == 303
    shown = page(lund, ingrid.person)
    assert "Registrer at ungdommen motsetter seg at foreldrene får innsyn" in shown
    assert "Begrenset innsyn" in shown

    assert post(lund, f"/ansatt/pasient/{ingrid.person_id}/innsigelse").status_code == 303
    db.session.refresh(ingrid.person)
    assert ingrid.person.objects_to_parents_at is not None
    assert ingrid.person.objects_to_parents_by_id == dr_lund.id
    [row] = audited("record_objection")
    assert (row.actor_user_id, row.subject_person_id, row.basis) == (dr_lund.id, ingrid.person_id, "care_relation")
    # Her mother's next request: back to her own record; Ingrid is no longer hers to choose.
    overview = mother.get("/").get_data(as_text=True)
    assert "Du ser nå journalen til Ingrid" not in overview and "Ingrid, 14 år" not in overview
    assert switch(mother, ingrid.person_id) == 404
    assert "Gir ingen tilgang: ungdommen motsetter seg" in page(lund, ingrid.person)

    assert post(lund, f"/ansatt/pasient/{ingrid.person_id}/innsigelse/opphev").status_code == 303
    db.session.refresh(ingrid.person)
    assert ingrid.person.objects_to_parents_at is None and ingrid.person.objects_to_parents_by_id is None
    assert len(audited("withdraw_objection")) == 1
    assert switch(mother, ingrid.person_id) == 303


def test_an_objection_outside_12_to_15_or_twice_or_undone_when_absent_is_refused(lund, ola, ingrid, source):
    treated(source, ola, ingrid.person)
    assert "motsetter seg" not in page(lund, ola)
    too_young = post(lund, f"/ansatt/pasient/{ola.id}/innsigelse")
    assert too_young.status_code == 409
    assert "Dette kan bare registreres for ungdom fra 12 til og med 15 år." in too_young.get_data(as_text=True)
    nothing = post(lund, f"/ansatt/pasient/{ingrid.person_id}/innsigelse/opphev")
    assert nothing.status_code == 409
    assert "Det er ikke registrert at ungdommen motsetter seg innsyn." in nothing.get_data(as_text=True)
    post(lund, f"/ansatt/pasient/{ingrid.person_id}/innsigelse")
    db.session.refresh(ingrid.person)
    first = ingrid.person.objects_to_parents_at
    twice = post(lund, f"/ansatt/pasient/{ingrid.person_id}/innsigelse")
    assert twice.status_code == 409
    assert "Det er allerede registrert" in twice.get_data(as_text=True)
    db.session.refresh(ingrid.person)
    db.session.refresh(ola)
    assert ingrid.person.objects_to_parents_at == first and ola.objects_to_parents_at is None
    assert len(audited("record_objection")) == 1
    assert audited("withdraw_objection") == []


def test_a_second_submit_racing_the_first_is_told_and_inserts_no_duplicate(kari, ola, dr_lund):
    """Two POSTs at once both find no relation; the unique constraint stops the second one."""
    factories.parent_of(kari, ola)  # the first submit, committed a moment ago
    with pytest.raises(Refused, match="ble nettopp registrert av noen andre"):
        people_services._renew_by_staff(
            None, kari.person, ola, RelationKind.PARENT, now=clock.utcnow(), by_id=dr_lund.id
        )
    db.session.rollback()
    assert len(relations()) == 1
