"""The portal in a real phone-sized browser: log in, install, service worker, offline, push, axe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import CHROMIUM, FLAGS, PHONE
from tests.factories import PASSWORD, totp_now

pytestmark = pytest.mark.browser
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results"


def log_in(page, base, user, username="kari"):
    page.goto(f"{base}/")
    assert "/logg-inn" in page.url
    page.get_by_label("Fødselsnummer eller brukernavn").fill(username)
    page.get_by_label("Passord").fill(PASSWORD)
    page.get_by_role("button", name="Logg inn").click()
    page.wait_for_url("**/logg-inn/kode")
    page.get_by_label("Engangskode fra autentiseringsappen").fill(totp_now(user))
    page.get_by_role("button", name="Bekreft").click()
    page.wait_for_url(f"{base}/")


def wait_for_active_worker(page) -> None:
    state = page.evaluate(
        """async () => {
            const reg = await navigator.serviceWorker.ready;
            if (!navigator.serviceWorker.controller) {
                await new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve));
            }
            const worker = reg.active;
            if (worker.state !== 'activated') {
                await new Promise((resolve) => worker.addEventListener('statechange', () => {
                    if (worker.state === 'activated') resolve();
                }));
            }
            return worker.state;
        }"""
    )
    assert state == "activated"


def test_a_patient_logs_in_and_sees_the_overview(page, live_server, kari, axe):
    log_in(page, live_server, kari)
    assert page.get_by_role("heading", level=1).inner_text() == "Hei, Kari"
    assert page.get_by_role("navigation", name="Hovedmeny").is_visible()
    assert page.get_by_role("link", name="Oversikt").get_attribute("aria-current") == "page"
    assert page.get_by_text("Ingen nye prøvesvar eller notater").is_visible()
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "overview-phone.png"), full_page=True)
    assert axe(page) == []
    # Nothing is wider than a phone: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def test_the_login_and_settings_pages_pass_axe(page, live_server, kari, axe):
    page.goto(f"{live_server}/logg-inn")
    assert axe(page) == []
    page.get_by_role("button", name="Logg inn").click()  # empty form: the error summary
    summary = page.locator(".error-summary")
    assert summary.is_visible()
    assert page.title().startswith("Feil:")
    assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    assert axe(page) == []
    log_in(page, live_server, kari)
    page.goto(f"{live_server}/innstillinger")
    assert axe(page) == []
    page.screenshot(path=str(SCREENSHOTS / "settings-phone.png"), full_page=True)


def test_it_is_installable(page, live_server, kari):
    page.goto(f"{live_server}/logg-inn")
    wait_for_active_worker(page)
    cdp = page.context.new_cdp_session(page)
    assert cdp.send("Page.getInstallabilityErrors")["installabilityErrors"] == []
    manifest = cdp.send("Page.getAppManifest")
    assert manifest["errors"] == []
    assert json.loads(manifest["data"])["short_name"] == "Varde"


def test_the_installability_check_can_fail(page, live_server):
    """Negative control: the same page with a manifest without icons is not installable."""
    page.route(
        "**/manifest.webmanifest",
        lambda route: route.fulfill(
            content_type="application/manifest+json",
            body=json.dumps({"name": "Varde", "start_url": "/", "display": "standalone"}),
        ),
    )
    page.goto(f"{live_server}/logg-inn")
    cdp = page.context.new_cdp_session(page)
    errors = [e["errorId"] for e in cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]]
    assert "manifest-missing-suitable-icon" in errors


def test_offline_navigation_shows_the_offline_page(page, live_server, kari):
    log_in(page, live_server, kari)
    wait_for_active_worker(page)
    page.context.set_offline(True)
    try:
        response = page.goto(f"{live_server}/journal")
        assert response.from_service_worker
        assert page.get_by_role("heading", level=1).inner_text() == "Ingen nettforbindelse"
        assert "Kari" not in page.content()
    finally:
        page.context.set_offline(False)


def test_health_pages_are_never_cached_by_the_service_worker(page, live_server, kari):
    log_in(page, live_server, kari)
    wait_for_active_worker(page)
    page.goto(f"{live_server}/innstillinger")
    cached = page.evaluate(
        """async () => {
            const urls = [];
            for (const name of await caches.keys()) {
                for (const req of await (await caches.open(name)).keys()) urls.push(new URL(req.url).pathname);
            }
            return urls;
        }"""
    )
    assert "/frakoblet" in cached
    assert all(u.startswith("/static/") or u == "/frakoblet" for u in cached), cached
    assert page.evaluate("Object.keys(localStorage).length") == 0  # htmx history cache is off


def test_a_push_shows_a_notification_that_opens_the_right_url(page, live_server, kari):
    cdp = page.context.new_cdp_session(page)
    registrations: list[dict] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    log_in(page, live_server, kari)
    wait_for_active_worker(page)
    for _ in range(50):
        if any(r["scopeURL"] == f"{live_server}/" for r in registrations):
            break
        page.wait_for_timeout(100)
    registration_id = next(r["registrationId"] for r in registrations if r["scopeURL"] == f"{live_server}/")
    payload = {"title": "Varde", "body": "Du har et nytt prøvesvar", "tag": "result", "url": "/journal", "id": "n-1"}
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": live_server, "registrationId": registration_id, "data": json.dumps(payload)},
    )
    shown = []
    for _ in range(50):
        shown = page.evaluate(
            """async () => (await (await navigator.serviceWorker.ready).getNotifications())
                 .map((n) => ({title: n.title, body: n.body, tag: n.tag, data: n.data}))"""
        )
        if shown:
            break
        page.wait_for_timeout(100)
    assert shown == [
        {
            "title": "Varde",
            "body": "Du har et nytt prøvesvar",
            "tag": "result",
            "data": {"url": "/journal", "ids": ["n-1"]},
        }
    ]


def test_a_push_cannot_send_the_user_to_another_site(page, live_server, kari):
    cdp = page.context.new_cdp_session(page)
    registrations: list[dict] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    page.goto(f"{live_server}/logg-inn")
    wait_for_active_worker(page)
    for _ in range(50):
        if registrations:
            break
        page.wait_for_timeout(100)
    registration_id = next(r["registrationId"] for r in registrations if r["scopeURL"] == f"{live_server}/")
    # Another site, and a path that a browser would read as another host ("//evil…" after "/./").
    # One at a time: each is shown before the next arrives.
    urls: list[str] = []
    for n, target in enumerate(("https://evil.example/phish", "/.//evil.example/phish", "//evil.example/x")):
        data = json.dumps({"id": f"e{n}", "title": "Varde", "body": "x", "tag": f"t{n}", "url": target})
        cdp.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": live_server, "registrationId": registration_id, "data": data},
        )
        for _ in range(100):
            urls = page.evaluate(
                "async () => (await (await navigator.serviceWorker.ready).getNotifications()).map((n) => n.data.url)"
            )
            if len(urls) == n + 1:
                break
            page.wait_for_timeout(100)
    assert urls == ["/", "/", "/"]


def test_htmx_logs_out_another_device_in_place(page, live_server, kari, login_as, app):
    other = app.test_client()
    login_as(kari, other)
    log_in(page, live_server, kari)
    page.goto(f"{live_server}/innstillinger")
    devices = page.locator(".device")
    assert devices.count() == 2
    page.get_by_role("button", name="Logg ut Ukjent nettleser").click()
    page.get_by_text("Enheten er logget ut.").wait_for()
    assert page.url == f"{live_server}/innstillinger"  # swapped in place, no reload
    assert other.get("/").status_code == 303


def test_an_expired_session_during_htmx_goes_to_login_and_back(page, live_server, kari, login_as, app):
    from sqlalchemy import delete, update

    from app.auth.models import ServerSession, User
    from app.db import db

    login_as(kari, app.test_client())  # a second device, so that the settings page has an htmx button
    log_in(page, live_server, kari)
    page.goto(f"{live_server}/innstillinger?fane=enheter")
    # The session ends behind the browser's back (as the idle timeout would), then the user taps.
    db.session.execute(delete(ServerSession))
    db.session.commit()
    page.get_by_role("button", name="Logg ut Ukjent nettleser").click()
    page.wait_for_url("**/logg-inn?**")
    assert "next=/innstillinger?fane%3Denheter" in page.url
    page.get_by_label("Fødselsnummer eller brukernavn").fill("kari")
    page.get_by_label("Passord").fill(PASSWORD)
    page.get_by_role("button", name="Logg inn").click()
    page.wait_for_url("**/logg-inn/kode")
    # Within 30 s the app shows the code already used at the first login, which is refused as a
    # replay; a person would wait for the next one. The test forgets the first use instead.
    db.session.execute(update(User).where(User.id == kari.id).values(totp_last_step=None))
    db.session.commit()
    page.get_by_label("Engangskode fra autentiseringsappen").fill(totp_now(kari))
    page.get_by_role("button", name="Bekreft").click()
    page.wait_for_url(f"{live_server}/innstillinger?fane=enheter")
    assert page.get_by_role("heading", level=1).inner_text() == "Profil og innstillinger"


def test_the_page_reads_without_javascript(playwright_instance, live_server, kari, tmp_path):
    context = playwright_instance.chromium.launch_persistent_context(
        str(tmp_path / "nojs"),
        executable_path=CHROMIUM,
        args=FLAGS,
        viewport=PHONE,
        java_script_enabled=False,
        locale="nb-NO",
    )
    try:
        page = context.pages[0]
        page.goto(f"{live_server}/logg-inn")
        page.get_by_label("Fødselsnummer eller brukernavn").fill("kari")
        page.get_by_label("Passord").fill(PASSWORD)
        page.get_by_role("button", name="Logg inn").click()
        page.get_by_label("Engangskode fra autentiseringsappen").fill(totp_now(kari))
        page.get_by_role("button", name="Bekreft").click()
        assert page.get_by_role("heading", level=1).inner_text() == "Hei, Kari"
    finally:
        context.close()


def test_the_keyboard_reaches_the_main_content_first(page, live_server, kari):
    log_in(page, live_server, kari)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Hopp til hovedinnholdet"
    assert page.locator(".skip-link").is_visible()  # visible when focused
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_at_200_percent_zoom_nothing_is_cut_off_or_covered(page, live_server, kari):
    log_in(page, live_server, kari)
    # A 1280×720 laptop at 200 % zoom is a 640×360 CSS-pixel viewport; a small phone at 200 % is 320 wide.
    for width, height in ((640, 360), (320, 568)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{live_server}/innstillinger")
        assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        last = page.locator("main .card").last.bounding_box()
        tabbar = page.locator(".tabbar").bounding_box()
        # At the very bottom, the last card ends above the tab bar: nothing hides behind it.
        assert last["y"] + last["height"] <= tabbar["y"] + 1, (width, height)


def test_a_new_patient_sets_up_the_authenticator_app(page, live_server, nora, axe):
    import pyotp

    page.goto(f"{live_server}/logg-inn")
    page.get_by_label("Fødselsnummer eller brukernavn").fill("nora")
    page.get_by_label("Passord").fill(PASSWORD)
    page.get_by_role("button", name="Logg inn").click()
    page.wait_for_url("**/logg-inn/ny-kode")
    qr = page.get_by_role("img", name="QR-kode for å legge til Varde i autentiseringsappen")
    assert qr.is_visible()
    box, svg = qr.bounding_box(), page.locator(".qr svg").bounding_box()
    assert svg["width"] <= box["width"] + 1 and svg["height"] >= svg["width"] - 1  # whole and square
    assert axe(page) == []
    page.screenshot(path=str(SCREENSHOTS / "enrol-phone.png"), full_page=True)
    secret = page.locator("code.secret").inner_text().replace(" ", "")
    page.get_by_label("Engangskode fra autentiseringsappen").fill("000000")
    page.get_by_role("button", name="Bekreft og fortsett").click()
    assert page.locator(".error-summary").is_visible()
    assert axe(page) == []
    page.get_by_label("Engangskode fra autentiseringsappen").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Bekreft og fortsett").click()
    page.get_by_role("heading", name="Reservekoder").wait_for()
    assert page.locator(".codes li").count() == 10
    assert axe(page) == []
    page.get_by_role("link", name="Jeg har tatt vare på kodene").click()
    page.wait_for_url(f"{live_server}/")
    assert page.get_by_role("heading", level=1).inner_text() == "Hei, Nora"


def test_focus_never_hides_behind_the_tab_bar(page, live_server, kari, login_as, app):
    for _ in range(3):  # enough devices that the settings page is longer than the screen
        login_as(kari, app.test_client())
    log_in(page, live_server, kari)
    page.set_viewport_size({"width": 390, "height": 700})
    page.goto(f"{live_server}/innstillinger")
    tabbar_top = page.locator(".tabbar").bounding_box()["y"]
    for _ in range(30):
        page.keyboard.press("Tab")
        box = page.evaluate(
            """() => { const el = document.activeElement;
                       if (!el || el.closest('.tabbar') || el === document.body) return null;
                       const r = el.getBoundingClientRect(); return {top: r.top, bottom: r.bottom}; }"""
        )
        if box:
            assert box["bottom"] <= tabbar_top + 1, box


def test_after_logging_out_a_device_focus_lands_on_the_message(page, live_server, kari, login_as, app):
    login_as(kari, app.test_client())
    log_in(page, live_server, kari)
    page.goto(f"{live_server}/innstillinger")
    page.get_by_role("button", name="Logg ut Ukjent nettleser").focus()
    page.keyboard.press("Enter")
    page.get_by_text("Enheten er logget ut.").wait_for()
    expect(page.locator(".device--ended:focus")).to_have_count(1)
    assert page.evaluate("document.activeElement.textContent.trim()") == "Enheten er logget ut."


def test_the_idle_warning_lets_the_user_stay_logged_in(page, live_server, kari, app, monkeypatch):
    from datetime import timedelta

    from app.auth.models import ServerSession
    from app.db import db

    log_in(page, live_server, kari)
    monkeypatch.setitem(app.config, "SESSION_IDLE_TIMEOUT", timedelta(seconds=123))
    page.goto(f"{live_server}/journal")
    warning = page.locator("#session-warning")
    assert warning.is_hidden()
    warning.wait_for(state="visible", timeout=10_000)
    assert page.evaluate("document.activeElement.textContent.trim()") == "Fortsett å være innlogget"
    before = db.session.scalar(db.select(ServerSession.last_seen_at).where(ServerSession.user_id == kari.id))
    with page.expect_response("**/okt/forleng") as answer:
        page.keyboard.press("Enter")
    assert answer.value.status == 204
    warning.wait_for(state="hidden")
    db.session.expire_all()
    after = db.session.scalar(db.select(ServerSession.last_seen_at).where(ServerSession.user_id == kari.id))
    assert after > before


def test_when_the_time_is_up_the_page_leaves_the_health_data(page, live_server, kari, app, monkeypatch):
    from datetime import timedelta

    log_in(page, live_server, kari)
    monkeypatch.setitem(app.config, "SESSION_IDLE_TIMEOUT", timedelta(seconds=3))
    page.goto(f"{live_server}/journal")
    page.wait_for_url("**/logg-inn?**", timeout=10_000)
    assert "utlopt=1" in page.url and "next=/journal" in page.url
    assert page.get_by_text("Du ble logget ut fordi du ikke hadde gjort noe på en stund").is_visible()
