"""The health record in a real phone-sized browser: what Kari reads, what Dr. Lund releases.

Kari has a record from a hospital (years of history, imported quietly) and from her GP office
(the last weeks, so it is news on the overview). The browser is logged in with a server-side
session and its cookie, as a finished login leaves it.
"""

from __future__ import annotations

import re
import tempfile
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.db import db
from app.people.models import OrganisationKind
from app.record.models import ItemKind, RecordContent, RecordItem, ReleasePolicy, ReleaseRule, ReleaseState
from app.record.present import range_text, value_text
from app.record.services import PAGE_SIZE
from tests import factories
from tests.browser.conftest import CHROMIUM, FLAGS, PHONE

pytestmark = pytest.mark.browser
SHOTS = Path(tempfile.gettempdir()) / "record-shots"  # /tmp/record-shots: pictures to look at, not kept
KALIUM = "2823-3"


# --- helpers ----------------------------------------------------------------------------------------


class _Cookies:
    """Stands in for a test client: session_for() hands it the cookie, which goes to the browser."""

    def set_cookie(self, *_args, **_kwargs) -> None:
        pass


def sign_in(context, base: str, user) -> None:
    """Give the browser context a logged-in session, as a finished login (password and code) would."""
    token = factories.session_for(user, _Cookies())
    context.add_cookies(
        [
            {
                "name": "__Host-varde",
                "value": token,
                # Host and path rather than a URL: CDP refuses a Secure cookie for an http:// URL, though
                # 127.0.0.1 is a secure context where the app's own Set-Cookie is accepted.
                "domain": urlsplit(base).hostname,
                "path": "/",
                "secure": True,
                "httpOnly": True,
                "sameSite": "Lax",
            }
        ]
    )


def watch_csp(page) -> list[str]:
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    return violations


def new_context(playwright_instance, tmp_path: Path, name: str, **options):
    """Another phone, with a profile of its own (a second person, or a browser without JavaScript)."""
    return playwright_instance.chromium.launch_persistent_context(
        str(tmp_path / name),
        executable_path=CHROMIUM,
        args=FLAGS,
        viewport=PHONE,
        locale="nb-NO",
        timezone_id="Europe/Oslo",
        **options,
    )


def shot(page, name: str, element=None) -> None:  # type: ignore[no-untyped-def]
    """What the phone's screen shows (a full-page picture would draw the fixed tab bar mid-page), or one element."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    (element or page).screenshot(path=str(SHOTS / f"{name}.png"))


def no_sideways_scrolling(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def titles(page, scope: str = "main") -> list[str]:
    """The item titles in a list, without the "Ny" marker of unread items."""
    return page.eval_on_selector_all(
        f"{scope} .item-row__title",
        """els => els.map((el) => { const c = el.cloneNode(true);
                                    c.querySelectorAll('.unread, .item-row__kind').forEach((u) => u.remove());
                                    return c.textContent.trim(); })""",
    )


def items(person, kind: ItemKind, **where) -> list[RecordItem]:
    q = select(RecordItem).where(RecordItem.person_id == person.id, RecordItem.kind == kind)
    for key, value in where.items():
        q = q.where(getattr(RecordItem, key) == value)
    # The order of the patient's lists (PostgreSQL would put NULL first in a descending order).
    return list(db.session.scalars(q.order_by(RecordItem.effective_at.desc().nulls_last(), RecordItem.id.desc())))


def import_extra(person, client, prefix: str):  # type: ignore[no-untyped-def]
    """What the tests lean on, whatever the seed: two potassium values (a trend), a blood pressure,
    a visit summary and a clinic note."""
    from app.demo.fhir_bundles import PANELS, BundleMaker
    from app.fhir.ingest import import_bundle

    electrolytes = next(p for p in PANELS if KALIUM in p[2])
    maker = BundleMaker(person, prefix=prefix, seed=7)
    when = maker.now - timedelta(days=3)
    for days in (200, 400):
        visit = maker.encounter(when - timedelta(days=days), "Kontroll", "Medisinsk poliklinikk", "Dr. Marte Lund")
        maker.report(electrolytes, when - timedelta(days=days), visit)
        maker.blood_pressure(when - timedelta(days=days), visit)
    maker.note(when, None, "Dr. Marte Lund", "Medisinsk poliklinikk", kind=1)  # Oppsummering etter besøk
    maker.note(when - timedelta(days=40), None, "Dr. Marte Lund", "Medisinsk poliklinikk", kind=0)
    return import_bundle(maker.bundle(), client)


@pytest.fixture
def gp(app):
    return factories.hospital("Lade legesenter", OrganisationKind.GP_OFFICE)


@pytest.fixture
def record(kari, org, source, gp):
    """Kari's record: five years from St. Olavs hospital (``org``; old history, quiet) and the last weeks
    from her GP office (news)."""
    gp_source = factories.fhir_client(gp, "lade-ehr")[0]
    factories.record(kari.person, source, results=100, notes=4, years=5, prefix="h")
    import_extra(kari.person, source, "hx")
    factories.record(kari.person, gp_source, results=8, notes=2, years=0.05, prefix="gp")
    return SimpleNamespace(hospital=org, gp=gp, hospital_source=source, gp_source=gp_source)


# --- 1. results ---------------------------------------------------------------------------------------


def test_kari_finds_filters_and_reads_her_results(page, live_server, kari, record, axe):
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}/")
    news = page.get_by_role("region", name=re.compile("Nytt for deg"))
    assert news.is_visible()
    unread = news.locator(".badge").inner_text()
    assert re.fullmatch(r"\d+ uleste?", unread), unread
    assert news.locator(".item-row").count() >= 1
    assert news.locator(".unread").first.is_visible()
    assert news.get_by_text("Lade legesenter").first.is_visible()
    shot(page, "overview")
    assert axe(page) == []

    # Into the record tab, then "Prøvesvar".
    page.get_by_role("navigation", name="Hovedmeny").get_by_role("link", name="Journal").click()
    page.wait_for_url(f"{live_server}/journal")
    page.get_by_role("link", name="Prøvesvar").click()
    page.wait_for_url(f"{live_server}/journal/prover")
    assert page.get_by_role("heading", level=1).inner_text() == "Prøvesvar"
    results = page.locator("#results")
    assert results.get_by_text("St. Olavs hospital").first.is_visible()
    shot(page, "results")
    assert axe(page) == []

    # Filter by organisation: htmx swaps the list and pushes the query into the address bar.
    with page.expect_response(re.compile(r"/journal/prover\?.*org=")):
        page.get_by_label("Fra", exact=True).select_option(label="Lade legesenter")
    page.wait_for_url(re.compile(rf"org={record.gp.id}"))
    expect(page.locator("#results")).not_to_contain_text("St. Olavs hospital")
    assert "Lade legesenter" in page.locator("#results").inner_text()
    metas = page.locator("#results .report-group > .item-row__meta, #results > ul > .item-row .item-row__meta")
    assert metas.count() >= 1
    assert all("Lade legesenter" in t for t in metas.all_inner_texts())

    # Filter by type: vital signs only (blood pressure), from every place.
    page.get_by_label("Fra", exact=True).select_option(label="Alle steder")
    page.wait_for_url(re.compile(r"org=(&|$)"))
    vitals = items(kari.person, ItemKind.RESULT, category="vital-signs")
    assert vitals, "the generated record should have blood pressures"
    with page.expect_response(re.compile(r"kind=vital-signs")):
        page.get_by_label("Type").select_option(label="Vitale målinger")
    page.wait_for_url(re.compile(r"kind=vital-signs"))
    expect(page.locator("#results .report-group")).to_have_count(0)
    assert titles(page, "#results") == ["Blodtrykk"] * min(len(vitals), PAGE_SIZE)
    page.get_by_label("Type").select_option(label="Alle typer")
    page.wait_for_url(re.compile(r"kind=(&|$)"))

    # Search a test by name: the matching results, flat.
    kalium = items(kari.person, ItemKind.RESULT, code=KALIUM, release_state=ReleaseState.RELEASED)
    assert len(kalium) >= 2, "the generated record should have several potassium values"
    page.get_by_label("Søk etter prøve").fill("Kalium")
    page.wait_for_url(re.compile(r"q=Kalium"))
    expect(page.locator("#results .report-group")).to_have_count(0)
    assert page.locator("#results .item-row").count() == len(kalium)
    assert set(titles(page, "#results")) == {"Kalium"}
    shot(page, "results-search")

    # Open the newest potassium value.
    latest = kalium[0]
    page.locator("#results .item-row__link").first.click()
    page.wait_for_url(f"{live_server}/journal/prover/{latest.id}")
    assert page.get_by_role("heading", level=1).inner_text() == "Kalium"
    assert page.locator(".result__value").inner_text() == value_text(latest.data)
    bar = page.get_by_role("img", name=re.compile("på en skala der referanseområdet er"))
    assert bar.is_visible()
    assert bar.evaluate("e => e.tagName.toLowerCase()") == "svg"
    assert range_text(latest.data["range"], "mmol/L") in bar.get_attribute("aria-label")
    assert value_text(latest.data) in bar.get_attribute("aria-label")
    assert page.locator(".result__flag").inner_text() in {
        "Innenfor referanseområdet",
        "Høyere enn referanseområdet",
        "Lavere enn referanseområdet",
    }
    assert page.get_by_text(f"Referanseområde: {range_text(latest.data['range'], 'mmol/L')}").is_visible()

    # The trend: a chart with a text alternative, and the numbers as a table behind a disclosure.
    chart = page.get_by_role("img", name=re.compile(r"^Utvikling over tid: \d+ målinger"))
    assert chart.is_visible()
    assert f"{len(kalium)} målinger" in chart.get_attribute("aria-label")
    assert chart.locator("circle").count() == len(kalium)
    table = page.get_by_role("table", name="Kalium, alle målinger")
    assert table.is_hidden()
    page.get_by_text("Vis tallene som tabell").click()
    assert table.is_visible()
    assert table.locator("tbody tr").count() == len(kalium)
    assert table.locator("tbody tr[aria-current='true']").inner_text().endswith(value_text(latest.data))
    assert no_sideways_scrolling(page)
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "result")
    shot(page, "result-trend", page.locator("section:has(svg.trend)"))
    assert axe(page) == []


def test_show_older_results_appends_the_next_page(page, live_server, kari, record):
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}/journal/prover")
    rows = "#results-items > li:not(.more)"

    def shown() -> list[str]:
        return page.eval_on_selector_all(rows, "lis => lis.map((li) => li.querySelector('a').getAttribute('href'))")

    before = shown()
    assert len(before) == PAGE_SIZE
    with page.expect_response(re.compile(r"/journal/prover\?etter=")) as answer:
        page.get_by_role("link", name="Vis eldre prøvesvar").click()
    assert answer.value.request.headers.get("hx-request") == "true"
    # A locator wait, not wait_for_function: a string predicate that is not true at once is
    # polled through eval, which the page's CSP rightly refuses.
    page.locator(rows).nth(PAGE_SIZE).wait_for(state="attached")
    assert page.url == f"{live_server}/journal/prover"  # appended in place, no navigation
    after = shown()
    assert after[:PAGE_SIZE] == before
    assert len(set(after)) == len(after)  # older rows, none repeated
    assert page.locator("#more-results").count() <= 1
    assert page.locator("#results > ul").count() == 1  # one list, not a list in a list


# --- 2. notes, visits, medications, immunizations, documents, printable, who has seen -------------------


def test_notes_and_visit_summaries(page, live_server, kari, record, axe):
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}/journal")
    page.get_by_role("link", name="Notater og besøksoppsummeringer").click()
    page.wait_for_url(f"{live_server}/journal/notater")
    notes = items(kari.person, ItemKind.NOTE)
    assert page.locator("main .item-row").count() == len(notes)
    switch = page.get_by_role("navigation", name="Vis")
    assert switch.get_by_role("link", name="Alle notater").get_attribute("aria-current") == "page"

    switch.get_by_role("link", name="Besøksoppsummeringer").click()
    page.wait_for_url(f"{live_server}/journal/notater?type=oppsummering")
    summaries = [n for n in notes if n.is_visit_summary]
    assert summaries
    kinds = page.locator("main .item-row .item-row__kind").all_inner_texts()
    assert [k.strip() for k in kinds] == ["Besøksoppsummering:"] * len(summaries)
    assert page.get_by_role("link", name="Besøksoppsummeringer").get_attribute("aria-current") == "page"
    shot(page, "visit-summaries")

    # Open the newest summary: its text, who wrote it and where from.
    newest = summaries[0]
    page.locator("main .item-row__link").first.click()
    page.wait_for_url(f"{live_server}/journal/notater/{newest.id}")
    text = db.session.get(RecordContent, newest.id).text
    assert page.locator("article.note-text").inner_text().strip() == text.strip()
    facts = page.locator("dl.facts").inner_text()
    assert "Besøksoppsummering" in facts and "Dr. Marte Lund" in facts and "St. Olavs hospital" in facts
    shot(page, "note")
    assert axe(page) == []


def test_visits_medications_immunizations_and_documents(page, live_server, kari, record, axe):
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}/journal/besok")
    assert page.get_by_role("heading", level=1).inner_text() == "Besøk og innleggelser"
    assert page.locator("main .item-row").count() >= 1

    page.goto(f"{live_server}/journal")
    page.get_by_role("link", name="Legemidler").click()
    page.wait_for_url(f"{live_server}/journal/legemidler")
    current = page.locator("h2:has-text('Bruker nå') + ul .item-row__title")
    ended = page.locator("h2:has-text('Avsluttet') + ul .item-row__title")
    assert "Metformin 500 mg tablett" in current.all_inner_texts()
    assert "Ramipril 5 mg tablett" in ended.all_inner_texts()
    assert "Ramipril 5 mg tablett" not in current.all_inner_texts()
    shot(page, "medications")
    assert axe(page) == []
    ended.filter(has_text="Ramipril").first.click()
    page.wait_for_url(re.compile(r"/journal/legemidler/\d+$"))
    facts = page.locator("dl.facts").inner_text()
    assert "Avsluttet" in facts and "1 tablett om morgenen" in facts

    page.goto(f"{live_server}/journal")
    page.get_by_role("link", name="Vaksiner").click()
    page.wait_for_url(f"{live_server}/journal/vaksiner")
    vaccines = items(kari.person, ItemKind.IMMUNIZATION)
    assert page.locator("main .item-row").count() == len(vaccines)
    page.locator("main .item-row__link").first.click()
    page.wait_for_url(f"{live_server}/journal/vaksiner/{vaccines[0].id}")
    facts = page.locator("dl.facts").inner_text()
    assert "Batchnummer" in facts and "Fullført" in facts
    assert axe(page) == []

    page.goto(f"{live_server}/journal")
    page.get_by_role("link", name="Dokumenter").click()
    page.wait_for_url(f"{live_server}/journal/dokumenter")
    letters = items(kari.person, ItemKind.DOCUMENT)
    assert page.locator("main .item-row").count() == len(letters) == 2
    page.locator("main .item-row__link").first.click()
    page.wait_for_url(f"{live_server}/journal/dokumenter/{letters[0].id}")
    download = page.get_by_role("link", name="Last ned dokumentet (PDF)")
    assert download.get_attribute("href") == f"/journal/dokumenter/{letters[0].id}/fil"
    answer = page.context.request.get(f"{live_server}/journal/dokumenter/{letters[0].id}/fil")
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["content-disposition"].startswith("attachment;")
    assert answer.body().startswith(b"%PDF-")
    shot(page, "document")
    assert axe(page) == []


def test_the_printable_record(page, live_server, kari, record, axe):
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}/journal")
    page.get_by_role("link", name="Utskriftsvennlig journal").click()
    page.wait_for_url(f"{live_server}/journal/utskrift")
    assert page.get_by_role("heading", level=1).inner_text() == "Journal for Kari Nordmann"
    results = items(kari.person, ItemKind.RESULT)
    assert page.get_by_role("heading", name=f"Prøvesvar ({len(results)})").is_visible()
    assert page.locator("table.table--print tbody tr").count() == len(results)
    notes = items(kari.person, ItemKind.NOTE)
    assert page.locator("article.print-note").count() == len(notes) + len(items(kari.person, ItemKind.REPORT))
    shot(page, "printable")
    assert axe(page) == []
    # Printed, the way back to the record is left out.
    page.emulate_media(media="print")
    assert page.locator(".breadcrumb").is_hidden()
    page.emulate_media(media="screen")


def test_kari_sees_that_dr_lund_has_read_her_record(page, live_server, kari, dr_lund, record, axe, app, login_as):
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}/journal/hvem-har-sett")
    assert page.get_by_text("Ingen andre har sett journalen din i Varde").is_visible()

    factories.works_at(dr_lund, record.hospital)
    staff = app.test_client()
    login_as(dr_lund, staff)
    assert staff.get(f"/ansatt/pasient/{kari.person.id}").status_code == 200

    page.goto(f"{live_server}/journal")
    page.get_by_role("link", name="Hvem har sett journalen min").click()
    page.wait_for_url(f"{live_server}/journal/hvem-har-sett")
    row = page.locator("main .item-row").first
    assert row.locator(".item-row__title").inner_text() == "Dr. Marte Lund"
    assert "Helsepersonell, St. Olavs hospital" in row.inner_text()
    assert "så oversikten over journalen" in row.inner_text()
    shot(page, "who-has-seen")
    assert axe(page) == []


# --- 3. staff: release a held result with a comment; Kari reads it -------------------------------------


@pytest.fixture
def held(kari, dr_lund, org, source):
    """Results from the hospital wait for a clinician (the rule exists before the import); Dr. Lund works there."""
    db.session.add(ReleaseRule(kind=ItemKind.RESULT, policy=ReleasePolicy.CLINICIAN))
    db.session.commit()
    factories.record(kari.person, source, results=12, notes=1, years=0.05)
    factories.works_at(dr_lund, org)
    waiting = items(kari.person, ItemKind.RESULT, release_state=ReleaseState.HELD)
    assert waiting and not items(kari.person, ItemKind.RESULT, release_state=ReleaseState.RELEASED)
    return next(r for r in waiting if r.report_id)  # a lab value in a report (blood pressures stand alone)


COMMENT = "Litt lav verdi, men ikke noe å bekymre seg for. Vi tar en ny prøve om tre måneder."


def test_dr_lund_releases_a_held_result_with_a_comment_and_kari_reads_it(
    page, live_server, kari, dr_lund, held, axe, playwright_instance, tmp_path
):
    result_link = f"a[href='/journal/prover/{held.id}']"
    report_group = f".report-group:has(a[href='/journal/rapporter/{held.report_id}'])"

    # Kari on her phone: the report is there, the held value is not.
    context = new_context(playwright_instance, tmp_path, "kari", device_scale_factor=2, has_touch=True)
    try:
        kari_page = context.pages[0]
        violations = watch_csp(kari_page)
        sign_in(context, live_server, kari)
        kari_page.goto(f"{live_server}/journal/prover")
        assert kari_page.locator(report_group).is_visible()
        assert kari_page.locator(result_link).count() == 0
        shot(kari_page, "results-while-held")

        # Dr. Lund on hers: the patient's page (held first), the item, the release form.
        sign_in(page.context, live_server, dr_lund)
        page.goto(f"{live_server}/ansatt/pasient/{kari.person.id}")
        assert page.get_by_role("heading", level=1).inner_text() == "Kari Nordmann"
        assert "Venter på frigivelse fra behandler" in page.locator("main .item-row").first.inner_text()
        shot(page, "staff-patient")
        assert axe(page) == []
        page.locator(f"a[href='/ansatt/element/{held.id}']").first.click()  # listed under 'Venter på frigivelse' first
        page.wait_for_url(f"{live_server}/ansatt/element/{held.id}")
        assert page.get_by_role("heading", name="Frigi til pasienten").is_visible()
        assert page.get_by_role("heading", name="Hold tilbake", exact=True).is_visible()
        shot(page, "staff-item")
        shot(page, "staff-item-forms", page.locator("main"))
        assert axe(page) == []
        page.get_by_label("Kommentar til pasienten (valgfritt)").fill(COMMENT)
        page.get_by_role("button", name="Frigi", exact=True).click()
        page.wait_for_url(f"{live_server}/ansatt/element/{held.id}")
        assert page.get_by_role("status").filter(has_text="Frigitt. Pasienten får beskjed.").is_visible()
        assert page.get_by_text("Synlig for pasienten").is_visible()
        assert page.get_by_text(COMMENT).is_visible()
        assert page.get_by_role("heading", name="Frigi til pasienten").count() == 0
        shot(page, "staff-item-released")
        assert axe(page) == []

        # Kari again: the value is in its report now, and opening it shows the comment.
        kari_page.reload()
        kari_page.locator(report_group).locator(result_link).click()
        kari_page.wait_for_url(f"{live_server}/journal/prover/{held.id}")
        section = kari_page.get_by_role("region", name="Kommentar fra behandler")
        assert section.get_by_text(COMMENT).is_visible()
        assert kari_page.locator(".result__value").inner_text() == value_text(held.data)
        shot(kari_page, "result-with-comment")
        assert axe(kari_page) == []
        assert violations == []
    finally:
        context.close()


def test_a_result_released_by_the_clinician_is_news_on_the_overview(page, live_server, kari, dr_lund, held):
    from app.record.release import release

    assert release(held, by_user_id=dr_lund.id, comment=COMMENT)
    db.session.commit()
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}/")
    news = page.get_by_role("region", name=re.compile("Nytt for deg"))
    link = news.locator(f"a[href='/journal/prover/{held.id}']")
    assert link.is_visible()
    assert link.locator(".unread").is_visible()


# --- 4. without JavaScript -------------------------------------------------------------------------------


def test_the_results_read_without_javascript(playwright_instance, live_server, kari, record, tmp_path):
    context = new_context(playwright_instance, tmp_path, "nojs", java_script_enabled=False)
    try:
        page = context.pages[0]
        violations = watch_csp(page)
        sign_in(context, live_server, kari)
        page.goto(f"{live_server}/journal/prover")
        assert page.get_by_role("heading", level=1).inner_text() == "Prøvesvar"
        button = page.get_by_role("button", name="Vis", exact=True)
        assert button.is_visible()  # the <noscript> submit button
        page.get_by_label("Fra", exact=True).select_option(label="Lade legesenter")
        assert page.url == f"{live_server}/journal/prover"  # nothing happens on change without JS
        button.click()
        page.wait_for_url(re.compile(rf"/journal/prover\?q=&org={record.gp.id}&kind="))
        text = page.locator("#results").inner_text()
        assert "Lade legesenter" in text and "St. Olavs hospital" not in text
        assert page.get_by_label("Fra", exact=True).input_value() == str(record.gp.id)

        page.get_by_label("Fra", exact=True).select_option(label="Alle steder")
        page.get_by_label("Søk etter prøve").fill("Kalium")
        button.click()
        page.wait_for_url(re.compile(r"q=Kalium&org=&"))
        assert set(titles(page, "#results")) == {"Kalium"}
        page.locator("#results .item-row__link").first.click()
        page.wait_for_url(re.compile(r"/journal/prover/\d+$"))
        assert page.get_by_role("heading", level=1).inner_text() == "Kalium"
        assert page.locator(".result__value").is_visible()
        assert page.get_by_role("img", name=re.compile("referanseområdet er")).is_visible()
        page.get_by_text("Vis tallene som tabell").click()  # <details> opens without JavaScript
        assert page.get_by_role("table", name="Kalium, alle målinger").is_visible()

        # "Vis eldre prøvesvar" is a plain link too.
        page.goto(f"{live_server}/journal/prover")
        page.get_by_role("link", name="Vis eldre prøvesvar").click()
        page.wait_for_url(re.compile(r"/journal/prover\?etter="))
        assert page.get_by_role("heading", level=1).inner_text() == "Prøvesvar"
        assert page.locator("#results-items > li:not(.more)").count() >= 1
        assert violations == []
    finally:
        context.close()


# --- 5. 200 % zoom ------------------------------------------------------------------------------------------

OVERFLOWING = """(scope) => {
    const width = document.documentElement.clientWidth, out = [];
    const describe = (el) => el.tagName.toLowerCase() + (el.className && el.className.baseVal === undefined
        ? '.' + String(el.className).trim().split(/\\s+/).join('.') : '');
    for (const root of document.querySelectorAll(scope)) {
        const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT | NodeFilter.SHOW_ELEMENT);
        for (let n = walker.currentNode; n; n = walker.nextNode()) {
            let rect;
            if (n.nodeType === Node.TEXT_NODE) {
                if (!n.textContent.trim()) continue;
                const range = document.createRange(); range.selectNodeContents(n);
                rect = [...range.getClientRects()].reduce((a, r) => (r.right > a.right ? r : a), {right: 0});
            } else rect = n.getBoundingClientRect();
            if (rect.right > width + 1) {
                const el = n.nodeType === Node.TEXT_NODE ? n.parentElement : n;
                const text = (n.textContent || '').trim().slice(0, 40);
                out.push(`${describe(el)} ends at ${Math.round(rect.right)}px: ${text}`);
            }
        }
    }
    return [...new Set(out)].slice(0, 8);
}"""


def overflowing(page, scope: str = "body") -> list[str]:
    """What sticks out to the right of the viewport (elements and text), for assertion messages."""
    return page.evaluate(OVERFLOWING, scope)


def open_result_with_table(page, base: str, item: RecordItem) -> None:
    page.goto(f"{base}/journal/prover/{item.id}")
    page.get_by_text("Vis tallene som tabell").click()
    assert page.get_by_role("table", name=f"{item.title}, alle målinger").is_visible()


@pytest.mark.parametrize(("width", "height"), [(320, 568), (640, 360)], ids=["small-phone-at-200", "laptop-at-200"])
def test_at_200_percent_zoom_the_result_page_does_not_scroll_sideways(page, live_server, kari, record, width, height):
    """As test_shell does it, in CSS pixels: a 640-pixel-wide small phone or a 1280×720 laptop at 200 % zoom."""
    sign_in(page.context, live_server, kari)
    page.set_viewport_size({"width": width, "height": height})
    open_result_with_table(page, live_server, items(kari.person, ItemKind.RESULT, code=KALIUM)[0])
    assert no_sideways_scrolling(page), overflowing(page)
    assert page.get_by_role("img", name=re.compile("Utvikling over tid")).bounding_box()["width"] <= width
    page.goto(f"{live_server}/journal/prover")
    assert no_sideways_scrolling(page), overflowing(page)


def test_on_a_390_phone_at_200_percent_the_charts_and_the_table_fit(page, live_server, kari, record):
    """The 390-wide phone at 200 % zoom is 195 CSS pixels wide: the drawings shrink with the screen."""
    sign_in(page.context, live_server, kari)
    page.set_viewport_size({"width": 195, "height": 422})
    open_result_with_table(page, live_server, items(kari.person, ItemKind.RESULT, code=KALIUM)[0])
    shot(page, "result-zoom-200")
    for drawing in ("svg.range-bar", "svg.trend", "details table"):
        box = page.locator(drawing).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 195, (drawing, box)
    page.goto(f"{live_server}/journal/prover")
    shot(page, "results-zoom-200")
    assert overflowing(page, "main") == []


def test_on_a_390_phone_at_200_percent_the_result_page_does_not_scroll_sideways(page, live_server, kari, record):
    sign_in(page.context, live_server, kari)
    page.set_viewport_size({"width": 195, "height": 422})
    open_result_with_table(page, live_server, items(kari.person, ItemKind.RESULT, code=KALIUM)[0])
    assert no_sideways_scrolling(page), overflowing(page)


RECORD_PAGES = {
    "index": "/journal",
    "results": "/journal/prover",
    "result": "/journal/prover/{result}",
    "blood-pressure": "/journal/prover/{blood_pressure}",
    "report": "/journal/rapporter/{report}",
    "notes": "/journal/notater",
    "note": "/journal/notater/{note}",
    "visits": "/journal/besok",
    "visit": "/journal/besok/{visit}",
    "medications": "/journal/legemidler",
    "immunizations": "/journal/vaksiner",
    "documents": "/journal/dokumenter",
    "document": "/journal/dokumenter/{document}",
    "printable": "/journal/utskrift",
    "who-has-seen": "/journal/hvem-har-sett",
}


@pytest.mark.parametrize("path", list(RECORD_PAGES.values()), ids=list(RECORD_PAGES))
def test_every_record_page_reflows_at_320_css_pixels(page, live_server, kari, record, path):
    """WCAG 1.4.10: content reflows at 320 CSS pixels (a 1280-wide screen at 400 %, a phone at 200 %)."""
    url = path.format(
        result=items(kari.person, ItemKind.RESULT, code=KALIUM)[0].id,
        blood_pressure=items(kari.person, ItemKind.RESULT, category="vital-signs")[0].id,
        report=items(kari.person, ItemKind.REPORT)[0].id,
        note=items(kari.person, ItemKind.NOTE)[0].id,
        visit=items(kari.person, ItemKind.ENCOUNTER)[0].id,
        document=items(kari.person, ItemKind.DOCUMENT)[0].id,
    )
    sign_in(page.context, live_server, kari)
    page.set_viewport_size({"width": 320, "height": 568})
    page.goto(f"{live_server}{url}")
    assert no_sideways_scrolling(page), overflowing(page)
