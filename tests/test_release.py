"""Release rules (immediate, held 14 days, clinician only, never), timed release in the worker, events,
and what clinicians do: release with a comment, withhold with a reason, sign a visit summary."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.db import db
from app.notify.models import Event
from app.record.models import ItemKind, RecordContent, RecordItem, ReleasePolicy, ReleaseRule, ReleaseState
from app.record.release import item_url, release_due
from app.tasks import release_held_items
from tests import factories
from tests.conftest import csrf_from


def _rule(**kw) -> ReleaseRule:
    rule = ReleaseRule(**kw)
    db.session.add(rule)
    db.session.commit()
    return rule


def _results(person):
    return list(
        db.session.scalars(
            select(RecordItem).where(RecordItem.person_id == person.id, RecordItem.kind == ItemKind.RESULT)
        )
    )


def _events(**where) -> list[Event]:
    q = select(Event)
    for k, v in where.items():
        q = q.where(getattr(Event, k) == v)
    return list(db.session.scalars(q))


def test_without_rules_final_items_are_shown_at_once_and_recent_ones_write_an_event(kari, source):
    factories.record(kari.person, source, results=12, notes=2, years=1)
    assert all(r.release_state is ReleaseState.RELEASED for r in _results(kari.person))
    events = _events(person_id=kari.person.id)
    assert events and {e.kind for e in events} <= {
        "result_released",
        "note_released",
        "document_released",
        "visit_added",
        "medication_changed",
        "immunization_added",
    }
    assert all(e.url and e.url.startswith("/journal/") and e.object_id for e in events)


def test_a_history_import_releases_without_a_flood_of_events(kari, source):
    factories.record(kari.person, source, results=30, notes=5, years=10)
    from app import clock

    horizon = clock.utcnow() - timedelta(days=30)
    items = list(db.session.scalars(select(RecordItem)))
    recent = {i.id for i in items if i.effective_at is None or i.effective_at >= horizon}
    assert len(recent) < len(items)
    assert {e.object_id for e in _events()} == recent


def test_held_items_wait_and_the_worker_releases_them_after_the_hold(kari, source, frozen_clock, client, login_as):
    # A category rule holds the lab reports and their results alike.
    _rule(category="laboratory", policy=ReleasePolicy.HELD, hold_days=14)
    factories.record(kari.person, source, results=6, notes=0, years=0.01)
    results = [r for r in _results(kari.person) if r.category == "laboratory"]
    reports = db.session.scalars(select(RecordItem).where(RecordItem.kind == ItemKind.REPORT)).all()
    assert reports and {r.release_state for r in reports} == {ReleaseState.HELD}
    assert {r.release_state for r in results} == {ReleaseState.HELD}
    login_as(kari)
    assert client.get(item_url(results[0].id, ItemKind.RESULT)).status_code == 404
    held_ids = {r.id for r in results + list(reports)}
    assert not [e for e in _events(kind="result_released") if e.object_id in held_ids]

    frozen_clock.advance(days=13, hours=23)
    assert release_due() == 0
    frozen_clock.advance(hours=2)
    assert release_held_items.call_local() == len(results) + len(reports)  # the worker's periodic task
    db.session.expire_all()
    assert {r.release_state for r in _results(kari.person)} == {ReleaseState.RELEASED}
    announced = {e.object_id for e in _events(kind="result_released")}
    report_ids = {r.id for r in reports}
    assert announced >= report_ids
    # One event per piece of news: a result released with its report is covered by the report's.
    assert not announced & {r.id for r in results if r.report_id in report_ids}
    assert announced >= {r.id for r in results if r.report_id not in report_ids}
    login_as(kari)  # two weeks later: a new session
    assert client.get(item_url(results[0].id, ItemKind.RESULT)).status_code == 200
    assert release_due() == 0  # nothing twice


def test_clinician_only_and_never_rules(kari, source, frozen_clock):
    _rule(kind=ItemKind.RESULT, code="718-7", policy=ReleasePolicy.CLINICIAN)
    _rule(kind=ItemKind.RESULT, code="2276-4", policy=ReleasePolicy.NEVER)
    factories.record(kari.person, source, results=60, notes=0, years=1)
    by_code = {}
    for r in _results(kari.person):
        by_code.setdefault(r.code, set()).add(r.release_state)
    assert by_code["718-7"] == {ReleaseState.HELD}
    assert by_code["2276-4"] == {ReleaseState.NEVER}
    assert by_code["2823-3"] == {ReleaseState.RELEASED}
    frozen_clock.advance(days=400)
    release_due()
    db.session.expire_all()
    assert {r.release_state for r in _results(kari.person) if r.code == "718-7"} == {ReleaseState.HELD}


def test_the_most_specific_rule_wins_and_a_rule_can_be_limited_to_an_organisation(kari, source, org):
    other = factories.hospital("Molde sjukehus")
    _rule(kind=ItemKind.RESULT, policy=ReleasePolicy.HELD, hold_days=14)
    _rule(kind=ItemKind.RESULT, code="1988-5", policy=ReleasePolicy.IMMEDIATE)
    _rule(organisation_id=other.id, policy=ReleasePolicy.NEVER)
    factories.record(kari.person, source, results=40, notes=0, years=1)
    states = {(r.code, r.release_state) for r in _results(kari.person)}
    assert ("1988-5", ReleaseState.RELEASED) in states
    assert all(s is ReleaseState.HELD for c, s in states if c != "1988-5")


def test_a_preliminary_result_waits_for_the_final_version(kari, source):
    from app.demo.fhir_bundles import LAB_TESTS, BundleMaker
    from app.fhir.ingest import import_bundle

    maker = BundleMaker(kari.person, prefix="pre", seed=1)
    maker.observation(LAB_TESTS[1], maker.now - timedelta(hours=2), None, status="preliminary")
    import_bundle(maker.bundle(), source)
    (item,) = _results(kari.person)
    assert item.release_state is ReleaseState.PENDING and not _events()
    maker.entries[-1]["resource"]["status"] = "final"
    import_bundle(maker.bundle(), source)
    db.session.expire_all()
    assert db.session.get(RecordItem, item.id).release_state is ReleaseState.RELEASED
    assert len(_events(kind="result_released")) == 1


@pytest.fixture
def lund(dr_lund, org):
    factories.works_at(dr_lund, org)
    return dr_lund


def test_a_clinician_releases_a_held_result_with_a_comment(app, kari, source, lund, client, login_as):
    _rule(kind=ItemKind.RESULT, policy=ReleasePolicy.CLINICIAN)
    factories.record(kari.person, source, results=3, notes=0, years=0.01)
    item = _results(kari.person)[0]
    login_as(lund)
    token = csrf_from(client, f"/ansatt/element/{item.id}")
    response = client.post(
        f"/ansatt/element/{item.id}/frigi", data={"csrf_token": token, "comment": "Fint svar, ingen endring."}
    )
    assert response.status_code == 303
    db.session.expire_all()
    item = db.session.get(RecordItem, item.id)
    assert item.release_state is ReleaseState.RELEASED and item.released_by_id == lund.id
    assert len(_events(kind="result_released", object_id=item.id)) == 1
    # Twice changes nothing.
    client.post(f"/ansatt/element/{item.id}/frigi", data={"csrf_token": token})
    assert len(_events(kind="result_released", object_id=item.id)) == 1
    patient = app.test_client()
    login_as(kari, patient)
    page = patient.get(item_url(item.id, ItemKind.RESULT)).get_data(as_text=True)
    assert "Fint svar, ingen endring." in page


def test_releasing_without_csrf_is_refused(kari, source, lund, client, login_as):
    _rule(kind=ItemKind.RESULT, policy=ReleasePolicy.CLINICIAN)
    factories.record(kari.person, source, results=3, notes=0, years=0.01)
    item = _results(kari.person)[0]
    login_as(lund)
    assert client.post(f"/ansatt/element/{item.id}/frigi", data={}).status_code == 400
    db.session.expire_all()
    assert db.session.get(RecordItem, item.id).release_state is ReleaseState.HELD


def test_a_clinician_withholds_a_note_with_a_reason(app, kari, source, lund, client, login_as):
    factories.record(kari.person, source, results=3, notes=2, years=1)
    note = db.session.scalar(select(RecordItem).where(RecordItem.kind == ItemKind.NOTE).limit(1))
    login_as(lund)
    # The clinician reads what they are about to withhold, as the patient would.
    text = db.session.get(RecordContent, note.id).text
    assert text and text.splitlines()[0] in client.get(f"/ansatt/element/{note.id}").get_data(as_text=True)
    token = csrf_from(client, f"/ansatt/element/{note.id}")
    short = client.post(
        f"/ansatt/element/{note.id}/hold-tilbake", data={"csrf_token": token, "scope": "patient", "reason": "kort"}
    )
    assert short.status_code == 400 and "Begrunnelsen må være" in short.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(RecordItem, note.id).withheld_at is None

    reason = "Fare for alvorlig helseskade ved innsyn nå (pbrl. § 5-1)."
    client.post(
        f"/ansatt/element/{note.id}/hold-tilbake", data={"csrf_token": token, "scope": "patient", "reason": reason}
    )
    db.session.expire_all()
    note = db.session.get(RecordItem, note.id)
    assert note.withheld_reason == reason and note.withheld_by_id == lund.id
    patient = app.test_client()
    login_as(kari, patient)
    assert patient.get(item_url(note.id, ItemKind.NOTE)).status_code == 404
    assert f'/journal/notater/{note.id}"' not in patient.get("/journal/notater").get_data(as_text=True)

    client.post(
        f"/ansatt/element/{note.id}/hold-tilbake", data={"csrf_token": token, "scope": "guardians", "reason": reason}
    )
    client.post(f"/ansatt/element/{note.id}/opphev", data={"csrf_token": token})
    assert patient.get(item_url(note.id, ItemKind.NOTE)).status_code == 200


def test_a_signed_visit_summary_is_shared_with_the_patient_at_once(app, kari, source, lund, client, login_as):
    factories.record(kari.person, source, results=3, notes=0, years=1)
    login_as(lund)
    path = f"/ansatt/pasient/{kari.person.id}/oppsummering"
    token = csrf_from(client, path)
    unit_id = lund.memberships[0].care_unit_id
    empty = client.post(path, data={"csrf_token": token, "unit": unit_id, "title": "Oppsummering", "text": ""})
    assert empty.status_code == 400 and "Skriv oppsummeringen" in empty.get_data(as_text=True)
    forged = client.post(path, data={"csrf_token": token, "unit": 999999, "title": "Oppsummering", "text": "Hei"})
    assert forged.status_code == 400
    text = "Vi snakket om blodtrykket. Ny kontroll om tre måneder."
    response = client.post(
        path, data={"csrf_token": token, "unit": unit_id, "title": "Oppsummering etter besøk", "text": text}
    )
    assert response.status_code == 303
    summary = db.session.scalar(select(RecordItem).where(RecordItem.source_system == "varde"))
    assert summary.is_visit_summary and summary.release_state is ReleaseState.RELEASED
    assert _events(kind="note_released", object_id=summary.id)
    patient = app.test_client()
    login_as(kari, patient)
    assert text in patient.get(item_url(summary.id, ItemKind.NOTE)).get_data(as_text=True)
    assert "Oppsummering etter besøk" in patient.get("/journal/notater?type=oppsummering").get_data(as_text=True)
    assert "Oppsummering etter besøk" in patient.get("/").get_data(as_text=True)


def test_staff_find_patients_only_with_a_care_relation(kari, per, source, lund, client, login_as):
    factories.record(kari.person, source, results=3, notes=0, years=1)
    login_as(lund)
    assert "Kari Nordmann" in client.get("/ansatt?q=Kari").get_data(as_text=True)
    assert "Per Hansen" not in client.get("/ansatt?q=Per").get_data(as_text=True)
    assert "Kari Nordmann" in client.get(f"/ansatt?q={kari.person.national_id}").get_data(as_text=True)
    assert "Skriv mellom 2 og 100 tegn" in client.get("/ansatt?q=K").get_data(as_text=True)


def test_the_clinician_can_open_a_documents_file_and_it_is_audited(kari, source, lund, client, login_as):
    from app.access.models import AuditEvent

    factories.record(kari.person, source, results=1, notes=1, years=1)
    note = db.session.scalar(select(RecordItem).where(RecordItem.kind == ItemKind.NOTE).limit(1))
    content = db.session.get(RecordContent, note.id)
    content.binary, content.content_type = b"%PDF-1.4 test", "application/pdf"
    db.session.commit()
    login_as(lund)
    assert "Last ned dokumentet" in client.get(f"/ansatt/element/{note.id}").get_data(as_text=True)
    response = client.get(f"/ansatt/element/{note.id}/fil")
    assert response.status_code == 200 and response.data == b"%PDF-1.4 test"
    assert "attachment" in response.headers["Content-Disposition"]
    downloads = select(AuditEvent).where(AuditEvent.action.like("download%"), AuditEvent.object_id == str(note.id))
    assert db.session.scalars(downloads).all()
