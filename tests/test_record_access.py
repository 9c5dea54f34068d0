"""One access policy for the record: what each viewer sees, 404 for everything else, an audit row per read."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from app.access.models import AuditEvent
from app.db import db
from app.record.models import ItemKind, RecordItem, ReleaseState
from app.record.release import item_url
from tests import factories

LIST_PAGES = [
    "/",
    "/journal/prover",
    "/journal/notater",
    "/journal/besok",
    "/journal/legemidler",
    "/journal/vaksiner",
    "/journal/dokumenter",
    "/journal/eksport.json",
    "/journal/utskrift",
]


@pytest.fixture
def records(kari, per, source):
    factories.record(kari.person, source, prefix="k")
    factories.record(per.person, source, prefix="p")


def _items(person, kind=None):
    q = select(RecordItem).where(RecordItem.person_id == person.id)
    if kind:
        q = q.where(RecordItem.kind == kind)
    return list(db.session.scalars(q.order_by(RecordItem.id)))


def _audit_count() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEvent))


@pytest.mark.usefixtures("records")
@pytest.mark.parametrize("kind", list(ItemKind))
def test_another_patients_item_is_not_found_on_every_record_route(client, login_as, kari, per, kind):
    login_as(kari)
    theirs = _items(per.person, kind)[0]
    mine = _items(kari.person, kind)[0]
    assert client.get(item_url(mine.id, kind)).status_code == 200
    assert client.get(item_url(theirs.id, kind)).status_code == 404
    if kind in (ItemKind.DOCUMENT, ItemKind.REPORT):
        assert client.get(item_url(theirs.id, kind) + "/fil").status_code == 404
    # The wrong kind's URL for one's own item, and an id that does not exist, look the same.
    other_kind = ItemKind.NOTE if kind is not ItemKind.NOTE else ItemKind.RESULT
    assert client.get(item_url(mine.id, other_kind)).status_code == 404
    assert client.get(item_url(999999, kind)).status_code == 404


@pytest.mark.usefixtures("records")
def test_the_patients_lists_never_show_another_patients_items(client, login_as, kari, per):
    login_as(kari)
    per_titles = {i.source_id for i in _items(per.person)}
    for path in LIST_PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
        text = response.get_data(as_text=True)
        assert not any(f'/{i.id}"' in text for i in _items(per.person)), path
    bundle = json.loads(client.get("/journal/eksport.json").data)
    exported = {e["resource"].get("id") for e in bundle["entry"]}
    assert not exported & per_titles
    assert {i.source_id for i in _items(kari.person)} <= exported


@pytest.mark.usefixtures("records")
def test_every_read_writes_exactly_one_audit_row(client, login_as, kari):
    login_as(kari)
    before = _audit_count()
    reads = LIST_PAGES + [item_url(i.id, i.kind) for i in _items(kari.person)[:15]]
    for path in reads:
        assert client.get(path).status_code == 200
    assert _audit_count() - before == len(reads)
    row = db.session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
    assert (row.actor_user_id, row.subject_person_id, row.basis, row.outcome) == (kari.id, kari.person.id, "own", "ok")
    assert row.object_type == "record_item" and row.occurred_at.tzinfo is not None


@pytest.mark.usefixtures("records")
def test_a_denied_read_is_audited_too(client, login_as, kari, per):
    login_as(kari)
    theirs = _items(per.person, ItemKind.RESULT)[0]
    before = _audit_count()
    client.get(item_url(theirs.id, ItemKind.RESULT))
    row = db.session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
    assert _audit_count() == before + 1
    assert (row.outcome, row.subject_person_id) == ("denied", kari.person.id)


def test_held_withheld_and_never_items_are_not_shown_to_the_patient(client, login_as, kari, source):
    factories.record(kari.person, source, prefix="k")
    results = _items(kari.person, ItemKind.RESULT)
    held, withheld, never = results[0], results[1], results[2]
    db.session.execute(
        RecordItem.__table__.update()
        .where(RecordItem.id == held.id)
        .values(release_state=ReleaseState.HELD, released_at=None)
    )
    db.session.execute(
        RecordItem.__table__.update()
        .where(RecordItem.id == never.id)
        .values(release_state=ReleaseState.NEVER, released_at=None)
    )
    from app import clock

    db.session.execute(
        RecordItem.__table__.update()
        .where(RecordItem.id == withheld.id)
        .values(withheld_at=clock.utcnow(), withheld_reason="x")
    )
    db.session.commit()
    login_as(kari)
    for item in (held, withheld, never):
        assert client.get(item_url(item.id, item.kind)).status_code == 404
    listing = client.get("/journal/prover?q=").get_data(as_text=True)
    for item in (held, withheld, never):
        assert f'/journal/prover/{item.id}"' not in listing
    assert client.get(item_url(results[3].id, ItemKind.RESULT)).status_code == 200


@pytest.mark.usefixtures("records")
def test_a_clinician_with_a_care_relation_reads_and_the_patient_sees_who(
    client, app, login_as, kari, dr_lund, dr_berg, org
):
    factories.works_at(dr_lund, org)
    other = factories.hospital("Ålesund sjukehus")
    factories.works_at(dr_berg, other)
    item = _items(kari.person, ItemKind.NOTE)[0]

    login_as(dr_lund)
    assert client.get(f"/ansatt/pasient/{kari.person.id}").status_code == 200
    assert client.get(f"/ansatt/element/{item.id}").status_code == 200

    berg = app.test_client()
    login_as(dr_berg, berg)
    assert berg.get(f"/ansatt/pasient/{kari.person.id}").status_code == 404
    assert berg.get(f"/ansatt/element/{item.id}").status_code == 404
    # A patient cannot use the staff console, and staff have no patient record pages of their own.
    assert berg.get(item_url(item.id, item.kind)).status_code == 404

    patient = app.test_client()
    login_as(kari, patient)
    page = patient.get("/journal/hvem-har-sett").get_data(as_text=True)
    assert "Dr. Marte Lund" in page and "Helsepersonell" in page and org.name in page
    assert "Dr. Henrik Berg" not in page  # denied, so nothing was seen
    assert patient.get(f"/ansatt/pasient/{kari.person.id}").status_code == 404


@pytest.mark.usefixtures("records")
def test_a_clinician_only_sees_items_from_their_own_organisation(client, login_as, kari, dr_lund, org):
    gp = factories.hospital("Lade legesenter", factories.OrganisationKind.GP_OFFICE)
    gp_source = factories.fhir_client(gp, "lade")[0]
    factories.record(kari.person, gp_source, prefix="gp")
    factories.works_at(dr_lund, org)
    gp_item = db.session.scalar(select(RecordItem).where(RecordItem.organisation_id == gp.id).limit(1))
    login_as(dr_lund)
    assert client.get(f"/ansatt/element/{gp_item.id}").status_code == 404
    page = client.get(f"/ansatt/pasient/{kari.person.id}").get_data(as_text=True)
    assert f'/ansatt/element/{gp_item.id}"' not in page


def _queries(client, path) -> int:
    statements: list[str] = []

    def count(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        statements.append(_args[2] if len(_args) > 2 else "")

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    return len(statements)


def test_pages_make_the_same_number_of_queries_whatever_the_history(client, login_as, kari, per, source):
    factories.record(kari.person, source, prefix="small", results=12, notes=2, years=1)
    factories.record(per.person, source, prefix="big", results=400, notes=60, years=10)
    small, big = {}, {}
    login_as(kari)
    pages = ["/", "/journal/prover", "/journal/notater", "/journal/besok"]
    for path in pages:
        small[path] = _queries(client, path)
    login_as(per)
    for path in pages:
        big[path] = _queries(client, path)
    assert big == small
    assert max(big.values()) <= 12


@pytest.mark.usefixtures("records")
def test_a_staff_search_is_audited_and_shown_to_the_patient(client, app, login_as, kari, dr_lund, org):
    factories.works_at(dr_lund, org)
    login_as(dr_lund)
    assert "Kari Nordmann" in client.get("/ansatt?q=Kari").get_data(as_text=True)
    # Too short as one types (htmx asks for the results only): the results say why there are none.
    short = client.get("/ansatt?q=K", headers={"HX-Request": "true", "HX-Target": "found"}).get_data(as_text=True)
    assert "Skriv mellom 2 og 100 tegn." in short
    patient = app.test_client()
    login_as(kari, patient)
    page = patient.get("/journal/hvem-har-sett").get_data(as_text=True)
    assert "fant deg i et pasientsøk" in page and org.name in page


@pytest.mark.usefixtures("records")
def test_a_download_keeps_its_sandbox_and_unknown_types_are_only_bytes(client, login_as, kari):
    from app.record.models import RecordContent

    document = _items(kari.person, ItemKind.DOCUMENT)[0]
    login_as(kari)
    response = client.get(item_url(document.id, ItemKind.DOCUMENT) + "/fil")
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response.mimetype == "application/pdf"
    content = db.session.get(RecordContent, document.id)
    content.content_type = "image/svg+xml"
    db.session.commit()
    response = client.get(item_url(document.id, ItemKind.DOCUMENT) + "/fil")
    assert response.mimetype == "application/octet-stream"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_searches_fold_norwegian_letters_on_every_database(client, login_as, dr_lund, org, source):
    oystein = factories.patient("Øystein", "Ødegård", age=50, username="oystein", with_totp=True)
    factories.record(oystein.person, source, prefix="o", results=3, notes=0, years=1)
    factories.works_at(dr_lund, org)
    login_as(dr_lund)
    assert "Øystein Ødegård" in client.get("/ansatt?q=øystein ØDEGÅRD").get_data(as_text=True)
    login_as(oystein)
    title = _items(oystein.person, ItemKind.RESULT)[0].title
    html = client.get(f"/journal/prover?q={title.upper()}").get_data(as_text=True)
    assert "Ingen prøvesvar passer til søket." not in html and title in html


# -- Parents (pasient- og brukerrettighetsloven § 3-4): children under 12 ------------------------


def _switch(client, person_id: int) -> int:
    from tests.conftest import csrf_from

    return client.post("/profil", data={"csrf_token": csrf_from(client, "/"), "person": person_id}).status_code


def test_a_parent_reads_a_young_childs_record_with_the_parent_basis(client, login_as, kari, ola, per, source):
    factories.record(ola, source, prefix="o")
    factories.record(kari.person, source, prefix="k")
    factories.parent_of(kari, ola)
    hidden = _items(ola, ItemKind.NOTE)[0]
    hidden.hidden_from_guardians = True
    db.session.commit()
    login_as(kari)
    assert _switch(client, ola.id) == 303
    notes = client.get("/journal/notater").get_data(as_text=True)
    assert f'/{hidden.id}"' not in notes
    for item in _items(ola)[:10]:
        if item.id == hidden.id or not item.is_visible_to_patient:
            continue
        assert client.get(item_url(item.id, item.kind)).status_code == 200
        row = db.session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
        assert (row.actor_user_id, row.subject_person_id, row.basis) == (kari.id, ola.id, "parent")
    assert client.get(item_url(hidden.id, ItemKind.NOTE)).status_code == 404
    mine = _items(kari.person, ItemKind.RESULT)[0]
    assert client.get(item_url(mine.id, ItemKind.RESULT)).status_code == 404  # not in Ola's record
    # Per is no parent of Ola: switching is refused and nothing changes.
    login_as(per)
    assert _switch(client, ola.id) == 404
    ola_result = _items(ola, ItemKind.RESULT)[0]
    assert client.get(item_url(ola_result.id, ItemKind.RESULT)).status_code == 404


def test_a_parent_of_a_teenager_sees_no_health_information(client, login_as, kari, ingrid, source):
    factories.record(ingrid.person, source, prefix="i")
    factories.parent_of(kari, ingrid.person)
    login_as(kari)
    # From 12 to 16 the parent still acts for her (times and messages), but sees no health information.
    assert _switch(client, ingrid.person.id) == 303
    result = _items(ingrid.person, ItemKind.RESULT)[0]
    assert client.get(item_url(result.id, ItemKind.RESULT)).status_code == 404
    assert client.get("/journal/prover").status_code == 404
    assert client.get("/timer").status_code == 200


def test_the_parents_access_ends_on_the_12th_birthday_mid_session(client, login_as, kari, source, frozen_clock):
    from datetime import UTC, datetime, time, timedelta
    from zoneinfo import ZoneInfo

    oslo = ZoneInfo("Europe/Oslo")
    today = frozen_clock.now.astimezone(oslo).date()
    frozen_clock.now = datetime.combine(today, time(23, 50), tzinfo=oslo).astimezone(UTC)
    tomorrow = today + timedelta(days=1)
    child = factories.PersonFactory(
        given_name="Emma", family_name="Nordmann", birth_date=tomorrow.replace(year=tomorrow.year - 12)
    )
    factories.record(child, source, prefix="e")
    factories.parent_of(kari, child)
    login_as(kari)
    assert _switch(client, child.id) == 303
    result = _items(child, ItemKind.RESULT)[0]
    assert client.get(item_url(result.id, ItemKind.RESULT)).status_code == 200
    frozen_clock.advance(minutes=15)  # midnight in Norway: Emma is 12; the same session goes on
    assert client.get(item_url(result.id, ItemKind.RESULT)).status_code == 404
    # Still her parent, with the limited access of 12–16: no health information on the overview.
    page = client.get("/").get_data(as_text=True)
    assert "Du ser nå journalen til Emma, 12 år" in page
    assert result.title not in page


def test_the_gp_office_reaches_the_patients_on_its_list_and_those_who_wrote_to_it(
    client, login_as, kari, per, gp, dr_aune
):
    """A GP office holds no items and no times for many of its patients: being on its list is the
    care relation, and so is having written to one of its units (its staff answer the question)."""
    from app.people.models import UnitRelation

    login_as(dr_aune)
    assert client.get(f"/ansatt/pasient/{kari.person_id}").status_code == 200  # on the office's list
    assert "Nordmann" in client.get("/ansatt?q=Kari").get_data(as_text=True)
    assert client.get(f"/ansatt/pasient/{per.person_id}").status_code == 404  # not on it, never wrote
    assert "Hansen" not in client.get("/ansatt?q=Per").get_data(as_text=True)
    # Per joins the list and writes; then both leave the list (an end date in the past).
    factories.gp_of(per.person, gp)
    factories.conversation(per, per.person, gp)
    db.session.execute(
        UnitRelation.__table__.update().values(valid_until=factories.clock.today_in_norway() - timedelta(days=1))
    )
    db.session.commit()
    assert client.get(f"/ansatt/pasient/{per.person_id}").status_code == 200  # he wrote to the office
    assert client.get(f"/ansatt/pasient/{kari.person_id}").status_code == 404
