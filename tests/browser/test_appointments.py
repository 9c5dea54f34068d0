"""Appointments in a real phone-sized browser: Kari books a time, takes an earlier one she is
offered, cancels one; a clerk runs the unit's day list; and every page passes axe at 390 pixels
and at 200 % zoom, scrolls no sideways, and works without JavaScript.

The browser is logged in with a server-side session and its cookie, as a finished login leaves it
(``sign_in``). The server runs in this process, on the same database: what a test writes with the
factories and commits, the browser sees.
"""

from __future__ import annotations

import re
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from babel.dates import format_datetime
from playwright.sync_api import expect
from sqlalchemy import func, select

from app import clock
from app.appointments import services
from app.appointments.models import Appointment, AppointmentStatus, Channel, Offer, OfferState, Schedule, Slot
from app.appointments.offers import answer_time_starts
from app.auth.models import Role
from app.db import db
from app.notify.models import Event
from tests import factories
from tests.browser.conftest import PHONE
from tests.browser.test_record import new_context, overflowing, sign_in, watch_csp

pytestmark = pytest.mark.browser
SHOTS = Path(tempfile.gettempdir()) / "shots-browser"  # /tmp/shots-browser: pictures to look at, not kept
ZOOM = {"width": PHONE["width"] // 2, "height": PHONE["height"] // 2}  # this phone at 200 % zoom
PHONE_NUMBER = "73 86 00 00"  # the place's, from factories.clinic
TIMES = 25  # free times to book from: more than one page of 20


# --- helpers ----------------------------------------------------------------------------------------


def hhmm(moment: datetime) -> str:
    return moment.astimezone(clock.NORWAY).strftime("%H:%M")


def when(moment: datetime, *, year: bool = True) -> str:
    """A time as the pages write it: "mandag 30. november 2026 kl. 14:00" (or without the year)."""
    pattern = "EEEE d. MMMM y 'kl.' HH:mm" if year else "EEEE d. MMMM 'kl.' HH:mm"
    return format_datetime(moment, pattern, tzinfo=clock.NORWAY, locale="nb")


def notice(page):  # type: ignore[no-untyped-def]
    """The page's message (the empty live region is a status too)."""
    return page.locator("main").get_by_role("status")


def scroll_width(page) -> int:  # type: ignore[no-untyped-def]
    return page.evaluate("document.documentElement.scrollWidth")


def full_length(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """The whole page on a phone as tall as the page (a full_page screenshot would draw the fixed tab
    bar where the screen ends, over the middle of the page)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    page.set_viewport_size(
        {"width": size["width"], "height": max(size["height"], page.evaluate("document.body.scrollHeight"))}
    )
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    page.set_viewport_size(size)


def passes(page, axe, name: str) -> None:  # type: ignore[no-untyped-def]
    """axe finds nothing and the page does not scroll sideways, at 390 pixels and at 200 % zoom (a
    table may scroll inside its .table-wrap, never the page). A picture of each goes to SHOTS."""
    size = page.viewport_size
    for label, viewport in (("", size), ("-zoom-200", ZOOM)):
        page.set_viewport_size(viewport)
        assert axe(page) == [], f"{name}{label}"
        assert scroll_width(page) <= viewport["width"], (f"{name}{label}", overflowing(page))
        full_length(page, f"{name}{label}")
    page.set_viewport_size(size)


def summary_lands(page) -> None:  # type: ignore[no-untyped-def]
    """Every link of the error summary leads to something on the page."""
    targets = page.eval_on_selector_all(
        ".error-summary a",
        "as => as.map((a) => [a.getAttribute('href'), !!document.querySelector(a.getAttribute('href'))])",
    )
    assert targets and all(found for _href, found in targets), targets


def one_line_tabs(page) -> list[str]:  # type: ignore[no-untyped-def]
    """The tab bar's labels that break over two lines."""
    return page.eval_on_selector_all(
        ".tabbar a span",
        """spans => spans.filter((s) => { const r = document.createRange(); r.selectNodeContents(s);
                                         return r.getClientRects().length > 1; }).map((s) => s.textContent)""",
    )


def tab_to(page, name: str | re.Pattern, presses: int = 60) -> None:  # type: ignore[type-arg]
    """Press Tab until the focused element's text is ``name`` (or matches it)."""
    seen = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        text = page.evaluate("document.activeElement ? document.activeElement.innerText.trim() : ''")
        seen.append(text)
        if name.search(text) if isinstance(name, re.Pattern) else text == name:
            return
    raise AssertionError(f"Tab never reached {name!r}; it went through {seen}")


def focused_text(page) -> str:  # type: ignore[no-untyped-def]
    return page.evaluate("document.activeElement.innerText.trim()")


def slot_ids(page, scope: str = "main") -> list[int]:  # type: ignore[no-untyped-def]
    hrefs = page.eval_on_selector_all(
        f"{scope} a[href*='/timer/bestill/tid/']", "as => as.map((a) => a.getAttribute('href'))"
    )
    return [int(h.rsplit("/", 1)[1]) for h in hrefs]


def release(appointment: Appointment, reason: str | None = None) -> None:
    """Someone cancels a time, as the app does: the slot is freed and offered to those waiting."""
    services._release(appointment, clock.utcnow(), via=Channel.PATIENT, viewer=None, reason=reason)
    db.session.commit()


def offers_to(person) -> list[Offer]:  # type: ignore[no-untyped-def]
    return list(db.session.scalars(select(Offer).where(Offer.person_id == person.id).order_by(Offer.id)))


def soon(c, hours: float):  # type: ignore[no-untyped-def]
    """A time ``hours`` from now (past the cancel cut-off when that is under 24), booked by nobody yet."""
    s = factories.slot(c, days=1)
    s.start = (clock.utcnow() + timedelta(hours=hours)).replace(second=0, microsecond=0)
    db.session.commit()
    return s


# --- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture
def hearing(org):
    """St. Olavs hospital's hearing clinic: "Service på høreapparat", 30 minutes, free, bookable."""
    return factories.clinic(org)


@pytest.fixture
def free_times(hearing):
    """25 free times over the coming weeks, made in no particular order; returned soonest first."""
    made = [factories.slot(hearing, days=2 + (i * 7) % TIMES, hour=9 + i % 3 * 2) for i in range(TIMES)]
    return sorted(made, key=lambda s: (s.start, s.id))


@pytest.fixture
def clerk(org):
    """Lise Berg, a clerk at the hospital's clinic."""
    user = factories.staff("lise.berg", "Lise Berg", role=Role.CLERK)
    factories.works_at(user, org)
    return user


# --- 1. booking ------------------------------------------------------------------------------------------


def test_kari_books_a_time_on_her_phone(page, live_server, kari, hearing, free_times, axe):
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}/")
    next_times = page.get_by_role("region", name="Neste timer")
    assert next_times.get_by_text("Ingen kommende timer").is_visible()

    page.get_by_role("navigation", name="Hovedmeny").get_by_role("link", name="Timer").click()
    page.wait_for_url(f"{live_server}/timer")
    assert page.get_by_role("heading", level=1).inner_text() == "Timer"
    page.get_by_role("link", name="Bestill time").click()
    page.wait_for_url(f"{live_server}/timer/bestill")
    assert page.get_by_role("heading", level=1).inner_text() == "Bestill time"
    page.get_by_role("link", name=re.compile("^Service på høreapparat")).click()
    page.wait_for_url(f"{live_server}/timer/bestill/{hearing.visit_type.id}")
    assert page.get_by_role("heading", level=1).inner_text() == "Service på høreapparat"

    # The first 20, soonest first; "Vis flere tider" brings the rest into the same list, in place.
    times = page.get_by_role("region", name="Ledige tider, de første først")
    assert slot_ids(page) == [s.id for s in free_times[:20]]
    with page.expect_response(re.compile(r"/timer/bestill/\d+\?etter=")) as answer:
        times.get_by_role("link", name="Vis flere tider").click()
    assert answer.value.request.headers.get("hx-request") == "true"
    expect(page.locator("main a[href*='/timer/bestill/tid/']")).to_have_count(TIMES)  # no eval under the CSP
    assert page.url == f"{live_server}/timer/bestill/{hearing.visit_type.id}"  # no navigation
    assert slot_ids(page) == [s.id for s in free_times]
    assert times.get_by_role("link", name="Vis flere tider").count() == 0  # nothing more to show
    assert page.evaluate("document.querySelectorAll('[id]').length") == page.evaluate(
        "new Set([...document.querySelectorAll('[id]')].map((e) => e.id)).size"
    ), "an id is used twice after loading more times"
    passes(page, axe, "book-time-all")

    # The soonest time: its details, then book it.
    first = free_times[0]
    times.get_by_role("link").first.click()
    page.wait_for_url(f"{live_server}/timer/bestill/tid/{first.id}")
    assert page.get_by_role("heading", level=1).inner_text() == "Bekreft timen"
    facts = page.locator("dl.facts").inner_text()
    for words in ("Service på høreapparat", "St. Olavs hospital", "Audiograf Siri Moe", "Hørselssentralen", "Gratis"):
        assert words in facts
    assert f"kl. {hhmm(first.start)}" in facts
    page.get_by_role("button", name="Bestill timen").click()
    page.wait_for_url(re.compile(rf"{live_server}/timer/\d+\?ok=bestilt$"))
    booked = db.session.scalar(select(Appointment).where(Appointment.person_id == kari.person.id))
    assert booked.slot_id == first.id and booked.status is AppointmentStatus.BOOKED
    assert booked.booked_via is Channel.PATIENT
    assert page.url == f"{live_server}/timer/{booked.id}?ok=bestilt"
    notice = page.get_by_role("status").filter(has_text="Timen er bestilt")
    assert notice.inner_text() == "Timen er bestilt. Du finner den under Timer."
    assert notice.evaluate("el => el === document.activeElement")  # a screen reader hears it first
    assert page.get_by_role("heading", level=1).inner_text() == "Service på høreapparat"
    passes(page, axe, "detail-booked")

    # The overview's "Neste timer" and the Timer tab both have it.
    page.get_by_role("navigation", name="Hovedmeny").get_by_role("link", name="Oversikt").click()
    page.wait_for_url(f"{live_server}/")
    link = page.get_by_role("region", name="Neste timer").locator(f"a[href='/timer/{booked.id}']")
    assert link.is_visible()
    assert "Service på høreapparat" in link.inner_text() and f"kl. {hhmm(first.start)}" in link.inner_text()
    page.goto(f"{live_server}/timer")
    upcoming = page.get_by_role("region", name="Kommende timer")
    assert upcoming.locator(f"a[href='/timer/{booked.id}']").is_visible()


def test_the_keyboard_alone_books_a_time(page, live_server, kari, hearing, free_times):
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}/timer")
    tab_to(page, "Bestill time")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server}/timer/bestill")
    tab_to(page, re.compile("^Service på høreapparat"))
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server}/timer/bestill/{hearing.visit_type.id}")

    # "Vis flere tider" by keyboard: the next times come, and focus goes to the first of them.
    tab_to(page, "Vis flere tider")
    with page.expect_response(re.compile(r"\?etter=")):
        page.keyboard.press("Enter")
    expect(page.locator("main a[href*='/timer/bestill/tid/']")).to_have_count(TIMES)  # no eval under the CSP
    twenty_first = free_times[20]
    expect(page.locator("main a:focus")).to_have_count(1)
    assert page.evaluate("document.activeElement.getAttribute('href')") == f"/timer/bestill/tid/{twenty_first.id}"

    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server}/timer/bestill/tid/{twenty_first.id}")
    tab_to(page, "Bestill timen")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/timer/\d+\?ok=bestilt$"))
    assert focused_text(page) == "Timen er bestilt. Du finner den under Timer."
    booked = db.session.scalar(select(Appointment).where(Appointment.person_id == kari.person.id))
    assert booked.slot_id == twenty_first.id


def test_a_time_someone_else_just_took_says_so_and_changes_nothing(page, live_server, kari, per, hearing, axe):
    wanted = factories.slot(hearing, days=3, hour=10)
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}/timer/bestill/tid/{wanted.id}")
    factories.booked(per.person, wanted)  # Per was quicker
    page.get_by_role("button", name="Bestill timen").click()
    error = page.get_by_role("alert").filter(has_text="Noen andre har nettopp fått den timen")
    assert error.is_visible()
    assert error.evaluate("el => el === document.activeElement")
    assert page.get_by_role("button", name="Bestill timen").count() == 0
    assert page.get_by_role("link", name="Velg en annen tid").is_visible()
    assert db.session.scalar(select(Appointment).where(Appointment.person_id == kari.person.id)) is None
    passes(page, axe, "confirm-taken")


# --- 2. an earlier time ------------------------------------------------------------------------------------


@pytest.fixture
def offered(kari, per, hearing):
    """Kari has a time in 30 days and wants an earlier one; Per cancels his in 5 days: Kari is offered it."""
    mine = factories.booked(kari.person, factories.slot(hearing, days=30, hour=10))
    factories.waiting(mine)
    pers = factories.booked(per.person, factories.slot(hearing, days=5, hour=13))
    release(pers)
    (offer,) = offers_to(kari.person)
    assert offer.state is OfferState.OPEN
    now = clock.utcnow()
    if answer_time_starts(now) > now:
        # Run at night: the answer time starts in the morning (tests/test_offers.py). These pages
        # are about showing an offer's two hours, so give it the daytime's.
        offer.expires_at = offer.slot.offered_until = now + timedelta(hours=2)
        db.session.commit()
    assert offer.expires_at - now > timedelta(minutes=119)  # two hours to answer
    return SimpleNamespace(mine=mine, pers=pers, offer=offer, slot=pers.slot)


def test_kari_is_offered_an_earlier_time_and_takes_it(page, live_server, kari, offered, axe):
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}/timer")
    region = page.get_by_role("region", name="Du kan få en tidligere time")
    assert region.is_visible()
    row = region.locator(f"a[href='/timer/tilbud/{offered.offer.id}']")
    text = " ".join(row.inner_text().split())
    assert text.startswith("Service på høreapparat: ")
    assert f"kl. {hhmm(offered.slot.start)}" in text
    assert f"I stedet for {when(offered.mine.start, year=False)}" in text
    countdown = re.search(r"Svar innen kl\. (\d\d:\d\d) \((\d) t (\d+) min igjen\)", text)
    assert countdown, text
    assert countdown.group(1) == hhmm(offered.offer.expires_at)
    assert (countdown.group(2), countdown.group(3)) in {("1", "59"), ("2", "0")}
    passes(page, axe, "timer-with-offer")

    row.click()
    page.wait_for_url(f"{live_server}/timer/tilbud/{offered.offer.id}")
    assert page.get_by_role("heading", level=1).inner_text() == "Tilbud om tidligere time"
    facts = page.locator("dl.facts").inner_text()
    assert f"kl. {hhmm(offered.slot.start)}" in facts and f"kl. {hhmm(offered.mine.start)}" in facts
    assert re.search(r"Svar innen kl\. \d\d:\d\d \(1 t 59 min igjen\)", page.locator(".notice--warning").inner_text())
    passes(page, axe, "offer")

    page.get_by_role("button", name="Ja, gi meg den nye tiden").click()
    page.wait_for_url(re.compile(rf"{live_server}/timer/\d+\?ok=tilbud$"))
    new = db.session.scalar(
        select(Appointment).where(Appointment.person_id == kari.person.id, Appointment.slot_id == offered.slot.id)
    )
    assert page.url == f"{live_server}/timer/{new.id}?ok=tilbud"
    assert new.booked_via is Channel.OFFER and new.status is AppointmentStatus.BOOKED
    notice = page.get_by_role("status").filter(has_text="Du har fått den tidligere timen")
    assert notice.inner_text() == "Du har fått den tidligere timen. Den gamle timen er avbestilt."
    assert f"kl. {hhmm(offered.slot.start)}" in page.locator("dl.facts").inner_text()
    db.session.refresh(offered.mine)
    assert offered.mine.status is AppointmentStatus.CANCELLED and offered.mine.replaced_by_id == new.id
    passes(page, axe, "detail-earlier-time")

    # Back on the Timer page: no offer any more, the new time is the coming one.
    page.goto(f"{live_server}/timer")
    assert page.get_by_role("region", name="Du kan få en tidligere time").count() == 0
    assert page.get_by_role("region", name="Kommende timer").locator(f"a[href='/timer/{new.id}']").is_visible()


def test_the_countdown_keeps_time_while_the_page_stays_open(page, live_server, kari, offered):
    expires = offered.offer.expires_at
    page.clock.install(time=clock.utcnow())
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}/timer/tilbud/{offered.offer.id}")
    box = page.locator("[data-countdown]")
    left = box.locator("[data-countdown-left]")
    assert datetime.fromisoformat(box.get_attribute("data-countdown")) == expires
    assert box.get_attribute("data-countdown-hours") == "{h} t {m} min igjen"
    assert box.get_attribute("data-countdown-minutes") == "{m} min igjen"
    assert box.get_attribute("data-countdown-ended") == "Tilbudet har gått ut."
    assert left.inner_text() in {"1 t 59 min igjen", "2 t 0 min igjen"}

    # Ten minutes on (varde.js ticks once a minute): the text follows.
    page.clock.fast_forward("10:00")
    assert left.inner_text() in {"1 t 49 min igjen", "1 t 50 min igjen"}
    assert box.inner_text().startswith(f"Svar innen kl. {hhmm(expires)}")  # the time itself stays
    # Under an hour left: minutes only.
    page.clock.set_system_time(expires - timedelta(minutes=42, seconds=30))
    page.clock.run_for(60_000)
    assert left.inner_text() == "41 min igjen"
    # Past the deadline: the offer has ended (the server says so too when she answers).
    page.clock.set_system_time(expires + timedelta(seconds=5))
    page.clock.run_for(60_000)
    assert left.inner_text() == "Tilbudet har gått ut."


def test_kari_says_no_and_keeps_her_time(page, live_server, kari, offered):
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}/timer/tilbud/{offered.offer.id}")
    page.get_by_role("button", name="Nei takk, behold timen min").click()
    page.wait_for_url(f"{live_server}/timer?ok=nei")
    assert page.get_by_role("status").filter(has_text="Du takket nei. Du beholder timen du har.").is_visible()
    assert page.get_by_role("region", name="Du kan få en tidligere time").count() == 0
    assert page.get_by_role("region", name="Kommende timer").locator(f"a[href='/timer/{offered.mine.id}']").is_visible()


# --- 3. cancelling, moving, asking for an earlier time ---------------------------------------------------


def test_kari_cancels_before_the_cut_off(page, live_server, kari, hearing, axe):
    mine = factories.booked(kari.person, factories.slot(hearing, days=10, hour=10))
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}/timer")
    page.get_by_role("region", name="Kommende timer").locator(f"a[href='/timer/{mine.id}']").click()
    page.wait_for_url(f"{live_server}/timer/{mine.id}")
    actions = page.get_by_role("region", name="Hva vil du gjøre?")
    assert "Du kan avbestille eller flytte timen her fram til" in actions.inner_text()
    actions.get_by_role("link", name="Avbestill timen").click()
    page.wait_for_url(f"{live_server}/timer/{mine.id}/avbestill")
    assert page.get_by_role("heading", level=1).inner_text() == "Avbestill timen"
    assert page.get_by_text("Timen blir ledig for andre som venter.").is_visible()
    passes(page, axe, "cancel")
    page.get_by_role("button", name="Avbestill timen").click()
    page.wait_for_url(f"{live_server}/timer?ok=avbestilt")
    notice = page.get_by_role("status").filter(has_text="Timen er avbestilt.")
    assert notice.is_visible() and notice.evaluate("el => el === document.activeElement")
    assert page.get_by_role("region", name="Kommende timer").get_by_text("Ingen kommende timer").is_visible()
    past = page.get_by_role("region", name="Tidligere og avbestilte timer").locator(f"a[href='/timer/{mine.id}']")
    assert "Avbestilt" in past.inner_text()
    db.session.refresh(mine)
    assert mine.status is AppointmentStatus.CANCELLED and mine.cancelled_via is Channel.PATIENT
    passes(page, axe, "timer-after-cancel")


def test_after_the_cut_off_the_page_says_whom_to_call(page, live_server, kari, hearing, axe):
    late = factories.booked(kari.person, soon(hearing, hours=5))
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}/timer/{late.id}")
    actions = page.get_by_role("region", name="Hva vil du gjøre?")
    assert (
        actions.locator(".notice").inner_text()
        == f"Det er for sent å endre timen her. Må du avbestille, ring {PHONE_NUMBER}."
    )
    assert actions.get_by_role("link", name="Avbestill timen").count() == 0
    assert actions.get_by_role("link", name="Flytt timen").count() == 0
    assert actions.get_by_role("link", name="Legg til i kalenderen").is_visible()
    call = page.get_by_role("link", name=PHONE_NUMBER)
    assert call.get_attribute("href") == "tel:73860000"
    passes(page, axe, "detail-after-cut-off")

    # The cancel page, reached by its address, says the same and offers no button.
    page.goto(f"{live_server}/timer/{late.id}/avbestill")
    assert page.locator("main .notice").inner_text() == f"Det er for sent å avbestille her. Ring {PHONE_NUMBER}."
    assert page.get_by_role("button", name="Avbestill timen").count() == 0
    passes(page, axe, "cancel-after-cut-off")


def test_kari_moves_her_time(page, live_server, kari, hearing, axe):
    mine = factories.booked(kari.person, factories.slot(hearing, days=10, hour=10))
    other = [factories.slot(hearing, days=d, hour=14) for d in (4, 6)]
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}/timer/{mine.id}")
    page.get_by_role("link", name="Flytt timen").click()
    page.wait_for_url(f"{live_server}/timer/{mine.id}/flytt")
    choices = page.get_by_role("group", name="Velg ny tid").get_by_role("radio")
    assert choices.count() == 2
    passes(page, axe, "move")
    page.get_by_role("group", name="Velg ny tid").get_by_label(when(other[1].start), exact=False).check()
    page.get_by_role("button", name="Flytt til valgt tid").click()
    page.wait_for_url(re.compile(r"/timer/\d+\?ok=flyttet$"))
    assert notice(page).inner_text() == "Timen er flyttet. Den gamle timen er avbestilt."
    moved = db.session.scalar(select(Appointment).where(Appointment.slot_id == other[1].id))
    assert page.url.endswith(f"/timer/{moved.id}?ok=flyttet")


def test_kari_asks_for_an_earlier_time_and_fixes_her_mistakes(page, live_server, kari, hearing, axe):
    mine = factories.booked(kari.person, factories.slot(hearing, days=30, hour=10))
    sign_in(page.context, live_server, kari)
    page.goto(f"{live_server}/timer/{mine.id}")
    page.get_by_role("link", name="Jeg vil ha en tidligere time").click()
    page.wait_for_url(f"{live_server}/timer/{mine.id}/tidligere")
    days = page.get_by_role("group", name="Dager du kan komme")
    assert [days.get_by_label(d).is_checked() for d in ("mandag", "fredag", "lørdag")] == [True, True, False]
    passes(page, axe, "earlier")

    # No day, and "til" before "fra": both are said, at the top and at each field.
    for day in ("mandag", "tirsdag", "onsdag", "torsdag", "fredag"):
        days.get_by_label(day).uncheck()
    page.get_by_label("Fra klokken").fill("15:00")
    page.get_by_label("Til klokken").fill("09:00")
    page.get_by_role("button", name="Sett meg på listen").click()
    summary = page.get_by_role("alert").filter(has_text="Det er et problem")
    summary.wait_for()
    assert page.title().startswith("Feil: ")
    assert summary.evaluate("el => el === document.activeElement")
    assert summary.get_by_role("link").all_inner_texts() == [
        "Velg minst én dag du kan komme.",
        "«Til klokken» må være senere enn «fra klokken».",
    ]
    assert page.get_by_label("Til klokken").get_attribute("aria-invalid") == "true"
    summary_lands(page)
    passes(page, axe, "earlier-errors")
    summary.get_by_role("link", name="Velg minst én dag du kan komme.").click()
    assert days.get_by_label("mandag").evaluate("el => el === document.activeElement")  # ready to tick
    assert days.get_attribute("aria-describedby") == "days-error"

    days.get_by_label("tirsdag").check()
    days.get_by_label("torsdag").check()
    page.get_by_label("Til klokken").fill("18:00")
    page.get_by_label("Hvor kort varsel kan du ta?").select_option(label="6 timer")
    page.get_by_role("button", name="Sett meg på listen").click()
    page.wait_for_url(f"{live_server}/timer/{mine.id}?ok=venter")
    assert notice(page).inner_text() == "Ønsket ditt om tidligere time er lagret."
    assert page.get_by_text("Du står på listen for tidligere time.").is_visible()
    entry = services.waiting_entry(mine)
    assert entry.weekdays == 0b0001010 and entry.notice_hours == 6
    assert page.get_by_role("link", name="Endre ønsket om tidligere time").is_visible()


# --- 4. the staff console ------------------------------------------------------------------------------------


@pytest.fixture
def unit_day(kari, per, ingrid, hearing):
    """Tomorrow at the clinic: Per at 10:00 and Ingrid at 11:00; Kari waits for an earlier time than hers."""
    pers = factories.booked(per.person, factories.slot(hearing, days=1, hour=10))
    ingrids = factories.booked(ingrid.person, factories.slot(hearing, days=1, hour=11))
    karis = factories.booked(kari.person, factories.slot(hearing, days=30, hour=10))
    factories.waiting(karis, since_days=3)
    return SimpleNamespace(per=pers, ingrid=ingrids, kari=karis)


def test_a_clerk_cancels_for_a_patient_and_reads_the_offer_log(page, live_server, clerk, per, unit_day, axe):
    sign_in(page.context, live_server, clerk)
    page.goto(f"{live_server}/")
    page.get_by_role("navigation", name="Hovedmeny").get_by_role("link", name="Timer").click()
    page.wait_for_url(f"{live_server}/ansatt/timer")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Timeliste ")
    assert page.get_by_text("Ingen timer denne dagen.").is_visible() or page.locator("main table").count() == 1
    page.get_by_role("navigation", name="Velg dag").get_by_role("link", name="Neste dag").click()
    page.wait_for_url(re.compile(r"/ansatt/timer\?enhet=\d+&dato=\d{4}-\d\d-\d\d$"))
    table = page.get_by_role("table", name="Timer denne dagen")
    assert [r.split("\t")[:2] for r in table.locator("tbody tr").all_inner_texts()] == [
        ["10:00", "Per Hansen"],
        ["11:00", "Ingrid Nordmann"],
    ]
    passes(page, axe, "staff-day")

    page.get_by_role("link", name="Avbestill – Per Hansen").click()
    page.wait_for_url(f"{live_server}/ansatt/timer/{unit_day.per.id}/avbestill")
    assert page.get_by_role("heading", level=1).inner_text() == "Avbestill for pasienten"
    assert "Per Hansen" in page.locator("dl.facts").inner_text()
    passes(page, axe, "staff-cancel")
    page.get_by_role("button", name="Avbestill timen").click()  # no reason yet
    summary = page.get_by_role("alert").filter(has_text="Det er et problem")
    summary.wait_for()
    assert "Skriv hvorfor timen avbestilles. Pasienten får beskjed." in summary.inner_text()
    assert page.get_by_label("Hvorfor avbestilles timen?").get_attribute("aria-invalid") == "true"
    summary_lands(page)
    passes(page, axe, "staff-cancel-errors")
    page.get_by_label("Hvorfor avbestilles timen?").fill("Audiografen er syk")
    page.get_by_role("button", name="Avbestill timen").click()
    page.wait_for_url(re.compile(r"/ansatt/timer\?enhet=\d+&dato=[\d-]+&ok=avbestilt$"))
    notice = page.get_by_role("status").filter(has_text="Timen er avbestilt.")
    assert notice.inner_text() == ("Timen er avbestilt. Pasienten har fått beskjed, og tiden tilbys dem som venter.")
    per_row = table.locator("tbody tr").filter(has_text="Per Hansen")
    assert "Avbestilt" in per_row.inner_text()
    assert per_row.get_by_role("link", name=re.compile("^Avbestill")).count() == 0
    db.session.refresh(unit_day.per)
    assert unit_day.per.status is AppointmentStatus.CANCELLED
    assert unit_day.per.cancel_reason == "Audiografen er syk" and unit_day.per.cancelled_via is Channel.STAFF
    assert db.session.scalar(select(Event).where(Event.person_id == per.person.id, Event.kind == "appointment_changed"))

    # The freed time went to Kari, who waits for an earlier one: the offer log says so.
    per_row.get_by_role("link", name=re.compile("^Tilbudslogg")).click()
    page.wait_for_url(f"{live_server}/ansatt/timer/tid/{unit_day.per.slot_id}/tilbud")
    assert page.get_by_role("heading", level=1).inner_text() == "Tilbudslogg"
    rows = page.locator("main table tbody tr")
    assert rows.count() == 1
    cells = rows.first.locator("td").all_inner_texts()
    assert cells[0] == "1.1" and cells[1] == "Kari Nordmann" and cells[4] == "venter på svar"
    passes(page, axe, "staff-offer-log")


def test_a_clerk_sets_a_priority_and_reads_the_schedules(page, live_server, clerk, hearing, unit_day, axe):
    sign_in(page.context, live_server, clerk)
    page.goto(f"{live_server}/ansatt/timer")
    units = page.get_by_role("navigation", name="Timer for enheten")
    units.get_by_role("link", name="Venteliste").click()
    page.wait_for_url(re.compile(r"/ansatt/timer/venteliste\?enhet=\d+$"))
    assert units.get_by_role("link", name="Venteliste").get_attribute("aria-current") == "page"
    assert page.locator("main table tbody tr").count() == 1
    passes(page, axe, "staff-waitlist")
    page.get_by_label("Prioritet for Kari Nordmann").fill("3")
    page.get_by_role("button", name="Lagre – Kari Nordmann").click()
    page.wait_for_url(re.compile(r"ok=prioritet$"))
    assert page.get_by_role("status").filter(has_text="Prioriteten er lagret.").is_visible()
    assert services.waiting_entry(unit_day.kari).priority == 3

    units.get_by_role("link", name="Kalendere").click()
    page.wait_for_url(re.compile(r"/ansatt/timer/kalendere\?enhet=\d+$"))
    passes(page, axe, "staff-schedules")
    page.get_by_role("link", name=re.compile("^Audiograf 1 – Audiograf Siri Moe mandag 06:00–22:00")).click()
    page.wait_for_url(f"{live_server}/ansatt/timer/kalendere/{hearing.schedule.id}")
    assert page.get_by_role("heading", level=1).inner_text() == "Audiograf 1"
    assert page.locator("main table tbody tr").count() == 3  # Per's, Ingrid's and Kari's
    passes(page, axe, "staff-slots")


# --- 5. every page: axe at 390 pixels and at 200 % zoom, no sideways scrolling ------------------------------


@pytest.fixture
def scene(kari, per, ingrid, clerk, hearing):
    """Something on every page: Kari has a time to change, a time past its cut-off, a past one, a cancelled
    one, a wish for an earlier time and an open offer; there are free times; the clinic has a day's list
    with a time that has begun (Møtt / Ikke møtt) and ones to come."""
    mine = factories.booked(kari.person, factories.slot(hearing, days=30, hour=10))
    factories.waiting(mine)
    late = factories.booked(kari.person, soon(hearing, hours=6))
    factories.booked(kari.person, factories.slot(hearing, days=-40, hour=9))  # over
    gone = factories.booked(kari.person, factories.slot(hearing, days=-10, hour=9))
    gone.status, gone.cancel_reason = AppointmentStatus.CANCELLED, "Avlyst av stedet"
    free = [factories.slot(hearing, days=d, hour=h) for d in (3, 4, 8) for h in (9, 13)]
    pers = factories.booked(per.person, factories.slot(hearing, days=5, hour=13))
    release(pers, "Per er bortreist")
    (offer,) = offers_to(kari.person)
    started = soon(hearing, hours=-1)
    started.start = max(started.start, factories.local_time(0, 0))  # today, begun
    factories.booked(ingrid.person, started)
    tomorrow = factories.booked(ingrid.person, factories.slot(hearing, days=1, hour=11))
    db.session.commit()
    return SimpleNamespace(mine=mine, late=late, free=free, offer=offer, pers=pers, tomorrow=tomorrow)


PATIENT_PAGES = {
    "overview": "/",
    "timer": "/timer",
    "detail": "/timer/{mine}",
    "detail-late": "/timer/{late}",
    "cancel": "/timer/{mine}/avbestill",
    "move": "/timer/{mine}/flytt",
    "earlier": "/timer/{mine}/tidligere",
    "book-type": "/timer/bestill",
    "book-time": "/timer/bestill/{visit_type}",
    "confirm": "/timer/bestill/tid/{free}",
    "offer": "/timer/tilbud/{offer}",
}
STAFF_PAGES = {
    "staff-today": "/ansatt/timer",
    "staff-tomorrow": "/ansatt/timer?enhet={unit}&dato={tomorrow}",
    "staff-cancel": "/ansatt/timer/{ingrid}/avbestill",
    "staff-schedules": "/ansatt/timer/kalendere",
    "staff-slots": "/ansatt/timer/kalendere/{schedule}",
    "staff-waitlist": "/ansatt/timer/venteliste",
    "staff-offer-log": "/ansatt/timer/tid/{offered_slot}/tilbud",
}


def _url(path: str, scene, hearing) -> str:  # type: ignore[no-untyped-def]
    return path.format(
        mine=scene.mine.id,
        late=scene.late.id,
        visit_type=hearing.visit_type.id,
        free=scene.free[0].id,
        offer=scene.offer.id,
        unit=hearing.unit.id,
        tomorrow=(clock.today_in_norway() + timedelta(days=1)).isoformat(),
        ingrid=scene.tomorrow.id,
        schedule=hearing.schedule.id,
        offered_slot=scene.pers.slot_id,
    )


@pytest.mark.parametrize("path", list(PATIENT_PAGES.values()), ids=list(PATIENT_PAGES))
def test_every_patient_page_passes_axe_and_fits_the_phone(page, live_server, kari, hearing, scene, axe, path):
    sign_in(page.context, live_server, kari)
    response = page.goto(f"{live_server}{_url(path, scene, hearing)}")
    assert response.status == 200
    name = next(k for k, v in PATIENT_PAGES.items() if v == path)
    passes(page, axe, name)


@pytest.mark.parametrize("path", list(STAFF_PAGES.values()), ids=list(STAFF_PAGES))
def test_every_staff_page_passes_axe_and_fits_the_phone(page, live_server, clerk, hearing, scene, axe, path):
    sign_in(page.context, live_server, clerk)
    response = page.goto(f"{live_server}{_url(path, scene, hearing)}")
    assert response.status == 200
    name = next(k for k, v in STAFF_PAGES.items() if v == path)
    passes(page, axe, name)
    page.set_viewport_size(ZOOM)
    assert one_line_tabs(page) == []  # four tabs in two rows of two, no label broken inside a word


def test_the_staff_forms_with_errors_pass_axe(page, live_server, clerk, hearing, scene, axe):
    sign_in(page.context, live_server, clerk)
    page.goto(f"{live_server}/ansatt/timer/kalendere")
    for day in ("mandag", "tirsdag", "onsdag", "torsdag", "fredag"):
        page.get_by_role("group", name="Åpne dager").get_by_label(day).uncheck()
    page.get_by_role("button", name="Opprett kalenderen").click()
    page.get_by_role("alert").filter(has_text="Det er et problem").wait_for()
    summary = page.locator(".error-summary").inner_text()
    assert "Gi kalenderen et navn." in summary and "Velg minst én dag." in summary
    assert db.session.scalar(select(func.count()).select_from(Schedule)) == 1  # only the clinic's own
    summary_lands(page)
    passes(page, axe, "staff-schedules-errors")
    slots_before = db.session.scalar(
        select(func.count()).select_from(Slot).where(Slot.schedule_id == hearing.schedule.id)
    )
    page.goto(f"{live_server}/ansatt/timer/kalendere/{hearing.schedule.id}")
    page.get_by_role("group", name="Dager").get_by_label("mandag").uncheck()
    page.get_by_role("button", name="Lag tidene").click()
    page.get_by_role("alert").filter(has_text="Det er et problem").wait_for()
    assert "Skriv inn en dato." in page.locator(".error-summary").inner_text()
    assert db.session.scalar(select(func.count()).select_from(Slot).where(Slot.schedule_id == hearing.schedule.id)) == (
        slots_before
    )
    summary_lands(page)
    passes(page, axe, "staff-slots-errors")


# --- 6. without JavaScript -------------------------------------------------------------------------------------


def test_without_javascript_kari_reads_her_times_and_books_one(
    playwright_instance, live_server, kari, hearing, free_times, tmp_path
):
    mine = factories.booked(kari.person, factories.slot(hearing, days=40, hour=12))
    over = factories.booked(kari.person, factories.slot(hearing, days=-20, hour=12))  # nobody marked it
    context = new_context(playwright_instance, tmp_path, "nojs", java_script_enabled=False)
    try:
        page = context.pages[0]
        violations = watch_csp(page)
        sign_in(context, live_server, kari)
        page.goto(f"{live_server}/timer")
        assert page.get_by_role("heading", level=1).inner_text() == "Timer"
        assert page.get_by_role("region", name="Kommende timer").locator(f"a[href='/timer/{mine.id}']").is_visible()
        gone_by = page.get_by_role("region", name="Tidligere og avbestilte timer").locator(
            f"a[href='/timer/{over.id}']"
        )
        assert "Service på høreapparat" in gone_by.inner_text()
        assert "Bestilt" not in gone_by.inner_text()  # over: not "booked" in green as if still to come
        page.goto(f"{live_server}/timer/{mine.id}")
        facts = page.locator("dl.facts").inner_text()
        assert "Hørselssentralen" in facts and "Inngang B, 2. etasje" in facts and PHONE_NUMBER in facts
        assert page.get_by_role("link", name="Avbestill timen").is_visible()

        # "Vis flere tider" is a plain link: the next page of times.
        page.goto(f"{live_server}/timer/bestill")
        page.get_by_role("link", name=re.compile("^Service på høreapparat")).click()
        page.wait_for_url(f"{live_server}/timer/bestill/{hearing.visit_type.id}")
        assert slot_ids(page) == [s.id for s in free_times[:20]]
        page.get_by_role("link", name="Vis flere tider").click()
        page.wait_for_url(re.compile(rf"/timer/bestill/{hearing.visit_type.id}\?etter={free_times[19].id}$"))
        assert page.get_by_role("heading", level=1).inner_text() == "Service på høreapparat"
        assert slot_ids(page) == [s.id for s in free_times[20:]]

        # Book with a plain form post.
        page.get_by_role("link").filter(has_text=f"kl. {hhmm(free_times[22].start)}").first.click()
        page.wait_for_url(re.compile(r"/timer/bestill/tid/\d+$"))
        chosen = int(page.url.rsplit("/", 1)[1])
        page.get_by_role("button", name="Bestill timen").click()
        page.wait_for_url(re.compile(r"/timer/\d+\?ok=bestilt$"))
        assert notice(page).inner_text() == "Timen er bestilt. Du finner den under Timer."
        booked = db.session.scalar(select(Appointment).where(Appointment.slot_id == chosen))
        assert booked.person_id == kari.person.id and booked.status is AppointmentStatus.BOOKED
        page.goto(f"{live_server}/timer")
        assert page.get_by_role("region", name="Kommende timer").locator(f"a[href='/timer/{booked.id}']").is_visible()
        assert violations == []
    finally:
        context.close()


def test_without_javascript_an_offer_shows_its_deadline(playwright_instance, live_server, kari, offered, tmp_path):
    context = new_context(playwright_instance, tmp_path, "nojs-offer", java_script_enabled=False)
    try:
        page = context.pages[0]
        sign_in(context, live_server, kari)
        page.goto(f"{live_server}/timer")
        region = page.get_by_role("region", name="Du kan få en tidligere time")
        assert re.search(r"Svar innen kl\. \d\d:\d\d \(1 t 59 min igjen\)", region.inner_text())
        region.get_by_role("link").first.click()
        page.get_by_role("button", name="Ja, gi meg den nye tiden").click()
        page.wait_for_url(re.compile(r"/timer/\d+\?ok=tilbud$"))
        assert notice(page).inner_text().startswith("Du har fått den tidligere timen.")
    finally:
        context.close()
