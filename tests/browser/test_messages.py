"""Secure messages in a real phone-sized browser: Kari writes to her GP office, Dr. Siri Aune answers.

Whatever anyone writes stays text on every page, polled in or not; an answer shows up while the
conversation is open; a draft survives leaving the page; photos and PDFs go along (and a fake one
is refused); the text box counts; the team takes, answers from a template and closes; every page
passes axe at 390 pixels and at 200 % zoom; and the keyboard alone writes a message.

The browsers are logged in with a server-side session and its cookie (``sign_in``); the server runs
in this process, on the same database: what a test commits, the browser sees.
"""

from __future__ import annotations

import io
import re
import tempfile
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from PIL import Image
from playwright.sync_api import expect
from pypdf import PdfWriter
from sqlalchemy import func, select

from app.db import db
from app.messages import attachments, services
from app.messages.models import Conversation, ConversationState, Message, MessageDraft, MessageTemplate, Topic
from tests import factories
from tests.browser.test_appointments import focused_text, passes, scroll_width, summary_lands, tab_to
from tests.browser.test_record import sign_in, titles

pytestmark = pytest.mark.browser
SHOTS = Path(tempfile.gettempdir()) / "msg-shots"  # /tmp/msg-shots: pictures for a person to look at
MAX = 2000  # MESSAGE_MAX_CHARS
UPDATED = "Samtalen er oppdatert."

# Text that would do something if a page ever treated it as markup (or htmx as instructions).
PAYLOADS = [
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=2">',
    '<svg onload="window.__pwned=3">',
    '<div hx-get="/logg-ut" hx-trigger="load">a</div>',
    '<div data-hx-post="/logg-ut" data-hx-trigger="load">b</div>',
    '<a href="javascript:window.__pwned=4">klikk</a>',
    "{{ 7*7 }}",
    "${7*7}",
    '<iframe src="/">',
    '"><b>x</b>',
    '<form action="/logg-ut" method="post"><button>send</button></form>',
    '<div hx-on:htmx:load="window.__pwned=5">c</div>',
]


# --- helpers ----------------------------------------------------------------------------------------


def jpeg(width: int = 640, height: int = 480) -> bytes:
    """A real photo as a phone's camera would save it (well, a plain one)."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 90, 60)).save(out, "JPEG", quality=90)
    return out.getvalue()


def pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def file(name: str, data: bytes, mime: str) -> dict:
    return {"name": name, "mimeType": mime, "buffer": data}


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """The whole page on a 390-wide phone as tall as the page (a full_page screenshot would draw the
    fixed tab bar where the screen ends, over the middle of the page)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    page.set_viewport_size({"width": 390, "height": max(844, page.evaluate("document.body.scrollHeight"))})
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    page.set_viewport_size(size)


def count(model) -> int:  # type: ignore[no-untyped-def]
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def stored_files(app) -> list[Path]:  # type: ignore[no-untyped-def]
    root = Path(app.config["MESSAGE_ATTACHMENT_DIR"])
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def answer(app, staff, conversation, body: str, *, close: bool = False, uploads=()) -> None:  # type: ignore[no-untyped-def]
    """The team answers through the service, as the staff page does (it builds the event's URL, so in a request)."""
    with app.test_request_context():
        db.session.expire_all()
        services.reply_as_staff(
            staff, db.session.get(Conversation, conversation.id), body, list(uploads), close, attachments.Stored()
        )
        db.session.commit()


def write(page, base: str, unit, subject: str, body: str, *, topic: str = "Spørsmål om behandling") -> None:  # type: ignore[no-untyped-def]
    """Fill in the new-message form (without sending)."""
    if urlsplit(page.url).path != f"/meldinger/ny/{unit.id}":
        page.goto(f"{base}/meldinger/ny/{unit.id}")
    page.get_by_role("group", name="Hva gjelder det?").get_by_label(topic).check()
    page.get_by_label("Overskrift").fill(subject)
    page.get_by_label("Melding", exact=True).fill(body)


def send(page, base: str, unit, subject: str, body: str, **kw) -> int:  # type: ignore[no-untyped-def]
    """Write and send a new message through the form; the new conversation's id."""
    write(page, base, unit, subject, body, **kw)
    page.get_by_role("button", name="Send meldingen").click()
    page.wait_for_url(re.compile(r"/meldinger/\d+\?ok=sendt$"))
    return int(urlsplit(page.url).path.rsplit("/", 1)[1])


def message_texts(page, side: str = "") -> list[str]:  # type: ignore[no-untyped-def]
    return page.locator(f".msg{side} .msg__body").all_inner_texts()


class Guard:
    """Watches a page for what a payload would do if it ran: dialogs, and requests it would send."""

    def __init__(self, page) -> None:  # type: ignore[no-untyped-def]
        self.page = page
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        page.on("dialog", self._dialog)
        page.on("request", lambda r: self.requests.append(urlsplit(r.url).path))

    def _dialog(self, dialog) -> None:  # type: ignore[no-untyped-def]
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def check(self, where: str) -> None:
        page = self.page
        assert page.evaluate("typeof window.__pwned") == "undefined", where
        assert self.dialogs == [], where
        assert "/logg-ut" not in self.requests, where
        assert not [p for p in self.requests if p.endswith("/x")], where  # <img src=x> never loaded
        # The text of a message is text: no element at all inside a body.
        assert page.locator(".msg__body *").count() == 0, where
        assert page.locator("script:not([src]), iframe, main svg, [onerror], [onload]").count() == 0, where
        hx = "[hx-get='/logg-ut'], [data-hx-post], [hx-on\\:htmx\\:load], a[href^=javascript]"
        assert page.locator(hx).count() == 0, where
        assert page.locator("form[action='/logg-ut']").count() == 0, where


# --- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture
def templates(gp):
    """Two ready answers of the office's."""
    made = [
        MessageTemplate(
            care_unit_id=gp.id,
            title="Resept fornyet",
            body="Hei! Resepten er fornyet og ligger klar på apoteket.\nVennlig hilsen Lade legesenter",
        ),
        MessageTemplate(care_unit_id=gp.id, title="Bestill time", body="Hei! Dette bør vi ta på en time. Ring oss."),
    ]
    db.session.add_all(made)
    db.session.commit()
    return made


@pytest.fixture
def fast_poll(app):
    """Open conversations ask for news every second instead of every 15."""
    before = app.config["MESSAGE_POLL_SECONDS"]
    app.config["MESSAGE_POLL_SECONDS"] = 1
    yield 1
    app.config["MESSAGE_POLL_SECONDS"] = before


# --- 1. what anyone writes stays text ------------------------------------------------------------------


def test_hostile_text_stays_text_everywhere(page, live_server, kari, gp, dr_aune, phone, fast_poll):
    sign_in(page.context, live_server, kari)
    kari_guard = Guard(page)
    sent = {}
    for payload in PAYLOADS:
        sent[send(page, live_server, gp, payload, payload)] = payload
        kari_guard.check(f"sent {payload}")
    assert count(Conversation) == len(PAYLOADS)
    stored = {c.id: (c.subject, c.messages[0].body) for c in db.session.scalars(select(Conversation))}
    assert stored == {i: (p, p) for i, p in sent.items()}  # kept as written, nothing cleaned away

    # Kari reads each one, and her list.
    for conversation_id, payload in sent.items():
        page.goto(f"{live_server}/meldinger/{conversation_id}")
        assert page.get_by_role("heading", level=1).inner_text() == payload
        assert message_texts(page) == [payload]
        kari_guard.check(f"patient page {payload}")
    page.goto(f"{live_server}/meldinger")
    assert sorted(titles(page)) == sorted(PAYLOADS)
    kari_guard.check("patient list")

    # Dr. Aune reads the inbox and each one.
    doctor = phone(dr_aune, "aune")
    aune_guard = Guard(doctor)
    doctor.goto(f"{live_server}/ansatt/meldinger")
    assert sorted(titles(doctor)) == sorted(PAYLOADS)
    aune_guard.check("staff inbox")
    for conversation_id, payload in sent.items():
        doctor.goto(f"{live_server}/ansatt/meldinger/{conversation_id}")
        assert doctor.get_by_role("heading", level=1).inner_text() == payload
        assert message_texts(doctor) == [payload]
        aune_guard.check(f"staff page {payload}")

    # Kari has one open while Dr. Aune answers it with every payload at once: the poll swaps the
    # thread in, and it is text too.
    first = next(iter(sent))
    page.goto(f"{live_server}/meldinger/{first}")
    page.evaluate("window.__stayed = true")
    reply = "\n".join(PAYLOADS)
    doctor.goto(f"{live_server}/ansatt/meldinger/{first}")
    doctor.get_by_label("Melding", exact=True).fill(reply)
    doctor.get_by_role("button", name="Send svaret").click()
    doctor.wait_for_url(re.compile(rf"/ansatt/meldinger/{first}\?ok=besvart$"))
    assert message_texts(doctor) == [PAYLOADS[0], reply]
    aune_guard.check("staff page after the answer")
    expect(page.locator(".msg--team .msg__body")).to_have_count(1, timeout=10_000)
    expect(page.locator("#live")).to_have_text(UPDATED)
    assert page.evaluate("window.__stayed") is True  # swapped in, not reloaded
    assert message_texts(page) == [PAYLOADS[0], reply]
    kari_guard.check("patient page after a poll")
    page.wait_for_timeout(1500)  # and another poll or two (204: nothing new)
    kari_guard.check("patient page after more polls")

    # Both are still logged in: nothing posted to /logg-ut.
    page.goto(f"{live_server}/meldinger")
    assert urlsplit(page.url).path == "/meldinger"
    assert page.get_by_role("heading", level=1).inner_text() == "Meldinger"
    doctor.goto(f"{live_server}/ansatt/meldinger")
    assert urlsplit(doctor.url).path == "/ansatt/meldinger"
    assert doctor.get_by_role("heading", level=1).inner_text() == "Meldinger"
    kari_guard.check("the end")
    aune_guard.check("the end")


# --- 2. an answer shows up while the conversation is open -------------------------------------------------


def test_a_new_answer_appears_without_reloading(page, live_server, app, kari, gp, dr_aune, fast_poll):
    conversation = factories.conversation(kari, kari.person, gp, body="Skal jeg øke dosen?")
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}/meldinger/{conversation.id}")
    status = page.locator(".msg--patient .msg__status")
    assert status.inner_text() == "Sendt"
    page.evaluate("window.__stayed = true")
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)

    answer(app, dr_aune, conversation, "Nei, behold dosen. Vi tar en ny måling om to uker.")
    team = page.locator(".msg--team .msg__body")
    expect(team).to_have_text("Nei, behold dosen. Vi tar en ny måling om to uker.", timeout=10_000)
    expect(page.locator("#live")).to_have_text(UPDATED)
    expect(status).to_have_text("Besvart")
    assert "Dr. Siri Aune" in page.locator(".msg--team .msg__who").inner_text()
    assert page.evaluate("window.__stayed") is True and navigations == []
    assert page.url == f"{live_server}/meldinger/{conversation.id}"
    # The reply form is still there, and what Kari had started writing in it is untouched.
    body = page.get_by_label("Melding", exact=True)
    body.fill("Takk!")
    answer(app, dr_aune, conversation, "Husk å ta med målingene.")
    expect(team).to_have_count(2, timeout=10_000)
    assert body.input_value() == "Takk!"
    assert navigations == []


def test_the_conversation_status_follows_the_polled_thread(page, live_server, app, kari, gp, dr_aune, fast_poll):
    """The facts above the thread say "Status: ..."; after a poll brings an answer they should not
    still say "Sendt, venter på svar" while the message below says "Besvart"."""
    conversation = factories.conversation(kari, kari.person, gp)
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}/meldinger/{conversation.id}")
    facts = page.locator("dl.facts")
    assert "Sendt, venter på svar" in facts.inner_text()
    answer(app, dr_aune, conversation, "Kom innom i morgen.")
    expect(page.locator(".msg--patient .msg__status")).to_have_text("Besvart", timeout=10_000)
    expect(page.locator("#live")).to_have_text(UPDATED)
    expect(facts).to_contain_text("Besvart", timeout=3_000)
    expect(page.locator("main").get_by_text("Svar ventes innen")).to_have_count(0)


def test_a_reply_written_while_the_team_closes_is_not_lost(page, live_server, app, kari, gp, dr_aune, fast_poll):
    """Kari writes a long reply; meanwhile Dr. Aune answers and closes the conversation. Her send is
    refused (right: it is closed), but what she wrote must not vanish."""
    conversation = factories.conversation(kari, kari.person, gp)
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}/meldinger/{conversation.id}")
    written = "Jeg har målt blodtrykket hver morgen: 142/91, 139/88 og 150/95. Skal jeg gjøre noe?"
    page.get_by_label("Melding", exact=True).fill(written)
    answer(app, dr_aune, conversation, "Alt ser fint ut. Vi avslutter her.", close=True)
    expect(page.locator(".msg--team")).to_have_count(1, timeout=10_000)  # polled in, closed
    # The form stays (what she is typing is not taken away) and says what will happen.
    expect(page.locator("#reply-status")).to_contain_text("Behandleren har avsluttet samtalen.")
    assert page.get_by_label("Melding", exact=True).input_value() == written
    page.get_by_role("button", name="Send svaret").click()
    refused = page.get_by_role("alert")
    expect(refused).to_have_text(
        "Behandleren avsluttet samtalen før svaret ditt ble sendt. Teksten er tatt vare på: "
        "velg «Skriv en ny melding om dette», så ligger den der."
    )
    assert count(Message) == 2
    page.get_by_role("link", name="Skriv en ny melding om dette").click()
    page.wait_for_url(re.compile(r"/meldinger/ny/\d+\?om=\d+$"))
    assert page.get_by_label("Melding", exact=True).input_value() == written
    assert page.get_by_label("Overskrift").input_value() == conversation.subject
    expect(page.get_by_label("Gjelder det en tidligere samtale? (valgfritt)")).to_have_value(str(conversation.id))


# --- 3. a draft survives leaving the page ---------------------------------------------------------------


def test_a_draft_survives_leaving_the_page(page, live_server, kari, gp):
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}/meldinger")
    page.get_by_role("link", name="Skriv ny melding").click()
    page.get_by_role("link", name=re.compile("^Lade legesenter Fastlegekontoret ditt")).click()
    page.wait_for_url(f"{live_server}/meldinger/ny/{gp.id}")
    page.get_by_role("group", name="Hva gjelder det?").get_by_label("Fornye resept").check()
    page.get_by_label("Overskrift").fill("Ny resept på Albyl-E")
    page.get_by_label("Melding", exact=True).press_sequentially("Hei! Jeg trenger", delay=20)
    expect(page.locator(".draft-status")).to_contain_text("Utkast lagret kl.", timeout=5_000)

    tabs = page.get_by_role("navigation", name="Hovedmeny")
    tabs.get_by_role("link", name="Oversikt").click()
    page.wait_for_url(f"{live_server}/")
    tabs.get_by_role("link", name="Meldinger").click()
    page.wait_for_url(f"{live_server}/meldinger")
    notice = page.locator("main .notice").filter(has_text="Du har et utkast")
    assert notice.inner_text() == "Du har et utkast til Lade legesenter som ikke er sendt. Fortsett å skrive"
    notice.get_by_role("link", name="Fortsett å skrive").click()
    page.wait_for_url(f"{live_server}/meldinger/ny/{gp.id}")
    assert page.get_by_label("Fornye resept").is_checked()
    assert page.get_by_label("Overskrift").input_value() == "Ny resept på Albyl-E"
    body = page.get_by_label("Melding", exact=True)
    assert body.input_value() == "Hei! Jeg trenger"

    # Finish and send it: the draft is gone (also when leaving the box just saved it again).
    body.press("Control+End")
    body.press_sequentially(" ny resept.", delay=20)
    page.get_by_role("button", name="Send meldingen").click()
    page.wait_for_url(re.compile(r"/meldinger/\d+\?ok=sendt$"))
    assert message_texts(page) == ["Hei! Jeg trenger ny resept."]
    page.wait_for_timeout(500)  # a save that raced the send has landed by now
    page.goto(f"{live_server}/meldinger")
    assert page.locator("main").get_by_text("Du har et utkast").count() == 0
    assert count(MessageDraft) == 0


# --- 4. photos and PDFs --------------------------------------------------------------------------------


def test_too_many_or_too_large_files_are_refused_when_chosen(page, live_server, app, kari, gp):
    """Before anything is sent: otherwise the request would be stopped at the door (413) and the
    text written would be lost with it."""
    sign_in(page.context, live_server, kari)
    write(page, live_server, gp, "Bilder", "Se bildene.")
    files = page.get_by_label("Legg ved bilder eller PDF (valgfritt)")
    files.set_input_files([file(f"{i}.jpg", jpeg(8, 8), "image/jpeg") for i in range(6)])
    check = page.locator("#files-check")
    expect(check).to_have_text("Du har valgt 6 filer. Velg høyst 5.")
    assert files.evaluate("el => el.files.length") == 0
    limit = app.config["MESSAGE_ATTACHMENT_MAX_BYTES"]
    app.config["MESSAGE_ATTACHMENT_MAX_BYTES"] = 1024 * 1024
    try:
        page.reload()
        files.set_input_files([file("stort.jpg", jpeg() + b"\0" * (1024 * 1024 + 1), "image/jpeg")])
        expect(check).to_have_text("«stort.jpg» er for stor. Hver fil kan være høyst 1 MB.")
        files.set_input_files([file("lite.jpg", jpeg(), "image/jpeg")])
        expect(check).to_be_hidden()
        assert files.evaluate("el => el.files.length") == 1
    finally:
        app.config["MESSAGE_ATTACHMENT_MAX_BYTES"] = limit
    assert page.get_by_label("Melding", exact=True).input_value() == "Se bildene."


def test_a_photo_and_a_pdf_go_along_and_a_fake_one_is_refused(page, live_server, app, kari, gp, dr_aune, phone):
    photo, document = jpeg(), pdf()
    sign_in(page.context, live_server, kari)
    files = page.get_by_label("Legg ved bilder eller PDF (valgfritt)")

    # A web page saved as a .jpg is not a photo: refused, in words, and nothing is sent.
    write(page, live_server, gp, "Utslett", "Se bildet.")
    files.set_input_files([file("bilde.jpg", b"<html><script>alert(1)</script></html>", "image/jpeg")])
    page.get_by_role("button", name="Send meldingen").click()
    refused = page.get_by_role("alert").filter(has_text="bilde.jpg")
    expect(refused).to_have_text(
        "«bilde.jpg» er verken et bilde (JPEG, PNG, WebP) eller en PDF. Send bilder eller PDF-filer."
    )
    assert refused.evaluate("el => el === document.activeElement")
    assert count(Conversation) == 0 and count(Message) == 0 and stored_files(app) == []
    # What she wrote is still there; only the file must be chosen again.
    assert page.get_by_label("Spørsmål om behandling").is_checked()
    assert page.get_by_label("Overskrift").input_value() == "Utslett"
    assert page.get_by_label("Melding", exact=True).input_value() == "Se bildet."

    files.set_input_files(
        [file("utslett på armen.jpg", photo, "image/jpeg"), file("Blodtrykksmåling.pdf", document, "application/pdf")]
    )
    page.get_by_role("button", name="Send meldingen").click()
    page.wait_for_url(re.compile(r"/meldinger/\d+\?ok=sendt$"))
    conversation_id = int(urlsplit(page.url).path.rsplit("/", 1)[1])
    assert len(stored_files(app)) == 3  # the photo, its preview, the PDF

    preview = page.get_by_role("img", name="Bilde: utslett på armen.jpg")
    preview.scroll_into_view_if_needed()
    expect(preview).to_have_js_property("naturalWidth", 640)
    listed = page.locator(".msg .files")
    assert "utslett på armen.jpg" in listed.inner_text() and "Blodtrykksmåling.pdf" in listed.inner_text()
    shot(page, "conversation-with-image")
    for name, data in (("utslett på armen.jpg", photo), ("Blodtrykksmåling.pdf", document)):
        with page.expect_download() as download:
            page.get_by_role("link", name=name, exact=True).click()
        assert download.value.suggested_filename == name
        assert Path(download.value.path()).read_bytes() == data
    assert page.url.endswith(f"/meldinger/{conversation_id}?ok=sendt")  # a download, not a page

    # Dr. Aune sees the same, and downloads the photo too.
    doctor = phone(dr_aune, "aune")
    doctor.goto(f"{live_server}/ansatt/meldinger/{conversation_id}")
    staff_preview = doctor.get_by_role("img", name="Bilde: utslett på armen.jpg")
    staff_preview.scroll_into_view_if_needed()
    expect(staff_preview).to_have_js_property("naturalWidth", 640)
    with doctor.expect_download() as download:
        doctor.get_by_role("link", name="utslett på armen.jpg", exact=True).click()
    assert download.value.suggested_filename == "utslett på armen.jpg"
    assert Path(download.value.path()).read_bytes() == photo


# --- 5. the character counter ----------------------------------------------------------------------------


def test_the_counter_counts_and_too_long_text_is_refused(page, live_server, kari, gp):
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}/meldinger/ny/{gp.id}")
    body = page.get_by_label("Melding", exact=True)
    hint = page.locator("#body-count")
    assert body.get_attribute("aria-describedby") == "body-count"
    expect(hint).to_have_text(f"0 av {MAX} tegn")
    body.press_sequentially("Hei på deg", delay=20)
    expect(hint).to_have_text(f"10 av {MAX} tegn")
    expect(hint).not_to_have_class(re.compile("error-message"))
    body.fill("x" * (MAX - 1))
    expect(hint).to_have_text(f"{MAX - 1} av {MAX} tegn")
    body.press_sequentially("yzå", delay=20)
    expect(hint).to_have_text(f"2 tegn for mye (høyst {MAX})")
    expect(hint).to_have_class(re.compile("error-message"))

    page.get_by_label("Praktisk spørsmål").check()
    page.get_by_label("Overskrift").fill("Langt brev")
    page.get_by_role("button", name="Send meldingen").click()
    summary = page.get_by_role("alert").filter(has_text="Det er et problem")
    expect(summary.first).to_be_visible()
    too_long = f"Meldingen er for lang: {MAX + 2} tegn. Den kan være høyst {MAX} tegn."
    assert too_long in summary.first.inner_text()
    assert summary.first.evaluate("el => el === document.activeElement")
    summary_lands(page)
    expect(page.locator("#body-error")).to_contain_text(too_long)
    assert body.get_attribute("aria-invalid") == "true"
    assert body.get_attribute("aria-describedby") == "body-count body-error"
    assert body.input_value() == "x" * (MAX - 1) + "yzå"  # kept, to be shortened
    expect(hint).to_have_text(f"2 tegn for mye (høyst {MAX})")
    assert page.title().startswith("Feil: ")
    assert count(Conversation) == 0
    shot(page, "new-message-errors")
    summaries = page.locator(".error-summary").count()

    # Shortened to the limit, it goes.
    body.fill("x" * MAX)
    expect(hint).to_have_text(f"{MAX} av {MAX} tegn")
    page.get_by_role("button", name="Send meldingen").click()
    page.wait_for_url(re.compile(r"/meldinger/\d+\?ok=sendt$"))
    assert len(db.session.scalars(select(Message)).one().body) == MAX

    # One summary, said once: the layout (base.html) and the page (messages/new.html) both draw it.
    assert summaries == 1, f"the error summary is drawn {summaries} times"


def test_the_counter_agrees_with_the_server(page, live_server, kari, gp):
    """The server counts characters of the trimmed text; the counter must not call acceptable text too long."""
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}/meldinger/ny/{gp.id}")
    body = page.get_by_label("Melding", exact=True)
    text = "x" * (MAX - 1) + "😀"  # 2000 characters: the server takes it
    body.fill(text + "\n")
    page.get_by_label("Annet").check()
    page.get_by_label("Overskrift").fill("Akkurat nok")
    hint = page.locator("#body-count")
    page.wait_for_timeout(600)
    said = hint.inner_text()
    page.get_by_role("button", name="Send meldingen").click()
    page.wait_for_url(re.compile(r"/meldinger/\d+\?ok=sendt$"))  # accepted
    assert said == f"{MAX} av {MAX} tegn", f"the counter said {said!r} for text the server accepts"


# --- 6. the team's side ------------------------------------------------------------------------------------


def test_the_team_takes_answers_from_a_template_and_closes(page, live_server, kari, gp, dr_aune, templates, phone):
    conversation = factories.conversation(
        kari, kari.person, gp, topic="prescription", subject="Resept på Albyl-E", body="Kan jeg få fornyet resepten?"
    )
    sign_in(page.context, live_server, dr_aune)
    page.goto(f"{live_server}/")
    page.get_by_role("navigation", name="Hovedmeny").get_by_role("link", name="Meldinger").click()
    page.wait_for_url(f"{live_server}/ansatt/meldinger")
    views = page.get_by_role("navigation", name="Visninger")
    assert views.get_by_role("link", name=re.compile("^Nye")).get_attribute("aria-current") == "page"
    assert views.get_by_role("link", name=re.compile("^Nye")).inner_text().split() == ["Nye", "1"]
    row = page.locator("main .item-row").filter(has_text="Resept på Albyl-E")
    assert "Kari Nordmann" in row.inner_text() and row.locator(".unread").text_content() == "Ulest"
    row.get_by_role("link").click()
    page.wait_for_url(f"{live_server}/ansatt/meldinger/{conversation.id}")
    assert page.get_by_role("heading", level=1).inner_text() == "Resept på Albyl-E"
    assert message_texts(page) == ["Kan jeg få fornyet resepten?"]
    assert "Ingen ennå" in page.locator("main").inner_text()

    page.get_by_role("button", name="Ta samtalen selv").click()
    page.wait_for_url(f"{live_server}/ansatt/meldinger/{conversation.id}?ok=tildelt")
    assert page.get_by_role("status").filter(has_text="Samtalen er tildelt.").is_visible()
    assert page.get_by_role("button", name="Ta samtalen selv").count() == 0
    assert "Hos\nDr. Siri Aune" in page.locator("main").inner_text()
    page.get_by_role("link", name="Meldinger – Lade legesenter team").click()
    page.wait_for_url(re.compile(r"/ansatt/meldinger\?enhet=\d+$"))
    assert page.get_by_text("Ingen nye meldinger.").is_visible()
    views.get_by_role("link", name=re.compile("^Mine")).click()
    page.wait_for_url(re.compile(r"visning=mine"))
    assert titles(page) == ["Resept på Albyl-E"]
    page.locator("main .item-row").get_by_role("link").click()
    page.wait_for_url(f"{live_server}/ansatt/meldinger/{conversation.id}")

    # A ready answer, sent with the conversation closed.
    page.get_by_label("Start fra en mal").select_option(label="Resept fornyet")
    page.get_by_role("button", name="Bruk malen").click()
    page.wait_for_url(f"{live_server}/ansatt/meldinger/{conversation.id}?mal={templates[0].id}")
    body = page.get_by_label("Melding", exact=True)
    expect(body).to_have_value(templates[0].body)
    body.press("Control+End")
    body.press_sequentially(" (Siri)", delay=10)
    page.get_by_label("Avslutt samtalen med dette svaret").check()
    page.get_by_role("button", name="Send svaret").click()
    page.wait_for_url(f"{live_server}/ansatt/meldinger/{conversation.id}?ok=avsluttet")
    assert page.get_by_role("status").filter(has_text="Samtalen er avsluttet.").is_visible()
    assert message_texts(page, "--team") == [templates[0].body + " (Siri)"]
    assert page.get_by_role("button", name="Send svaret").count() == 0
    db.session.expire_all()
    closed = db.session.get(Conversation, conversation.id)
    assert closed.state is ConversationState.CLOSED and closed.assigned_to_id == dr_aune.id

    # Kari reads it, closed, and starts a new one about it.
    kari_page = phone(kari, "kari")
    kari_page.goto(f"{live_server}/meldinger")
    row = kari_page.locator("main .item-row").filter(has_text="Resept på Albyl-E")
    assert row.locator(".unread").text_content() == "Nytt svar" and "Avsluttet" in row.inner_text()
    row.get_by_role("link").click()
    kari_page.wait_for_url(f"{live_server}/meldinger/{conversation.id}")
    assert message_texts(kari_page) == ["Kan jeg få fornyet resepten?", templates[0].body + " (Siri)"]
    assert "Status\nAvsluttet" in kari_page.locator("dl.facts").inner_text()
    assert kari_page.get_by_text("Samtalen er avsluttet. Du kan fortsatt lese den.").is_visible()
    assert kari_page.get_by_role("button", name="Send svaret").count() == 0
    assert kari_page.get_by_label("Melding", exact=True).count() == 0
    kari_page.get_by_role("link", name="Skriv en ny melding om dette").click()
    kari_page.wait_for_url(f"{live_server}/meldinger/ny/{gp.id}?om={conversation.id}")
    earlier = kari_page.get_by_label("Gjelder det en tidligere samtale?")
    expect(earlier).to_have_value(str(conversation.id))
    assert earlier.locator("option:checked").inner_text() == "Resept på Albyl-E (Lade legesenter team)"
    new_id = send(kari_page, live_server, gp, "Resepten igjen", "Apoteket finner den ikke.", topic="Fornye resept")
    assert db.session.get(Conversation, new_id).refers_to_id == conversation.id
    link = kari_page.locator("dl.facts").get_by_role("link", name="Resept på Albyl-E")
    assert link.get_attribute("href") == f"/meldinger/{conversation.id}"


# --- 7. axe, at 390 pixels and at 200 % zoom -----------------------------------------------------------------


@pytest.fixture
def scene(app, kari, gp, dr_aune):
    """Something on every page: a conversation with a photo, a PDF and an answer (open for replies), an
    unanswered one, one closed; a unit that takes no messages to choose among."""
    factories.gp_of(kari.person, factories.message_unit("Legevakten", accepts=False))
    photo = services.Upload("utslett.jpg", jpeg())
    answered = factories.conversation(
        kari, kari.person, gp, subject="Utslett på armen", body="Det klør.\nSe bildet.", uploads=[photo]
    )
    answer(
        app,
        dr_aune,
        answered,
        "Smør med fuktighetskrem. Her er et skriv om det.",
        uploads=[services.Upload("Råd.pdf", pdf())],
    )
    waiting = factories.conversation(kari, kari.person, gp, topic="practical", subject="Parkering ved kontoret")
    closed = factories.conversation(kari, kari.person, gp, topic="sick_note", subject="Sykmelding")
    answer(app, dr_aune, closed, "Sykmeldingen er sendt NAV.", close=True)
    return SimpleNamespace(answered=answered, waiting=waiting, closed=closed, unit=gp)


PATIENT_PAGES = {
    "messages": "/meldinger",
    "messages-choose": "/meldinger/ny",
    "messages-new": "/meldinger/ny/{unit}",
    "messages-conversation": "/meldinger/{answered}",
    "messages-waiting": "/meldinger/{waiting}",
    "messages-closed": "/meldinger/{closed}",
}
STAFF_PAGES = {
    "staff-inbox": "/ansatt/meldinger",
    "staff-inbox-waiting": "/ansatt/meldinger?visning=venter",
    "staff-conversation": "/ansatt/meldinger/{waiting}",
    "staff-conversation-answered": "/ansatt/meldinger/{answered}",
}


def _url(path: str, scene) -> str:  # type: ignore[no-untyped-def]
    return path.format(unit=scene.unit.id, answered=scene.answered.id, waiting=scene.waiting.id, closed=scene.closed.id)


@pytest.mark.parametrize("path", list(PATIENT_PAGES.values()), ids=list(PATIENT_PAGES))
def test_every_message_page_passes_axe_and_fits_the_phone(page, live_server, kari, scene, axe, path):
    sign_in(page.context, live_server, kari)
    response = page.goto(f"{live_server}{_url(path, scene)}")
    assert response.status == 200
    for img in page.locator("main img").all():  # a lazy preview is loaded before the picture is taken
        img.scroll_into_view_if_needed()
        expect(img).not_to_have_js_property("naturalWidth", 0)
    assert scroll_width(page) <= 390
    passes(page, axe, next(k for k, v in PATIENT_PAGES.items() if v == path))


@pytest.mark.parametrize("path", list(STAFF_PAGES.values()), ids=list(STAFF_PAGES))
def test_every_staff_message_page_passes_axe_and_fits_the_phone(
    page, live_server, dr_aune, templates, scene, axe, path
):
    sign_in(page.context, live_server, dr_aune)
    response = page.goto(f"{live_server}{_url(path, scene)}")
    assert response.status == 200
    assert scroll_width(page) <= 390
    name = next(k for k, v in STAFF_PAGES.items() if v == path)
    passes(page, axe, name)
    if name == "staff-conversation":
        shot(page, "staff-conversation")


def test_the_message_forms_with_errors_pass_axe(page, live_server, kari, dr_aune, templates, scene, phone, axe):
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}/meldinger/ny/{scene.unit.id}")
    page.get_by_role("button", name="Send meldingen").click()
    summary = page.locator(".error-summary").first
    expect(summary).to_be_visible()
    for words in ("Velg hva meldingen gjelder.", "Skriv en kort overskrift.", "Skriv meldingen før du sender den."):
        assert words in summary.inner_text()
    assert page.get_by_role("group", name="Hva gjelder det?").get_attribute("aria-describedby") == "topic-error"
    summary_lands(page)
    assert scroll_width(page) <= 390
    passes(page, axe, "messages-new-errors")

    page.goto(f"{live_server}/meldinger/{scene.waiting.id}")
    page.get_by_role("button", name="Send svaret").click()
    expect(page.locator(".error-summary").first).to_contain_text("Skriv meldingen før du sender den.")
    summary_lands(page)
    passes(page, axe, "messages-reply-errors")

    doctor = phone(dr_aune, "aune")
    doctor.goto(f"{live_server}/ansatt/meldinger/{scene.waiting.id}")
    doctor.get_by_role("button", name="Send svaret").click()
    expect(doctor.locator(".error-summary").first).to_contain_text("Skriv meldingen før du sender den.")
    summary_lands(doctor)
    passes(doctor, axe, "staff-reply-errors")

    # One summary on each: the layout (base.html) draws it, and the page must not draw it again.
    # (axe files the doubled id="error-summary-title" under "needs review", so passes() lets it by.)
    drawn = {}
    page.goto(f"{live_server}/meldinger/ny/{scene.unit.id}")
    page.get_by_role("button", name="Send meldingen").click()
    page.locator(".error-summary").first.wait_for()
    drawn["messages/new.html"] = page.locator(".error-summary").count()
    page.goto(f"{live_server}/meldinger/{scene.waiting.id}")
    page.get_by_role("button", name="Send svaret").click()
    page.locator(".error-summary").first.wait_for()
    drawn["messages/conversation.html"] = page.locator(".error-summary").count()
    drawn["messages/staff/conversation.html"] = doctor.locator(".error-summary").count()
    assert drawn == dict.fromkeys(drawn, 1), f"error summaries drawn: {drawn}"


# --- 8. the keyboard alone -----------------------------------------------------------------------------------


def focused_label(page) -> str:  # type: ignore[no-untyped-def]
    """The focused field's label, or the focused element's text."""
    return page.evaluate(
        """(() => { const e = document.activeElement;
                    if (!e) return '';
                    if (e.labels && e.labels.length) return e.labels[0].innerText.trim();
                    return e.innerText.trim(); })()"""
    )


def tab_to_field(page, label: str, presses: int = 40) -> None:  # type: ignore[no-untyped-def]
    seen = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        seen.append(focused_label(page))
        if seen[-1] == label:
            return
    raise AssertionError(f"Tab never reached {label!r}; it went through {seen}")


def test_the_keyboard_alone_writes_a_message(page, live_server, kari, gp):
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}/meldinger")
    tab_to(page, "Skriv ny melding")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server}/meldinger/ny")
    tab_to(page, re.compile("^Lade legesenter\nFastlegekontoret ditt"))
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server}/meldinger/ny/{gp.id}")

    tab_to_field(page, "Spørsmål om behandling")  # the group is one stop, at its first choice
    page.keyboard.press("Space")
    assert page.get_by_label("Spørsmål om behandling").is_checked()
    page.keyboard.press("ArrowDown")  # the arrows move the choice
    assert page.get_by_label("Fornye resept").is_checked()
    page.keyboard.press("Tab")
    assert focused_label(page) == "Overskrift"
    page.keyboard.type("Ny resept")
    page.keyboard.press("Tab")
    assert focused_label(page) == "Melding"
    page.keyboard.type("Hei!")
    page.keyboard.press("Enter")  # a new line in the text, not a send
    page.keyboard.type("Kan jeg få fornyet resepten på Albyl-E?")
    assert urlsplit(page.url).path == f"/meldinger/ny/{gp.id}"
    tab_to(page, "Send meldingen")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/meldinger/\d+\?ok=sendt$"))
    assert focused_text(page).startswith("Meldingen er sendt.")
    conversation = db.session.scalars(select(Conversation)).one()
    assert conversation.topic is Topic.PRESCRIPTION and conversation.subject == "Ny resept"
    assert conversation.messages[0].body == "Hei!\nKan jeg få fornyet resepten på Albyl-E?"
    assert message_texts(page) == ["Hei!\nKan jeg få fornyet resepten på Albyl-E?"]
