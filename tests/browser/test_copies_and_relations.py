"""A copy of the record and a guardian, in real phone-sized browsers.

Kari asks St. Olavs hospital for a copy of part of her record (innsyn, pasient- og
brukerrettighetsloven § 5-1); a clerk there sends it as a PDF from the staff queue, or refuses a
request with a reason Kari reads. Dr. Lund registers Kari as Per's guardian (verge): Kari chooses Per
after logging in and reads his record until Dr. Lund ends it. Every page passes axe and fits a
390-pixel phone.

Kari logs in through the real login form; the staff's browsers get a logged-in session and its
cookie (``sign_in``). The server runs in this process, on the same database: what a test commits,
the browser sees, and what the browser does, the test reads back.
"""

from __future__ import annotations

import io
import re
import tempfile
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from babel.dates import format_date
from playwright.sync_api import expect
from pypdf import PdfWriter
from sqlalchemy import select

from app import clock
from app.auth.models import Role
from app.db import db
from app.people.models import OrganisationKind, ProxyLevel, Relation, RelationKind
from app.record.models import CopyRequest, CopyRequestState, RecordItem
from tests import factories
from tests.browser.test_record import sign_in
from tests.browser.test_relatives import checked, fits, heading, log_in_by_form, path_of, tall_shot
from tests.conftest import csrf_from

pytestmark = pytest.mark.browser
SHOTS = Path(tempfile.gettempdir()) / "varde-shots" / "copies"  # /tmp/varde-shots/copies: to look at
COPY = "/journal/kopi"
QUEUE = "/ansatt/innsyn"
HOSPITAL = "St. Olavs hospital"
PART = "Røntgen av kneet og notatene fra operasjonen"
COVER = "Hei! Her er kopien du ba om.\nVennlig hilsen St. Olavs hospital"
REASON = "Vi har ingen journal om deg fra før 2010."
MANDATE = "Helse og personlige forhold"
NO_DESCRIPTION = "Skriv hvilke deler av journalen du vil ha kopi av, for eksempel «røntgen av kneet i 2024»."
BAD_NIN = "Fødselsnummeret er ikke gyldig. Sjekk at alle sifrene er riktige."
UNKNOWN_NIN = "Vi finner ingen med dette fødselsnummeret i Varde."


# --- helpers ----------------------------------------------------------------------------------------


def long_date(day: date) -> str:
    """A date as the pages write it: "14. august 2025"."""
    return format_date(day, "long", locale="nb")


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    tall_shot(page, SHOTS, name)


def passes(page, axe, name: str) -> None:  # type: ignore[no-untyped-def]
    checked(page, axe, SHOTS, name)


def summary(page):  # type: ignore[no-untyped-def]
    """The error summary at the top of the page."""
    return page.locator(".error-summary")


def summary_says(page, message: str, field_id: str) -> None:  # type: ignore[no-untyped-def]
    """The error summary is there, has focus, and links ``message`` to the field it is about."""
    box = summary(page)
    expect(box).to_have_count(1)
    expect(box.get_by_role("heading")).to_have_text("Det er et problem")
    link = box.get_by_role("link", name=message)
    expect(link).to_have_attribute("href", f"#{field_id}")
    assert page.locator(f"#{field_id}").count() == 1, f"the summary's link #{field_id} leads nowhere"
    # It takes focus once the page's script has run (the page may still be arriving: wait for it).
    expect(page.locator(".error-summary:focus")).to_have_count(1)
    assert page.title().startswith("Feil: ")


def flashed(page, text: str):  # type: ignore[no-untyped-def]
    return page.locator("main").get_by_role("status").filter(has_text=text)


def pdf_bytes() -> bytes:
    """A real one-page PDF, written by pypdf."""
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Title": "Kopi av journalen"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def copy_requests() -> list[tuple[bool, str | None, CopyRequestState]]:
    db.session.expire_all()
    return [
        (r.whole_record, r.part_text, r.state) for r in db.session.scalars(select(CopyRequest).order_by(CopyRequest.id))
    ]


def relations() -> list[tuple[int, int, RelationKind, ProxyLevel | None, bool]]:
    db.session.expire_all()
    return [
        (r.holder_id, r.subject_id, r.kind, r.level, r.revoked_at is None)
        for r in db.session.scalars(select(Relation).order_by(Relation.id))
    ]


def open_queue(page, base: str) -> None:  # type: ignore[no-untyped-def]
    """From the staff's front page to the queue, as a clerk gets there."""
    page.goto(f"{base}/")
    page.get_by_role("link", name="Innsyn – kopi av journalen").click()
    page.wait_for_url(f"{base}{QUEUE}")
    assert heading(page) == "Innsyn – kopi av journalen"
    fits(page)


def queue_rows(page):  # type: ignore[no-untyped-def]
    return page.get_by_role("region", name=re.compile("forespørsler")).locator(".item-row")


def my_requests(page):  # type: ignore[no-untyped-def]
    return page.get_by_role("region", name="Dine forespørsler").locator(".copy-request")


def ask_form(page):  # type: ignore[no-untyped-def]
    return page.get_by_role("region", name="Be om kopi")


def choose_part(page, text: str) -> None:  # type: ignore[no-untyped-def]
    """Fill in the form for a part of the record from the hospital (without sending it)."""
    form = ask_form(page)
    form.get_by_label("Hvem vil du ha kopi fra?").select_option(label=HOSPITAL)
    form.get_by_role("group", name="Hva vil du ha kopi av?").get_by_label("Deler av journalen").check()
    form.get_by_label("Hvilke deler av journalen?").fill(text)


def send_request(page):  # type: ignore[no-untyped-def]
    """Press "Send forespørselen"; the POST's response."""
    with page.expect_response(lambda r: r.request.method == "POST" and path_of(r) == COPY) as answer:
        ask_form(page).get_by_role("button", name="Send forespørselen").click()
    page.wait_for_load_state()
    return answer.value


def client_for(app, user):  # type: ignore[no-untyped-def]
    c = app.test_client()
    factories.session_for(user, c)
    return c


def asked_by_client(app, user, **fields) -> CopyRequest:  # type: ignore[no-untyped-def]
    """``user`` asks for a copy through the form (a browser of their own, no JavaScript)."""
    c = client_for(app, user)
    response = c.post(COPY, data={"csrf_token": csrf_from(c, COPY), **fields})
    assert response.status_code == 303, response.get_data(as_text=True)
    db.session.expire_all()
    return db.session.scalars(select(CopyRequest).order_by(CopyRequest.id.desc())).first()


def answered_by_client(app, staff, copy_request: CopyRequest, *, reason: str | None = None) -> None:
    """``staff`` sends the copy (or, with ``reason``, refuses) through the staff page's forms."""
    c = client_for(app, staff)
    token = csrf_from(c, f"{QUEUE}/{copy_request.id}")
    if reason is None:
        response = c.post(
            f"{QUEUE}/{copy_request.id}/send",
            data={"csrf_token": token, "answer_text": COVER, "document": (io.BytesIO(pdf_bytes()), "kopi.pdf")},
            content_type="multipart/form-data",
        )
    else:
        response = c.post(f"{QUEUE}/{copy_request.id}/avsla", data={"csrf_token": token, "reason": reason})
    assert response.status_code == 303, response.get_data(as_text=True)


# --- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture
def kari_at_hospital(kari, source):
    """Kari has a record at St. Olavs hospital (``org``)."""
    factories.record(kari.person, source, results=3, notes=1, prefix="k")
    return kari


@pytest.fixture
def gp_office(app):
    """An organisation where Kari has never been: listed under "Andre virksomheter"."""
    return factories.hospital("Byåsen legekontor", OrganisationKind.GP_OFFICE)


@pytest.fixture
def clerk(org):
    """Lise Berg, a clerk at St. Olavs hospital: she handles the requests for copies."""
    user = factories.staff("lise.berg", "Lise Berg", role=Role.CLERK)
    factories.works_at(user, org)
    return user


@pytest.fixture
def lund(dr_lund, org):
    """Dr. Marte Lund, a clinician at St. Olavs hospital."""
    factories.works_at(dr_lund, org)
    return dr_lund


@pytest.fixture
def per_treated(per, source):
    """Per Hansen, 67, has a record at St. Olavs hospital: Dr. Lund has a care relation to him."""
    factories.record(per.person, source, results=4, notes=1, prefix="p")
    return per


# --- 1. a copy of the record -------------------------------------------------------------------------------


def test_kari_asks_for_part_of_her_record_and_the_hospital_sends_the_copy(
    page, live_server, kari_at_hospital, org, gp_office, clerk, phone, axe, tmp_path
):
    kari = kari_at_hospital
    today = clock.today_in_norway()
    due = today + timedelta(days=30)
    log_in_by_form(page, live_server, kari, "kari")

    # Journal → "Be om kopi av journalen …"
    page.get_by_role("navigation", name="Hovedmeny").get_by_role("link", name="Journal", exact=True).click()
    page.wait_for_url(f"{live_server}/journal")
    page.get_by_role("link", name=re.compile(r"^Be om kopi av journalen")).click()
    page.wait_for_url(f"{live_server}{COPY}")
    assert heading(page) == "Kopi av journalen"
    assert my_requests(page).count() == 0
    expect(page.get_by_role("region", name="Dine forespørsler")).to_contain_text("Du har ikke bedt om kopi ennå.")
    organisations = ask_form(page).get_by_label("Hvem vil du ha kopi fra?")
    # Where she has been comes first.
    options = organisations.locator("option").all_inner_texts()
    assert options == ["Velg virksomhet", HOSPITAL, "Byåsen legekontor"], options
    # The part's fields show only for "Deler av journalen".
    description = ask_form(page).get_by_label("Hvilke deler av journalen?")
    expect(description).to_be_hidden()
    ask_form(page).get_by_role("group", name="Hva vil du ha kopi av?").get_by_label("Deler av journalen").check()
    expect(description).to_be_visible()
    fits(page)

    # A part, but no description: the error summary says so, and nothing is sent.
    organisations.select_option(label=HOSPITAL)
    assert send_request(page).status == 400
    summary_says(page, NO_DESCRIPTION, "part_text")
    expect(description).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#part_text-error")).to_contain_text(NO_DESCRIPTION)
    assert "part_text-error" in description.get_attribute("aria-describedby")
    # What she chose is still chosen.
    expect(organisations).to_have_value(str(org.id))
    expect(ask_form(page).get_by_role("radio", name="Deler av journalen")).to_be_checked()
    assert copy_requests() == []
    expect(page.get_by_role("region", name="Dine forespørsler")).to_contain_text("Du har ikke bedt om kopi ennå.")
    passes(page, axe, "patient-error")

    # The description and a period; sent.
    start, end = today - timedelta(days=400), today - timedelta(days=10)
    choose_part(page, PART)
    ask_form(page).get_by_label("Fra dato (valgfritt)").fill(start.isoformat())
    ask_form(page).get_by_label("Til dato (valgfritt)").fill(end.isoformat())
    fits(page)
    shot(page, "patient-form-filled")
    send_request(page)
    assert path_of(page) == COPY
    sent = f"Forespørselen er sendt til {HOSPITAL}. De skal svare innen {long_date(due)}."
    expect(flashed(page, "Forespørselen er sendt")).to_have_text(sent)
    expect(summary(page)).to_have_count(0)
    assert copy_requests() == [(False, PART, CopyRequestState.RECEIVED)]
    expect(my_requests(page)).to_have_count(1)
    mine = my_requests(page).first
    expect(mine.get_by_role("heading", level=3)).to_have_text(HOSPITAL)
    expect(mine).to_contain_text(f"Deler av journalen: {PART}")
    expect(mine).to_contain_text(f"Periode: {long_date(start)} – {long_date(end)}")
    expect(mine).to_contain_text(f"Sendt {long_date(today)}")
    expect(mine).to_contain_text(f"Mottatt – svarfrist {long_date(due)}")
    passes(page, axe, "patient-request-sent")

    # The clerk, on her own phone: the queue.
    staff = phone(clerk, "clerk", has_touch=True)
    open_queue(staff, live_server)
    views = staff.get_by_role("navigation", name="Visninger")
    expect(views.get_by_role("link", name=re.compile("^Åpne"))).to_have_attribute("aria-current", "page")
    expect(views.get_by_role("link", name=re.compile("^Åpne"))).to_contain_text("1")
    expect(queue_rows(staff)).to_have_count(1)
    row = queue_rows(staff).first
    born = kari.person.birth_date.strftime("%d.%m.%Y")
    expect(row).to_contain_text(f"Kari Nordmann, f. {born}")
    expect(row).to_contain_text(f"Deler av journalen: {PART}")
    expect(row).to_contain_text("30 dager igjen")
    passes(staff, axe, "staff-queue")

    row.get_by_role("link").click()
    staff.wait_for_url(re.compile(rf"{QUEUE}/\d+$"))
    request_id = int(path_of(staff).rsplit("/", 1)[1])
    assert heading(staff) == "Forespørsel om kopi av journalen"
    facts = staff.locator("dl.facts")
    for text in ("Kari Nordmann", born, HOSPITAL, "Deler av journalen", PART, "30 dager igjen", "Venter på svar"):
        expect(facts).to_contain_text(text)
    expect(facts).to_contain_text(f"{long_date(start)} – {long_date(end)}")
    passes(staff, axe, "staff-request")

    # "Send kopien" without the file: told what is missing, nothing sent.
    with staff.expect_response(re.compile(rf"{QUEUE}/{request_id}/send$")) as answer:
        staff.get_by_role("button", name="Send kopien").click()
    assert answer.value.status == 400
    staff.wait_for_load_state()
    summary_says(staff, "Velg PDF-filen med kopien.", "document")
    assert copy_requests() == [(False, PART, CopyRequestState.RECEIVED)]
    passes(staff, axe, "staff-request-error")

    # The PDF and a covering text: sent.
    copy = tmp_path / "kopi-kari-nordmann.pdf"
    copy.write_bytes(pdf_bytes())
    staff.get_by_label("Kopien som PDF").set_input_files(copy)
    staff.get_by_label("Følgebrev til pasienten (valgfritt)").fill(COVER)
    staff.get_by_role("button", name="Send kopien").click()
    staff.wait_for_url(f"{live_server}{QUEUE}/{request_id}?ok=sendt")
    expect(flashed(staff, "Kopien er sendt.")).to_have_text(
        "Kopien er sendt. Den ligger som et dokument i pasientens journal, og pasienten får et varsel."
    )
    expect(facts).to_contain_text(f"Besvart {long_date(today)} av Lise Berg")
    expect(staff.get_by_role("button", name="Send kopien")).to_have_count(0)
    assert copy_requests() == [(False, PART, CopyRequestState.ANSWERED)]
    passes(staff, axe, "staff-request-answered")

    # It has moved from the open ones to the answered ones.
    staff.locator("main .breadcrumb").get_by_role("link").click()
    staff.wait_for_url(f"{live_server}{QUEUE}?visning=besvarte")
    expect(views.get_by_role("link", name="Besvarte")).to_have_attribute("aria-current", "page")
    expect(queue_rows(staff)).to_have_count(1)
    expect(queue_rows(staff).first).to_contain_text(f"Besvart {format_date(today, 'medium', locale='nb')}")
    fits(staff)
    views.get_by_role("link", name=re.compile("^Åpne")).click()
    staff.wait_for_url(f"{live_server}{QUEUE}?visning=apne")
    expect(staff.get_by_text("Ingen åpne forespørsler.")).to_be_visible()

    # Kari reloads: answered, with the covering text and a link to the copy.
    page.reload()
    mine = my_requests(page).first
    expect(mine).to_contain_text(f"Besvart {long_date(today)}")
    expect(mine).not_to_contain_text("svarfrist")
    expect(mine.locator(".prewrap").last).to_have_text(COVER)
    passes(page, axe, "patient-request-answered")
    # The bell has told her too.
    page.locator("header .bell").click()
    page.wait_for_url(f"{live_server}/varsler")
    expect(page.locator("main")).to_contain_text("Kopien av journalen din er klar")
    page.go_back()
    page.wait_for_url(f"{live_server}{COPY}")
    mine = my_requests(page).first
    mine.get_by_role("link", name="Åpne kopien").click()
    page.wait_for_url(re.compile(r"/journal/dokumenter/\d+$"))
    assert heading(page) == f"Kopi av journalen fra {HOSPITAL}"
    expect(page.locator("dl.facts")).to_contain_text(HOSPITAL)
    passes(page, axe, "patient-copy-document")
    download_link = page.get_by_role("link", name="Last ned dokumentet (PDF)")
    href = download_link.get_attribute("href")
    with page.expect_download() as downloading:
        download_link.click()
    download = downloading.value
    assert download.suggested_filename.endswith(".pdf"), download.suggested_filename
    assert Path(download.path()).read_bytes() == copy.read_bytes()
    response = page.request.get(f"{live_server}{href}")
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.body() == copy.read_bytes()
    item_id = int(path_of(page).rsplit("/", 1)[1])
    db.session.expire_all()
    assert db.session.get(RecordItem, item_id).person_id == kari.person_id


def test_the_hospital_refuses_a_request_and_kari_reads_why(page, live_server, kari_at_hospital, clerk, phone, axe):
    kari = kari_at_hospital
    today = clock.today_in_norway()
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}{COPY}")
    # The whole record (the form's default): no description needed.
    ask_form(page).get_by_label("Hvem vil du ha kopi fra?").select_option(label=HOSPITAL)
    expect(ask_form(page).get_by_role("radio", name="Hele journalen")).to_be_checked()
    send_request(page)
    expect(flashed(page, "Forespørselen er sendt")).to_be_visible()
    expect(my_requests(page).first).to_contain_text("Hele journalen")
    assert copy_requests() == [(True, None, CopyRequestState.RECEIVED)]

    staff = phone(clerk, "clerk", has_touch=True)
    open_queue(staff, live_server)
    row = queue_rows(staff).filter(has_text="Kari Nordmann")
    expect(row).to_contain_text("Hele journalen")
    expect(row).to_contain_text("30 dager igjen")
    row.get_by_role("link").click()
    staff.wait_for_url(re.compile(rf"{QUEUE}/\d+$"))
    refuse = staff.get_by_role("region", name="Avslå")

    # No reason: refused by the form, with the summary.
    refuse.get_by_role("button", name="Avslå forespørselen").click()
    staff.wait_for_load_state()
    summary_says(staff, "Skriv hvorfor forespørselen avslås. Pasienten ser begrunnelsen.", "reason")
    expect(staff.get_by_label("Begrunnelse til pasienten")).to_have_attribute("aria-invalid", "true")
    assert copy_requests() == [(True, None, CopyRequestState.RECEIVED)]
    passes(staff, axe, "staff-refuse-error")

    staff.get_by_label("Begrunnelse til pasienten").fill(REASON)
    staff.get_by_role("region", name="Avslå").get_by_role("button", name="Avslå forespørselen").click()
    staff.wait_for_url(re.compile(rf"{QUEUE}/\d+\?ok=avslatt$"))
    expect(flashed(staff, "Forespørselen er avslått.")).to_have_text(
        "Forespørselen er avslått. Pasienten ser begrunnelsen."
    )
    expect(staff.locator("dl.facts")).to_contain_text(f"Avslått {long_date(today)} av Lise Berg")
    expect(staff.get_by_role("region", name="Svaret")).to_contain_text(f"Begrunnelse: {REASON}")
    assert copy_requests() == [(True, None, CopyRequestState.REFUSED)]
    passes(staff, axe, "staff-request-refused")

    page.reload()
    mine = my_requests(page).first
    expect(mine).to_contain_text(f"Avslått {long_date(today)}")
    expect(mine).to_contain_text(f"Begrunnelse: {REASON}")
    expect(mine.get_by_role("link", name="Åpne kopien")).to_have_count(0)
    passes(page, axe, "patient-request-refused")


# --- 2. a guardian, registered and ended by a clinician --------------------------------------------------


def test_a_clinician_registers_a_guardian_who_reads_the_record_until_it_is_ended(
    page, live_server, lund, kari, per_treated, phone, axe
):
    per = per_treated
    sign_in(page.context, live_server, lund)
    # Pasienter → find Per → his page.
    page.goto(f"{live_server}/")
    page.get_by_role("navigation", name="Hovedmeny").get_by_role("link", name="Pasienter").click()
    page.wait_for_url(f"{live_server}/ansatt")
    page.get_by_label("Fødselsnummer eller navn").fill("Per Hansen")
    page.get_by_role("button", name="Søk").click()
    page.locator("#found").get_by_role("link", name=re.compile("^Per Hansen")).click()
    page.wait_for_url(f"{live_server}/ansatt/pasient/{per.person_id}")
    assert heading(page) == "Per Hansen"
    section = page.get_by_role("region", name="Pårørende og representanter")
    expect(section).to_contain_text("Ingen er registrert som forelder, verge eller fullmektig for pasienten.")
    expect(section.locator("summary", has_text="Registrer forelder")).to_have_count(0)  # Per is 67
    fits(page)

    # "Registrer verge", with a national id with a typo first.
    section.locator("summary", has_text="Registrer verge").click()
    nin_field = section.get_by_label("Fødselsnummeret til vergen")
    expect(nin_field).to_be_visible()
    typo = kari.person.national_id[:-1] + str((int(kari.person.national_id[-1]) + 1) % 10)
    nin_field.fill(typo)
    section.get_by_label("Hva skal vergen få se og gjøre i Varde?").select_option(label="Bare lese")
    section.get_by_label("Omfanget av vergemålet").fill(MANDATE)
    with page.expect_response(re.compile(r"/verge$")) as answer:
        section.get_by_role("button", name="Registrer verge").click()
    assert answer.value.status == 400
    page.wait_for_load_state()
    summary_says(page, BAD_NIN, "guardian_national_id")
    section = page.get_by_role("region", name="Pårørende og representanter")
    expect(section.locator("details", has_text="Registrer verge")).to_have_attribute("open", "")
    nin_field = section.get_by_label("Fødselsnummeret til vergen")
    expect(nin_field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#guardian_national_id-error")).to_have_text(f"Feil: {BAD_NIN}")
    # What was written stays.
    expect(section.get_by_label("Hva skal vergen få se og gjøre i Varde?")).to_have_value("read_only")
    expect(section.get_by_label("Omfanget av vergemålet")).to_have_value(MANDATE)
    assert relations() == []
    passes(page, axe, "staff-relations-bad-nin")

    # A well-formed number nobody in Varde has.
    nin_field.fill(factories.nin_for(date(1975, 3, 14)))
    with page.expect_response(re.compile(r"/verge$")) as answer:
        section.get_by_role("button", name="Registrer verge").click()
    assert answer.value.status == 409
    page.wait_for_load_state()
    summary_says(page, UNKNOWN_NIN, "guardian_national_id")
    assert relations() == []

    # Kari's: registered.
    section = page.get_by_role("region", name="Pårørende og representanter")
    section.get_by_label("Fødselsnummeret til vergen").fill(kari.person.national_id)
    section.get_by_role("button", name="Registrer verge").click()
    page.wait_for_url(f"{live_server}/ansatt/pasient/{per.person_id}#parorende")
    expect(flashed(page, "er registrert som verge")).to_have_text("Kari Nordmann er registrert som verge.")
    expect(summary(page)).to_have_count(0)
    listed = section.locator(".device").filter(has_text="Kari Nordmann")
    expect(listed).to_have_count(1)
    today = clock.today_in_norway()
    expect(listed).to_contain_text(f"Verge (Bare lese) · registrert av helsepersonell, {long_date(today)}")
    expect(listed).to_contain_text(f"Mandat: {MANDATE}")
    assert relations() == [(kari.person_id, per.person_id, RelationKind.GUARDIAN, ProxyLevel.READ_ONLY, True)]
    passes(page, axe, "staff-relations-guardian")

    # Kari logs in on her phone: whose record first?
    kari_page = phone(None, "kari", has_touch=True)
    log_in_by_form(kari_page, live_server, kari, "kari")
    kari_page.wait_for_url(f"{live_server}/velg-journal")
    assert heading(kari_page) == "Hvem vil du se?"
    assert kari_page.locator("main").get_by_role("button").all_inner_texts() == ["Deg selv", "Per, 67 år"]
    passes(kari_page, axe, "guardian-chooser")
    kari_page.get_by_role("button", name="Per, 67 år").tap()
    kari_page.wait_for_url(f"{live_server}/")
    says = "Du ser nå journalen til Per, 67 år."
    expect(kari_page.locator(".acting-banner p")).to_have_text(says)
    kari_page.get_by_role("navigation", name="Hovedmeny").get_by_role("link", name="Journal", exact=True).click()
    kari_page.wait_for_url(f"{live_server}/journal")
    expect(kari_page.locator(".acting-banner p")).to_have_text(says)
    kari_page.get_by_role("link", name="Prøvesvar").click()
    kari_page.wait_for_url(f"{live_server}/journal/prover")
    assert heading(kari_page) == "Prøvesvar"
    assert kari_page.locator("main .item-row").count() > 0  # Per's results
    expect(kari_page.locator(".acting-banner p")).to_have_text(says)
    fits(kari_page)
    shot(kari_page, "guardian-reads-results")

    # Dr. Lund ends it.
    page.once("dialog", lambda dialog: dialog.accept())  # it asks first
    section.get_by_role("button", name="Avslutt Kari Nordmann").click()
    page.wait_for_url(f"{live_server}/ansatt/pasient/{per.person_id}#parorende")
    expect(flashed(page, "Relasjonen er avsluttet.")).to_have_text(
        "Relasjonen er avsluttet. Kari Nordmann har ikke lenger tilgang."
    )
    expect(section).to_contain_text("Ingen er registrert som forelder, verge eller fullmektig for pasienten.")
    ended_row = section.locator(".device").filter(has_text="Kari Nordmann")
    expect(ended_row).to_contain_text(f"avsluttet {long_date(today)}")
    expect(section.get_by_role("button", name="Avslutt Kari Nordmann")).to_have_count(0)
    assert relations() == [(kari.person_id, per.person_id, RelationKind.GUARDIAN, ProxyLevel.READ_ONLY, False)]
    passes(page, axe, "staff-relations-ended")

    # Kari's next page says so, and shows her own.
    kari_page.reload()
    expect(kari_page.locator(".notice--banner")).to_have_text(
        "Du har ikke lenger tilgang til journalen til Per. Du ser nå din egen."
    )
    expect(kari_page.locator(".acting-banner")).to_have_count(0)
    passes(kari_page, axe, "guardian-access-ended")
    kari_page.goto(f"{live_server}/")
    assert heading(kari_page) == "Hei, Kari"
    expect(kari_page.locator(".notice--banner")).to_have_count(0)  # said once
    expect(kari_page.get_by_role("region", name="Hvem vil du se?")).to_have_count(0)


# --- 3. every page passes axe and fits the phone ----------------------------------------------------------


@pytest.fixture
def scene(app, kari_at_hospital, org, source, clerk, lund, per_treated):
    """Kari has asked St. Olavs three times (one answered, one refused, one open), Per once (open);
    Solveig, with a record there too, has never asked."""
    kari = kari_at_hospital
    solveig = factories.patient("Solveig", "Nordmann", age=82, username="solveig", with_totp=True)
    factories.record(solveig.person, source, results=1, notes=0, prefix="s")
    answered = asked_by_client(app, kari, organisation=str(org.id), scope="part", part_text=PART)
    answered_by_client(app, clerk, answered)
    refused = asked_by_client(app, kari, organisation=str(org.id), scope="whole")
    answered_by_client(app, clerk, refused, reason=REASON)
    open_one = asked_by_client(
        app,
        kari,
        organisation=str(org.id),
        scope="part",
        part_text="Alt om blodprøvene fra 2023, med referanseverdiene. " * 3,
        period_from="2023-01-01",
        period_to="2023-12-31",
    )
    asked_by_client(app, per_treated, organisation=str(org.id), scope="whole")
    return SimpleNamespace(kari=kari, solveig=solveig, per=per_treated, open=open_one, lund=lund, clerk=clerk)


def open_screen(page, base: str, name: str, scene) -> None:  # type: ignore[no-untyped-def]
    """Log the browser in as whoever sees ``name`` and bring it up."""
    who = {
        "patient-empty": scene.solveig,
        "patient-error": scene.solveig,
        "patient-requests": scene.kari,
        "staff-relations-error": scene.lund,
    }.get(name, scene.clerk)
    sign_in(page.context, base, who)
    if name in ("patient-empty", "patient-requests"):
        page.goto(f"{base}{COPY}")
    elif name == "patient-error":
        page.goto(f"{base}{COPY}")
        choose_part(page, "")
        assert send_request(page).status == 400
        expect(summary(page)).to_have_count(1)
    elif name == "staff-queue":
        page.goto(f"{base}{QUEUE}")
        expect(queue_rows(page)).to_have_count(2)
    elif name == "staff-queue-answered":
        page.goto(f"{base}{QUEUE}?visning=besvarte")
        expect(queue_rows(page)).to_have_count(2)
    elif name == "staff-request":
        page.goto(f"{base}{QUEUE}/{scene.open.id}")
    elif name == "staff-relations-error":
        page.goto(f"{base}/ansatt/pasient/{scene.per.person_id}")
        section = page.get_by_role("region", name="Pårørende og representanter")
        section.locator("summary", has_text="Registrer verge").click()
        section.get_by_role("button", name="Registrer verge").click()  # nothing filled in
        expect(summary(page)).to_have_count(1)
        expect(page.locator("details[open]")).to_have_count(1)
    else:
        raise AssertionError(name)


SCREENS = [
    "patient-empty",
    "patient-error",
    "patient-requests",
    "staff-queue",
    "staff-queue-answered",
    "staff-request",
    "staff-relations-error",
]


@pytest.mark.parametrize("name", SCREENS)
def test_every_page_passes_axe_and_fits_the_phone(page, live_server, scene, name, axe):
    open_screen(page, live_server, name, scene)
    passes(page, axe, f"axe-{name}")
    if name == "patient-empty":
        expect(page.get_by_role("region", name="Dine forespørsler")).to_contain_text("Du har ikke bedt om kopi ennå.")
    if name == "patient-requests":
        texts = my_requests(page).all_inner_texts()
        assert len(texts) == 3, texts
        assert "Mottatt" in texts[0] and "Avslått" in texts[1] and "Besvart" in texts[2], texts
    if name == "staff-relations-error":
        section = page.get_by_role("region", name="Pårørende og representanter")
        expect(section.get_by_label("Fødselsnummeret til vergen")).to_have_attribute("aria-invalid", "true")


# --- 4. what is still wrong -------------------------------------------------------------------------------


def test_the_examples_of_what_to_write_stay_on_the_page(page, live_server, kari_at_hospital):
    sign_in(page.context, live_server, kari_at_hospital)
    page.goto(f"{live_server}{COPY}")
    ask_form(page).get_by_role("radio", name="Deler av journalen").check()
    hint = page.locator("#part-hint")
    expect(hint).to_be_visible()
    expect(page.locator("#part_text[data-count-ready]")).to_have_count(1)
    expect(hint).to_contain_text("«notatene fra fødselen»", timeout=1_000)
    expect(page.locator("#part-count")).to_contain_text("0 av 1000 tegn")


def test_a_clerk_on_the_queue_can_use_the_tab_it_marks_as_current(page, live_server, clerk):
    sign_in(page.context, live_server, clerk)
    open_queue(page, live_server)
    current = page.get_by_role("navigation", name="Hovedmeny").locator("a[aria-current=page]")
    expect(current).to_have_text("Innsyn")  # a clerk has no patient console: their tab is the queue
    with page.expect_response(lambda r: path_of(r) == "/ansatt/innsyn") as answer:
        current.click()
    page.wait_for_load_state()
    assert answer.value.status == 200, heading(page)
