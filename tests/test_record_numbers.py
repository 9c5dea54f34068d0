"""Numbers as the reader writes them: a decimal comma in Norwegian, a point in English; 10⁹/L, not 10^9/L;
a blood pressure as 144/88 mmHg, flagged when a pressure is outside its range. Display only: the
FHIR export keeps the source's numbers."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.db import db
from app.demo.fhir_bundles import LAB_TESTS, BundleMaker
from app.fhir.ingest import import_bundle
from app.record import present
from app.record.models import ItemKind, RecordItem
from app.record.release import item_url

HB, LEUKOCYTES = (next(t for t in LAB_TESTS if t.code == code) for code in ("718-7", "6690-2"))
SYSTOLIC, DIASTOLIC = "8480-6", "8462-4"


def _import(person, source, *, hb=(12.8, 13.3), leukocytes=6.5, pressures=((144, 88), (118, 76))):  # type: ignore[no-untyped-def]
    """Hemoglobin (two values: a trend), leukocytes in 10^9/L and blood pressures, with known values."""
    maker = BundleMaker(person, prefix="num", seed=1)
    start = maker.now - timedelta(days=60)

    def set_value(value: float) -> None:
        maker.entries[-1]["resource"]["valueQuantity"]["value"] = value
        maker.entries[-1]["resource"].pop("interpretation", None)

    for i, value in enumerate(hb):
        maker.observation(HB, start + timedelta(days=10 * i), None)
        set_value(value)
    maker.observation(LEUKOCYTES, start, None)
    set_value(leukocytes)
    for i, (sys_, dia) in enumerate(pressures):
        maker.blood_pressure(start - timedelta(days=1 + i), None)
        by_code = {c["code"]["coding"][0]["code"]: c for c in maker.entries[-1]["resource"]["component"]}
        by_code[SYSTOLIC]["valueQuantity"]["value"] = sys_
        by_code[DIASTOLIC]["valueQuantity"]["value"] = dia
    import_bundle(maker.bundle(), source)


def _latest(code: str) -> RecordItem:
    return db.session.scalar(
        select(RecordItem)
        .where(RecordItem.kind == ItemKind.RESULT, RecordItem.code == code)
        .order_by(RecordItem.effective_at.desc())
        .limit(1)
    )


def _result_page(client, login_as, patient, source, code: str) -> str:  # type: ignore[no-untyped-def]
    """The patient's record imported, the patient logged in, and the page of their latest ``code``."""
    _import(patient.person, source)
    login_as(patient)
    return _html(client, item_url(_latest(code).id, ItemKind.RESULT))


def _html(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def _rows(html: str) -> dict[str, list[str]]:
    """The list's rows by title: their value texts (value and flag words, tags removed)."""
    rows: dict[str, list[str]] = {}
    for row in re.findall(r'<li class="item-row">(.*?)</li>', html, re.S):
        title = re.sub(r"<[^>]+>", "", re.search(r'class="item-row__title">(.*?)</span>\s*\n', row, re.S).group(1))
        value = re.search(r'<span class="item-row__value[^"]*">(.*?)</span>\s*\n', row, re.S)
        rows.setdefault(title.strip(), []).append(value.group(0) if value else "")
    return rows


def test_a_norwegian_page_writes_a_decimal_comma(client, login_as, kari, source):
    page = _result_page(client, login_as, kari, source, HB.code)
    assert '<p class="result__value">13,3 g/dL</p>' in page
    assert "Referanseområde: 11,7–15,3 g/dL" in page
    assert "13.3" not in page and "11.7" not in page
    # The trend's table and the chart's axis (the lowest and highest of the values and the range).
    table = page[page.index("<summary>") :]
    assert "<td>13,3 g/dL</td>" in table and "<td>12,8 g/dL</td>" in table
    chart = re.search(r'<svg class="trend".*?</svg>', page, re.S).group(0)
    assert re.findall(r">([^<>]+)</text>", chart)[:2] == ["11,7", "15,3"]
    # The range bar's spoken label.
    assert "Verdien 13,3 g/dL på en skala der referanseområdet er 11,7–15,3 g/dL" in page
    # The results list and the printable record.
    assert "13,3 g/dL" in _html(client, "/journal/prover")
    assert "13,3 g/dL" in _html(client, "/journal/utskrift")


def test_an_english_page_keeps_the_decimal_point(client, login_as, kari, source):
    kari.locale = "en"
    db.session.commit()
    page = _result_page(client, login_as, kari, source, HB.code)
    assert '<p class="result__value">13.3 g/dL</p>' in page
    assert "11.7–15.3 g/dL" in page and "13,3" not in page
    chart = re.search(r'<svg class="trend".*?</svg>', page, re.S).group(0)
    assert re.findall(r">([^<>]+)</text>", chart)[:2] == ["11.7", "15.3"]
    assert "13.3 g/dL" in _html(client, "/journal/prover")


def test_powers_of_ten_in_units_are_written_as_superscripts(client, login_as, kari, source):
    page = _result_page(client, login_as, kari, source, LEUKOCYTES.code)
    assert '<p class="result__value">6,5 10⁹/L</p>' in page
    assert "Referanseområde: 3,5–10 10⁹/L" in page
    assert "10^9" not in page
    results = _html(client, "/journal/prover")
    assert "6,5 10⁹/L" in results and "10^9" not in results
    assert "10^9" not in _html(client, "/journal/utskrift")
    # Stored and exported as the source sent it.
    assert _latest(LEUKOCYTES.code).data["unit"] == "10^9/L"
    export = json.loads(client.get("/journal/eksport.json").data)
    units = {
        e["resource"].get("valueQuantity", {}).get("unit")
        for e in export["entry"]
        if e["resource"].get("valueQuantity")
    }
    assert "10^9/L" in units and "10⁹/L" not in units


def test_a_blood_pressure_in_the_list_shows_both_pressures_and_is_flagged_when_one_is_high(
    client, login_as, kari, source
):
    _import(kari.person, source)
    login_as(kari)
    rows = _rows(_html(client, "/journal/prover"))["Blodtrykk"]
    assert len(rows) == 2
    high, normal = rows  # newest first
    assert "144/88 mmHg" in high and "item-row__value--flag" in high
    assert '<span class="flag">Høyere enn referanseområdet</span>' in high
    assert "118/76 mmHg" in normal and "item-row__value--flag" not in normal and 'class="flag"' not in normal
    # Its page says the same at the top, above the two pressures and their ranges.
    bp = _latest("85354-9")
    page = _html(client, item_url(bp.id, ItemKind.RESULT))
    assert '<p class="result__value">144/88 mmHg</p>' in page
    assert "result__flag--high" in page
    # Two columns, each pressure's range under its value (a third column did not fit a 390-pixel phone).
    table = re.search(r'<table class="table">.*?</table>', page, re.S).group(0)
    assert table.count('<th scope="col">') == 2
    assert "Referanseområde: &lt; 140 mmHg" in table and "Referanseområde: &lt; 90 mmHg" in table


@pytest.mark.parametrize(
    ("locale", "value", "text"),
    [
        ("nb", 13.3, "13,3"),
        ("en", 13.3, "13.3"),
        ("nb", 13.30, "13,3"),  # a float keeps no trailing zero: as before, only the separator changes
        ("nb", 4.0, "4"),
        ("nb", 0.25, "0,25"),
        ("nb", 1234.5, "1\xa0234"),  # four significant digits, as before; grouped with a no-break space
        ("en", 1234.5, "1,234"),
        ("nb", 12345.0, "12\xa0345"),  # was '1.234e+04'
        ("nb", 2_500_000.0, "2\xa0500\xa0000"),
        ("nb", 0.00001234, "0,00001234"),
        ("nb", -2.5, "-2,5"),
    ],
)
def test_numbers_follow_the_language(app, locale, value, text):
    with app.test_request_context(headers={"Accept-Language": locale}):
        assert present.number(value) == text


def test_units_and_pressures_read_as_written(app):
    assert present.unit_text("10^9/L") == "10⁹/L"
    assert present.unit_text("10^12/L") == "10¹²/L"
    assert present.unit_text("10*9/L") == "10⁹/L"  # UCUM's code, when a source sends it as the unit
    assert present.unit_text("mL/min/1,73m²") == "mL/min/1,73m²"
    assert present.unit_text("mg*h/L") == "mg*h/L"
    bp = {
        "components": [
            {"code": SYSTOLIC, "value": 150.0, "unit": "mmHg", "range": {"high": 140}},
            {"code": DIASTOLIC, "value": 55.0, "unit": "mmHg", "range": {"low": 60, "high": 90}},
        ]
    }
    with app.test_request_context(headers={"Accept-Language": "nb"}):
        assert present.value_text(bp) == "150/55 mmHg"
        assert present.flag(bp) == "abnormal"  # one high, one low
        bp["components"][1]["value"] = 70.0
        assert present.flag(bp) == "high"
        bp["components"][0]["value"] = 130.0
        assert present.flag(bp) == "normal"
        # The lab's own flag on the whole wins over its parts'.
        assert present.flag({**bp, "interpretation": "H"}) == "high"
        # Parts without codes of a blood pressure: no combined value (the page lists them).
        assert present.value_text({"components": [{"code": "x", "value": 1.0}]}) == ""


def test_outside_a_request_numbers_are_bokmal(app):
    """A worker or the CLI (an app context, no request) writes the default language."""
    assert present.number(13.3) == "13,3"
