"""What the patient sees: the overview's news, results with filters, a result page, export and print."""

from __future__ import annotations

import json
import re

from sqlalchemy import select

from app.db import db
from app.record.models import ItemKind, RecordItem
from app.record.release import item_url
from tests import factories


def _html(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def test_the_overview_lists_news_not_years_of_history(client, login_as, kari, source):
    factories.record(kari.person, source, results=80, notes=10, years=8)
    login_as(kari)
    html = _html(client, "/")
    from datetime import timedelta

    from app import clock

    horizon = clock.utcnow() - timedelta(days=31)
    shown = {int(i) for i in re.findall(r'href="/journal/\w+/(\d+)"', html)}
    assert shown
    for item in db.session.scalars(select(RecordItem).where(RecordItem.id.in_(shown))):
        assert item.effective_at >= horizon
    assert "uleste" in html or "ulest" in html


def test_results_filter_by_organisation_and_kind_and_search_by_name(client, login_as, kari, source):
    gp = factories.hospital("Lade legesenter", factories.OrganisationKind.GP_OFFICE)
    factories.record(kari.person, source, results=30, notes=0, years=2)
    factories.record(kari.person, factories.fhir_client(gp, "lade")[0], results=30, notes=0, years=2, prefix="gp")
    login_as(kari)
    everything = _html(client, "/journal/prover")
    assert "Lade legesenter" in everything and "St. Olavs hospital" in everything
    only_gp = _html(client, f"/journal/prover?org={gp.id}")
    assert "Kommune/fastlege" in only_gp and "Spesialisthelsetjenesten" not in only_gp.split('id="results"')[1]
    kalium = _html(client, "/journal/prover?q=kalium")
    titles = re.findall(r'class="item-row__title">(?:<[^>]+>)*([^<]+)<', kalium.split('id="results"')[1])
    assert titles and {t.strip() for t in titles} == {"Kalium"}
    vitals = _html(client, "/journal/prover?kind=vital-signs").split('id="results"')[1]
    assert "Blodtrykk" in vitals and "Kalium" not in vitals
    nothing = _html(client, "/journal/prover?q=finnesikke")
    assert "Ingen prøvesvar passer til søket." in nothing
    # A forged filter or cursor is ignored, never an error.
    assert client.get("/journal/prover?kind=<script>&etter=%%%").status_code == 200


def test_older_results_come_a_page_at_a_time_and_none_is_lost(client, login_as, kari, source):
    factories.record(kari.person, source, results=200, notes=0, years=5)
    login_as(kari)
    seen: list[int] = []
    path = "/journal/prover"
    for _ in range(50):
        html = _html(client, path)
        seen += [int(i) for i in re.findall(r'href="/journal/(?:prover|rapporter)/(\d+)"', html)]
        more = re.search(r'href="(/journal/prover\?etter=[^"]+)"', html)
        if not more:
            break
        path = more.group(1).replace("&amp;", "&")
    visible = db.session.scalars(
        select(RecordItem.id).where(
            RecordItem.person_id == kari.person.id, RecordItem.kind.in_([ItemKind.RESULT, ItemKind.REPORT])
        )
    ).all()
    assert sorted(set(seen)) == sorted(visible)
    assert len(seen) == len(set(seen))


def test_a_result_page_explains_the_value_and_shows_its_trend_as_a_chart_and_a_table(client, login_as, kari, source):
    factories.record(kari.person, source, results=300, notes=0, years=5)
    item = db.session.scalar(
        select(RecordItem)
        .where(RecordItem.kind == ItemKind.RESULT, RecordItem.code == "2823-3")
        .order_by(RecordItem.effective_at.desc())
        .limit(1)
    )
    login_as(kari)
    html = _html(client, item_url(item.id, ItemKind.RESULT))
    assert "mmol/L" in html and "Referanseområde:" in html and "3,5–4,4 mmol/L" in html
    assert 'class="range-bar"' in html and 'role="img"' in html
    assert any(
        w in html for w in ("Innenfor referanseområdet", "Høyere enn referanseområdet", "Lavere enn referanseområdet")
    )
    assert 'class="trend"' in html and "Vis tallene som tabell" in html
    assert html.count("<tr") > 3 and 'aria-current="true"' in html
    assert "style=" not in html  # the strict CSP forbids inline styles


def test_the_export_is_a_valid_fhir_bundle_of_everything_the_patient_may_see(client, login_as, kari, source):
    from fhir.resources.R4B.bundle import Bundle

    factories.record(kari.person, source, results=20, notes=3, years=2)
    hidden = db.session.scalar(select(RecordItem).where(RecordItem.kind == ItemKind.NOTE).limit(1))
    from app import clock

    hidden.withheld_at, hidden.withheld_reason = clock.utcnow(), "Tilbakeholdt"
    db.session.commit()
    login_as(kari)
    response = client.get("/journal/eksport.json")
    assert response.mimetype == "application/fhir+json"
    assert response.headers["Content-Disposition"].startswith("attachment")
    bundle = json.loads(response.data)
    Bundle.model_validate(bundle)
    ids = {e["resource"].get("id") for e in bundle["entry"]}
    visible = {i.source_id for i in db.session.scalars(select(RecordItem)) if i.is_visible_to_patient}
    assert visible <= ids and hidden.source_id not in ids
    patient = bundle["entry"][0]["resource"]
    assert patient["identifier"][0]["value"] == kari.person.national_id
    assert all(
        e["resource"].get("subject", {"reference": bundle["entry"][0]["fullUrl"]})["reference"]
        == bundle["entry"][0]["fullUrl"]
        for e in bundle["entry"][1:]
    )


def test_the_printable_record_has_every_note_in_full(client, login_as, kari, source):
    from app.record.models import RecordContent

    factories.record(kari.person, source, results=10, notes=4, years=1)
    login_as(kari)
    html = _html(client, "/journal/utskrift")
    for note in db.session.scalars(select(RecordItem).where(RecordItem.kind == ItemKind.NOTE)):
        text = db.session.get(RecordContent, note.id).text
        from markupsafe import escape

        assert str(escape(text.split(".")[0])) in html
    assert "Prøvesvar (" in html and "Legemidler (" in html


def test_opening_an_item_marks_it_read(client, login_as, kari, source):
    factories.record(kari.person, source, results=6, notes=1, years=0.05)
    login_as(kari)
    before = _html(client, "/")
    item_id = int(re.search(r'href="/journal/\w+/(\d+)"', before).group(1))
    item = db.session.get(RecordItem, item_id)
    assert item.read_at is None
    client.get(item_url(item.id, item.kind))
    db.session.expire_all()
    assert db.session.get(RecordItem, item_id).read_at is not None


def test_record_pages_read_in_english_too(client, login_as, kari, source):
    factories.record(kari.person, source, results=6, notes=1, years=1)
    login_as(kari)
    html = client.get("/journal/prover", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Results" in html or "Test results" in html


def test_ended_medications_are_listed_under_their_heading(client, login_as, kari, source):
    """The layout's own variables (the access-ended notice, the banner) must not hide a page's:
    a layout ``set ended`` once emptied this list."""
    factories.record(kari.person, source, results=100, notes=4, years=5, prefix="h")
    login_as(kari)
    page = client.get("/journal/legemidler").get_data(as_text=True)
    ended = page[page.index("<h2>Avsluttet</h2>") :]
    assert "Ramipril 5 mg tablett" in ended and "Ingen avsluttede legemidler" not in ended
