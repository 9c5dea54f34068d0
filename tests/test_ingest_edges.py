"""Edges found in review: races with a release, reports and their results, identities that
disagree, references across patients and bundles, and bundles that must get a 4xx, not a 500."""

from __future__ import annotations

import base64
import copy
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app import clock
from app.db import db
from app.demo.fhir_bundles import LAB_TESTS, PANELS, BundleMaker
from app.fhir import ingest
from app.fhir.ingest import import_bundle
from app.fhir.validate import BundleRefused
from app.notify.models import Event
from app.record.models import ItemKind, RecordItem, ReleasePolicy, ReleaseRule, ReleaseState
from app.record.release import item_url, release, release_due
from tests import factories
from tests.conftest import csrf_from


def _post(client, token, body):
    return client.post(
        "/fhir",
        data=body if isinstance(body, bytes | str) else json.dumps(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
    )


def _one_obs(person, prefix="r"):
    maker = BundleMaker(person, prefix=prefix, seed=1)
    maker.observation(LAB_TESTS[0], clock.utcnow() - timedelta(days=1), None)
    return maker


def _rule(**kw) -> None:
    db.session.add(ReleaseRule(**kw))
    db.session.commit()


def _events(item_id: int) -> list[Event]:
    return list(db.session.scalars(select(Event).where(Event.object_id == item_id)))


def test_a_new_version_never_undoes_a_release_made_in_the_meantime(kari, source, monkeypatch):
    _rule(kind=ItemKind.RESULT, policy=ReleasePolicy.CLINICIAN)
    maker = _one_obs(kari.person)
    obs = maker.entries[-1]["resource"]
    obs["meta"] = {"versionId": "1"}
    import_bundle(copy.deepcopy(maker.bundle()), source)
    item = db.session.scalar(select(RecordItem).where(RecordItem.kind == ItemKind.RESULT))
    real = ingest._existing

    def clinician_releases_between_read_and_write(*args, **kwargs):  # type: ignore[no-untyped-def]
        rows = real(*args, **kwargs)
        release(db.session.get(RecordItem, item.id), by_user_id=None, comment="ok")
        return rows

    monkeypatch.setattr(ingest, "_existing", clinician_releases_between_read_and_write)
    obs["meta"] = {"versionId": "2"}
    obs["valueQuantity"]["value"] = 99.0
    import_bundle(copy.deepcopy(maker.bundle()), source)
    db.session.expire_all()
    item = db.session.get(RecordItem, item.id)
    assert item.release_state is ReleaseState.RELEASED and item.data["value"] == 99.0
    assert len(_events(item.id)) == 1


def test_the_results_of_a_held_report_wait_with_it_and_are_released_with_it(kari, source, client, login_as):
    _rule(kind=ItemKind.REPORT, policy=ReleasePolicy.CLINICIAN)
    maker = BundleMaker(kari.person, prefix="h", seed=1)
    maker.report(PANELS[0], clock.utcnow() - timedelta(days=1), None)
    import_bundle(maker.bundle(), source)
    report = db.session.scalar(select(RecordItem).where(RecordItem.kind == ItemKind.REPORT))
    results = db.session.scalars(select(RecordItem).where(RecordItem.kind == ItemKind.RESULT)).all()
    assert {r.release_state for r in results} == {ReleaseState.HELD}
    login_as(kari)
    assert {client.get(item_url(r.id, ItemKind.RESULT)).status_code for r in results} == {404}
    assert results[0].title not in client.get("/").get_data(as_text=True)

    assert release(report, by_user_id=None)
    db.session.commit()
    db.session.expire_all()
    states = db.session.scalars(select(RecordItem.release_state).where(RecordItem.kind == ItemKind.RESULT)).all()
    assert set(states) == {ReleaseState.RELEASED}
    assert "Svar i denne rapporten" in client.get(item_url(report.id, ItemKind.REPORT)).get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Event)) == 1  # the report's event covers them


def test_a_withheld_item_is_released_quietly_and_cannot_be_released_by_hand(
    kari, source, frozen_clock, dr_lund, org, client, login_as
):
    _rule(kind=ItemKind.RESULT, policy=ReleasePolicy.HELD, hold_days=1)
    import_bundle(_one_obs(kari.person).bundle(), source)
    item = db.session.scalar(select(RecordItem).where(RecordItem.kind == ItemKind.RESULT))
    item.withheld_at, item.withheld_reason = clock.utcnow(), "Fare for liv og helse"
    db.session.commit()
    factories.works_at(dr_lund, org)
    login_as(dr_lund)
    token = csrf_from(client, f"/ansatt/element/{item.id}")
    client.post(f"/ansatt/element/{item.id}/frigi", data={"csrf_token": token})
    db.session.expire_all()
    assert db.session.get(RecordItem, item.id).release_state is ReleaseState.HELD
    frozen_clock.advance(days=2)
    assert release_due() == 1
    assert _events(item.id) == []


def test_identifiers_that_name_different_people_refuse_the_bundle(kari, per, source):
    first = _one_obs(per.person, prefix="a")
    first.entries[0]["resource"]["id"] = "p-per"
    import_bundle(first.bundle(), source)
    maker = _one_obs(kari.person, prefix="b")
    maker.entries[0]["resource"]["identifier"].insert(
        0, {"system": ingest.source_patient_system(source), "value": "p-per"}
    )
    with pytest.raises(BundleRefused) as refused:
        import_bundle(maker.bundle(), source)
    assert refused.value.status == 409
    assert db.session.scalar(select(func.count()).where(RecordItem.source_id.like("b-%"))) == 0


def test_a_reference_to_another_patients_item_refuses_the_bundle(kari, per, source):
    import_bundle(_one_obs(per.person, prefix="x").bundle(), source)
    per_obs = db.session.scalar(select(RecordItem).where(RecordItem.person_id == per.person.id))
    maker = BundleMaker(kari.person, prefix="y", seed=1)
    maker.report(PANELS[0], clock.utcnow() - timedelta(days=1), None)
    maker.entries[-1]["resource"]["result"].append({"reference": f"Observation/{per_obs.source_id}"})
    with pytest.raises(BundleRefused) as refused:
        import_bundle(maker.bundle(), source)
    assert refused.value.status == 422 and "annen pasient" in str(refused.value)
    # In one bundle too.
    other = _one_obs(per.person, prefix="z")
    maker = BundleMaker(kari.person, prefix="w", seed=1)
    maker.report(PANELS[0], clock.utcnow() - timedelta(days=1), None)
    maker.entries[-1]["resource"]["result"].append({"reference": other.entries[-1]["fullUrl"]})
    maker.entries.extend(other.entries)
    with pytest.raises(BundleRefused):
        import_bundle(maker.bundle(), source)
    db.session.expire_all()
    assert db.session.get(RecordItem, per_obs.id).report_id is None


def test_a_report_that_arrives_after_its_results_groups_them(kari, source):
    maker = BundleMaker(kari.person, prefix="late", seed=1)
    maker.report(PANELS[0], clock.utcnow() - timedelta(days=1), None)
    bundle = maker.bundle()
    first = copy.deepcopy(bundle)
    first["entry"] = [e for e in first["entry"] if e["resource"]["resourceType"] != "DiagnosticReport"]
    import_bundle(first, source)
    report = next(copy.deepcopy(e) for e in bundle["entry"] if e["resource"]["resourceType"] == "DiagnosticReport")
    observations = [e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]
    report["resource"]["result"] = [{"reference": f"Observation/{i}"} for i in observations]
    import_bundle({**bundle, "entry": [bundle["entry"][0], report]}, source)
    linked = db.session.scalars(select(RecordItem.section).where(RecordItem.report_id.is_not(None))).all()
    assert len(linked) == len(observations) and set(linked) == {"in_report"}


def test_a_document_reference_that_becomes_a_pdf_moves_to_documents(kari, source):
    def docref(version: str, data: bytes, content_type: str) -> dict:
        maker = BundleMaker(kari.person, prefix="d", seed=1)
        maker._add(
            {
                "resourceType": "DocumentReference",
                "id": "doc-1",
                "meta": {"versionId": version},
                "status": "current",
                "subject": maker.subject(),
                "date": "2025-01-01T10:00:00Z",
                "content": [{"attachment": {"contentType": content_type, "data": base64.b64encode(data).decode()}}],
            }
        )
        return maker.bundle()

    import_bundle(docref("1", b"a note", "text/plain"), source)
    import_bundle(docref("2", b"%PDF-1.4 pdf", "application/pdf"), source)
    item = db.session.scalar(select(RecordItem).where(RecordItem.source_id == "doc-1"))
    assert (item.kind, item.section) == (ItemKind.DOCUMENT, "document")


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ("duplicate", 422),
        ("year_one", 200),
        ("long_id", 422),
        ("long_version", 422),
        ("long_content_type", 422),
    ],
)
def test_odd_bundles_get_an_answer_never_a_500(client, kari, source_token, change, status):
    _src, token = source_token
    maker = _one_obs(kari.person)
    resource = maker.entries[-1]["resource"]
    if change == "duplicate":
        maker.entries.append(copy.deepcopy(maker.entries[-1]))
        maker.entries[-1]["fullUrl"] = "urn:uuid:00000000-0000-0000-0000-000000000001"
    elif change == "year_one":
        resource["effectiveDateTime"] = "0001"
    elif change == "long_id":
        resource["id"] = "a" * 150
    elif change == "long_version":
        resource["meta"] = {"versionId": "9" * 80}
    else:
        maker._add(
            {
                "resourceType": "DocumentReference",
                "id": "doc-ct",
                "status": "current",
                "subject": maker.subject(),
                "content": [{"attachment": {"contentType": "application/" + "x" * 120, "data": "YWJj"}}],
            }
        )
    response = _post(client, token, maker.bundle())
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_deeply_nested_json_is_refused_clearly(client, source_token):
    _src, token = source_token
    response = _post(client, token, "[" * 100000 + "]" * 100000)
    assert response.status_code == 400
