"""Web push end to end in a real phone-sized browser: a result released for Kari becomes a push that the
tests' own push service accepts (VAPID checked, aes128gcm decrypted), the decrypted payload goes into
Varde's real service worker (CDP ``ServiceWorker.deliverPushMessage``), the worker shows it on a private
desktop-notification server on D-Bus (notification_daemon.py), and a trusted click there opens the item.

Also: a duplicate delivery is shown once, a tap after the session ended goes through the login to the
item, a parent's tap switches to the child, the settings page asks for permission only after a tap and
never waits for ever, and the notification centre, settings page and bell pass axe at phone size and at
200 % zoom. Screenshots of the centre, the settings page and the overview's bell go to test-results/.
"""

from __future__ import annotations

import re
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import current_app
from playwright.sync_api import expect
from sqlalchemy import delete, select

from app.auth.models import ServerSession
from app.db import db
from app.notify import delivery, services
from app.notify.models import Notification, PushSubscription
from app.record.models import ItemKind, ReleasePolicy, ReleaseRule, ReleaseState
from app.record.present import value_text
from app.record.release import release
from tests import factories
from tests.browser.conftest import CHROMIUM, FLAGS, PHONE
from tests.browser.notification_daemon import CLOSED_BY_CALL
from tests.browser.test_record import items, overflowing, sign_in
from tests.browser.test_shell import wait_for_active_worker
from tests.factories import PASSWORD, totp_now
from tests.push_service import PushService

pytestmark = pytest.mark.browser
DOCS = Path(__file__).resolve().parents[2] / "test-results"  # copied to docs/ by hand when they change
SHOTS = Path(tempfile.gettempdir()) / "notification-shots"  # the 200 % pictures: to look at, not kept

SHOWN = """async () => (await (await navigator.serviceWorker.ready).getNotifications())
    .map((n) => ({title: n.title, body: n.body, tag: n.tag, data: n.data}))"""


# --- helpers ----------------------------------------------------------------------------------------


class ServiceWorker:
    """CDP's ServiceWorker domain on one page: enabled before the page navigates, so that the
    registration's id is reported; ``push(data)`` hands a payload to the real worker as a push."""

    def __init__(self, page, base: str) -> None:  # type: ignore[no-untyped-def]
        self.page, self.base = page, base
        self.cdp = page.context.new_cdp_session(page)
        self.registrations: list[dict] = []
        self.cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: self.registrations.extend(e["registrations"]))
        self.cdp.send("ServiceWorker.enable")
        self.registration_id = ""

    def ready(self) -> str:
        """Wait until the worker is active and controls the page; return its registration id."""
        wait_for_active_worker(self.page)
        scope = f"{self.base}/"
        for _ in range(50):
            found = [r for r in self.registrations if r["scopeURL"] == scope and not r.get("isDeleted")]
            if found:
                self.registration_id = found[-1]["registrationId"]
                return self.registration_id
            self.page.wait_for_timeout(100)
        raise AssertionError(f"no service worker registration for {scope}: {self.registrations}")

    def push(self, data: str) -> None:
        self.cdp.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": self.base, "registrationId": self.registration_id, "data": data},
        )


def shown(page) -> list[dict]:  # type: ignore[no-untyped-def]
    """registration.getNotifications() (call it only after the daemon saw the Notify: TESTING.md)."""
    return page.evaluate(SHOWN)


def wait_until(page, condition, what: str, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    """Poll a Python-side condition while letting Playwright dispatch its events."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        page.wait_for_timeout(50)


def bell(page, name: str):  # type: ignore[no-untyped-def]
    """The top bar's link to the notification centre, by its exact accessible name."""
    return page.get_by_role("banner").get_by_role("link", name=name, exact=True)


def unread_name(n: int) -> str:
    return "Varsler" if n == 0 else f"Varsler, {n} ulest" if n == 1 else f"Varsler, {n} uleste"


def full_length(page, path: Path) -> None:  # type: ignore[no-untyped-def]
    """The whole page on a phone as tall as the page (a full_page screenshot would draw the fixed tab
    bar where the screen ends, over the middle of the page)."""
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": page.evaluate("document.body.scrollHeight")})
    page.screenshot(path=str(path))
    page.set_viewport_size(size)


OUT_OF_CARD = """() => [...document.querySelectorAll('main .card, main .notice-list')].flatMap((box) => {
    const edge = box.getBoundingClientRect().right;
    return [...box.querySelectorAll('*')]
        .filter((el) => el.getClientRects().length && el.getBoundingClientRect().right > edge + 1)
        .map((el) => `${el.tagName.toLowerCase()}.${el.className} ends at `
                     + `${Math.round(el.getBoundingClientRect().right)} > ${Math.round(edge)}: `
                     + el.textContent.trim().slice(0, 30));
})"""


def notification_for(account_id: int, item_id: int) -> Notification:
    db.session.expire_all()
    return db.session.scalars(
        select(Notification).where(Notification.account_id == account_id, Notification.object_id == item_id)
    ).one()


def expected_payload(
    notification: Notification, title: str = "Du har et nytt prøvesvar", tag: str = "varde-results"
) -> dict:
    return {
        "id": notification.token,
        "title": title,
        "body": "Trykk for å åpne Varde.",
        "url": f"/varsler/{notification.token}",
        "tag": tag,
    }


def send(push: PushService, count: int = 1):  # type: ignore[no-untyped-def]
    """Run the real sender as the worker would, in a thread of its own with its own app context (sync
    Playwright keeps an asyncio loop running in this thread, and the sender uses asyncio.run); return
    what the push service decrypted."""
    app = current_app._get_current_object()
    stats: dict = {}

    def worker() -> None:
        with app.app_context():
            stats.update(delivery.deliver_due())

    thread = threading.Thread(target=worker, name="push-worker")
    before = len(push.received)
    thread.start()
    thread.join(30)
    assert stats.get("sent") == count, stats
    db.session.expire_all()
    return push.wait_for(before + count)[before:]


def held_results(person, source, prefix: str) -> list:  # type: ignore[no-untyped-def]
    """Import a record for ``person`` whose results wait for a clinician (the rule exists already);
    return the held lab values (results in a report), newest first."""
    factories.record(person, source, results=6, notes=0, years=0.05, prefix=prefix)
    waiting = [r for r in items(person, ItemKind.RESULT, release_state=ReleaseState.HELD) if r.report_id]
    assert len(waiting) >= 2, "the generated record should have held lab values"
    return waiting


def show_result(page, item) -> None:  # type: ignore[no-untyped-def]
    """The result page of ``item``, as the patient sees it."""
    assert page.get_by_role("heading", level=1).inner_text() == item.title
    assert page.locator(".result__value").inner_text() == value_text(item.data)


@pytest.fixture
def push():
    with PushService() as service:
        yield service
        service.assert_no_rejections()


@pytest.fixture
def scene(kari, dr_lund, org, source):
    """Kari's record from St. Olavs hospital, its results waiting for Dr. Lund."""
    db.session.add(ReleaseRule(kind=ItemKind.RESULT, policy=ReleasePolicy.CLINICIAN))
    db.session.commit()
    return SimpleNamespace(waiting=held_results(kari.person, source, "kari"), source=source, dr_lund=dr_lund)


def phone_subscribed(user, push: PushService, *, quiet_hours: bool = False) -> None:
    """After the imports: forget what they announced (recent visits and the like; these tests are about
    what comes next), turn quiet hours off (else a run between 22 and 07 Norwegian time would defer every
    push), and subscribe the user's phone at the tests' push service with keys the test made."""
    db.session.execute(delete(Notification))
    if not quiet_hours:
        services.save_settings(user.id, {"quiet_enabled": False})
    _subscriber, subscription = push.subscribe(f"{user.identities[-1].subject}-phone")
    services.subscribe(user.id, subscription, "Chrome · Android")
    db.session.commit()


def release_for(item, scene) -> None:  # type: ignore[no-untyped-def]
    """Dr. Lund releases a held result: the real path (event, notification, push delivery)."""
    assert release(item, by_user_id=scene.dr_lund.id)
    db.session.commit()


def open_varde(context, base: str, user):  # type: ignore[no-untyped-def]
    """Kari's phone with Varde open on the overview, its service worker in control."""
    page = context.pages[0] if context.pages else context.new_page()
    worker = ServiceWorker(page, base)
    sign_in(context, base, user)
    page.goto(f"{base}/")
    worker.ready()
    return page, worker


# --- 1. the whole loop -----------------------------------------------------------------------------


@pytest.mark.parametrize("window", ["closed", "open"])
def test_a_released_result_reaches_the_phone_and_a_tap_opens_it(
    notifying_context, notification_daemon, live_server, kari, scene, push, window
):
    context, daemon = notifying_context, notification_daemon
    earlier, item = scene.waiting[1], scene.waiting[0]
    phone_subscribed(kari, push)
    release_for(earlier, scene)
    send(push)  # an earlier result, pushed and never opened: it keeps the bell at two
    release_for(item, scene)
    notice = notification_for(kari.id, item.id)
    [message] = send(push)
    assert message.name == "kari-phone"
    assert message.json() == expected_payload(notice)

    page, worker = open_varde(context, live_server, kari)
    assert bell(page, unread_name(2)).is_visible()

    worker.push(message.text())
    [note] = daemon.wait_for(1)
    assert note.summary == "Du har et nytt prøvesvar"
    assert note.body.endswith("Trykk for å åpne Varde.")
    assert "default" in note.action_keys
    assert shown(page) == [
        {
            "title": "Du har et nytt prøvesvar",
            "body": "Trykk for å åpne Varde.",
            "tag": "varde-results",
            "data": {"url": f"/varsler/{notice.token}", "ids": [notice.token]},
        }
    ]

    result_url = f"{live_server}/journal/prover/{item.id}"
    if window == "closed":
        # Varde is not open anywhere (another page is, so the browser stays up): the tap opens a window.
        other = context.new_page()
        page.close()
        with context.expect_page() as opened:
            daemon.click(note.id)
        landed = opened.value
        landed.wait_for_url(result_url)
        assert [p for p in context.pages if p.url.startswith(live_server)] == [landed]
        assert other.url == "about:blank"
    else:
        # Varde is open: the tap navigates that window, and no other opens.
        new_pages: list = []
        context.on("page", lambda p: new_pages.append(p))
        daemon.click(note.id)
        page.wait_for_url(result_url)
        landed = page
        landed.wait_for_timeout(300)  # a window opened as well would have shown up by now
        assert new_pages == []
    show_result(landed, item)

    # Read in the database (the tap's /varsler/<token>), the earlier one still unread, and the bell says so.
    assert notification_for(kari.id, item.id).read_at is not None
    assert notification_for(kari.id, earlier.id).read_at is None
    assert bell(landed, unread_name(1)).is_visible()
    # The worker closed the notification it was tapped on.
    wait_until(landed, lambda: (note.id, CLOSED_BY_CALL) in daemon.closed, "the notification to be closed")
    assert shown(landed) == []
    assert len(daemon.shown) == 1


# --- 2. a duplicate delivery ------------------------------------------------------------------------


def test_the_same_push_twice_is_shown_once(notifying_context, notification_daemon, live_server, kari, scene, push):
    context, daemon = notifying_context, notification_daemon
    first, second = scene.waiting[0], scene.waiting[1]
    phone_subscribed(kari, push)
    release_for(first, scene)
    [message] = send(push)
    page, worker = open_varde(context, live_server, kari)

    worker.push(message.text())
    [note] = daemon.wait_for(1)
    # The sender died between sending and marking it sent, and sent it again: the same bytes arrive.
    worker.push(message.text())
    page.wait_for_timeout(1000)
    assert len(daemon.shown) == 1  # not shown again (no second buzz)
    token = notification_for(kari.id, first.id).token
    assert [n["data"] for n in shown(page)] == [{"url": f"/varsler/{token}", "ids": [token]}]

    # Control: a different result of the same kind does replace it, counting two, not three.
    release_for(second, scene)
    [other] = send(push)
    worker.push(other.text())
    notes = daemon.wait_for(2)
    assert notes[1].replaces_id == note.id
    assert notes[1].body.endswith("Du har 2 nye varsler. Trykk for å se dem.")
    [one] = shown(page)
    assert one["data"] == {"url": "/varsler", "ids": [token, other.json()["id"]]}


# --- 3. the session ended before the tap -------------------------------------------------------------


def test_a_tap_after_the_session_ended_goes_through_the_login_to_the_item(
    notifying_context, notification_daemon, live_server, kari, scene, push
):
    context, daemon = notifying_context, notification_daemon
    item = scene.waiting[0]
    phone_subscribed(kari, push)
    release_for(item, scene)
    [message] = send(push)
    notice = notification_for(kari.id, item.id)
    page, worker = open_varde(context, live_server, kari)
    worker.push(message.text())
    [note] = daemon.wait_for(1)

    # Hours later: the server forgot the session (idle timeout), and Varde is not open.
    db.session.execute(delete(ServerSession).where(ServerSession.user_id == kari.id))
    db.session.commit()
    other = context.new_page()
    page.close()
    with context.expect_page() as opened:
        daemon.click(note.id)
    login = opened.value
    login.wait_for_url("**/logg-inn?**")
    assert f"next=/varsler/{notice.token}" in login.url
    assert notification_for(kari.id, item.id).read_at is None  # nothing happened without a login

    login.get_by_label("Fødselsnummer eller brukernavn").fill("kari")
    login.get_by_label("Passord").fill(PASSWORD)
    login.get_by_role("button", name="Logg inn").click()
    login.wait_for_url("**/logg-inn/kode")
    login.get_by_label("Engangskode fra autentiseringsappen").fill(totp_now(kari))
    login.get_by_role("button", name="Bekreft").click()
    login.wait_for_url(f"{live_server}/journal/prover/{item.id}")  # the item, not the overview
    show_result(login, item)
    assert notification_for(kari.id, item.id).read_at is not None
    assert other.url == "about:blank"


# --- 4. a parent hears of a young child -------------------------------------------------------------


def test_a_parent_taps_and_sees_the_childs_result(
    notifying_context, notification_daemon, live_server, kari, ola, scene, push
):
    context, daemon = notifying_context, notification_daemon
    factories.parent_of(kari, ola)
    item = held_results(ola, scene.source, "ola")[0]
    phone_subscribed(kari, push)
    release_for(item, scene)
    notice = notification_for(kari.id, item.id)
    assert notice.subject_person_id == ola.id
    [message] = send(push)
    # A child's news has its own tag (a keyed hash, not Ola's id), so it never replaces Kari's own.
    tag = message.json()["tag"]
    assert tag.startswith("varde-results-") and len(tag) > len("varde-results-")
    assert message.json() == expected_payload(notice, "Ola har et nytt prøvesvar", tag)

    page, worker = open_varde(context, live_server, kari)
    assert page.locator(".acting-banner").count() == 0  # Kari's own record until the tap
    worker.push(message.text())
    [note] = daemon.wait_for(1)
    assert note.summary == "Ola har et nytt prøvesvar"
    other = context.new_page()
    page.close()
    with context.expect_page() as opened:
        daemon.click(note.id)
    landed = opened.value
    landed.wait_for_url(f"{live_server}/journal/prover/{item.id}")
    assert landed.get_by_text("Du ser nå journalen til Ola, 8 år.").is_visible()
    show_result(landed, item)
    assert notification_for(kari.id, item.id).read_at is not None
    assert other.url == "about:blank"


# --- 5. the settings page: permission only after a tap, never a wait for ever --------------------------

SPY = """
window.__asked = {permission: 0, subscribe: 0};
if (window.Notification) {
  const ask = Notification.requestPermission.bind(Notification);
  Notification.requestPermission = (...args) => { window.__asked.permission += 1; return ask(...args); };
}
if (window.PushManager) {
  const subscribe = PushManager.prototype.subscribe;
  PushManager.prototype.subscribe = function (...args) {
    window.__asked.subscribe += 1;
    return subscribe.apply(this, args);
  };
}
"""


def test_the_settings_page_asks_only_after_a_tap_and_gives_up_with_a_message(
    playwright_instance, live_server, kari, tmp_path
):
    # A phone where Varde was never allowed to notify (no grant), as on a first visit.
    context = playwright_instance.chromium.launch_persistent_context(
        str(tmp_path / "ungranted"),
        executable_path=CHROMIUM,
        args=FLAGS,
        viewport=PHONE,
        has_touch=True,
        locale="nb-NO",
        timezone_id="Europe/Oslo",
    )
    try:
        page = context.pages[0]
        violations: list[str] = []
        page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        context.add_init_script(SPY)
        sign_in(context, live_server, kari)
        page.goto(f"{live_server}/varsler/innstillinger")
        wait_for_active_worker(page)
        status = page.locator("[data-push-status]")
        button = page.get_by_role("button", name="Slå på varsler på denne enheten")
        status.filter(has_text="Varsler er ikke slått på for denne enheten.").wait_for()
        assert button.is_enabled()
        # Push is off here: only the button that turns it on is offered.
        assert page.get_by_role("button", name="Slå av varsler på denne enheten").is_hidden()

        # Loading the page asked nothing.
        assert page.evaluate("window.__asked") == {"permission": 0, "subscribe": 0}
        assert page.evaluate("Notification.permission") == "default"
        assert page.evaluate("navigator.permissions.query({name: 'notifications'}).then((p) => p.state)") == "prompt"

        # The tap asks; headless Chromium answers "denied" at once (a person might dismiss it): a message
        # that says what to do, and the button again.
        button.click()
        expect(status).not_to_have_text(page.locator("#push-device").get_attribute("data-msg-waiting") or "")
        assert page.evaluate("window.__asked") == {"permission": 1, "subscribe": 0}
        assert status.inner_text() in {
            "Du svarte ikke på spørsmålet fra nettleseren. Varsler er ikke slått på.",
            "Nettleseren har blokkert varsler fra Varde. Du kan tillate dem i nettleserens innstillinger for "
            "dette nettstedet, og så prøve igjen.",
        }
        assert button.is_enabled()

        # Allowed now; subscribe() never answers on this machine (no push service): the page gives up.
        context.grant_permissions(["notifications"], origin=live_server)
        page.evaluate("document.getElementById('push-device').dataset.timeoutMs = '1500'")
        started = time.monotonic()
        button.click()
        assert status.inner_text() == "Venter på svar fra nettleseren …"
        assert button.is_disabled()
        status.filter(has_text="Nettleseren svarte ikke.").wait_for(timeout=10_000)
        waited = time.monotonic() - started
        assert 1.4 <= waited < 5, waited
        assert status.inner_text() == (
            "Nettleseren svarte ikke. Varsler er ikke slått på. Prøv igjen senere, og sjekk at telefonen "
            "tillater varsler fra nettleseren."
        )
        assert page.evaluate("window.__asked") == {"permission": 2, "subscribe": 1}
        assert button.is_enabled() and button.is_visible()
        assert page.url == f"{live_server}/varsler/innstillinger"  # nothing claimed to be switched on
        assert db.session.scalar(select(PushSubscription.id)) is None
        assert violations == []
    finally:
        context.close()


# --- 6. accessibility, the bell, and pictures -------------------------------------------------------


def test_the_centre_settings_and_bell_pass_axe_at_phone_size_and_200_percent(
    page, live_server, kari, ola, scene, push, axe
):
    factories.parent_of(kari, ola)
    ola_item = held_results(ola, scene.source, "ola")[0]
    phone_subscribed(kari, push, quiet_hours=True)  # nothing is pushed here: the settings as they come
    release_for(scene.waiting[2], scene)  # the oldest: read below
    release_for(scene.waiting[1], scene)
    release_for(ola_item, scene)
    services.mark_read(kari.id, notification_for(kari.id, scene.waiting[2].id).id)
    db.session.commit()
    sign_in(page.context, live_server, kari)

    # The bell: reached by keyboard from the top of the page (after the skip link and the logo), named
    # with the count, and Enter opens the centre.
    page.goto(f"{live_server}/")
    link = bell(page, unread_name(2))
    assert link.is_visible()
    for _ in range(5):
        page.keyboard.press("Tab")
        if link.evaluate("(el) => el === document.activeElement"):
            break
    else:
        raise AssertionError("the bell is not reachable by keyboard")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server}/varsler")
    page.goto(f"{live_server}/")
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / "overview-bell.png"))
    assert axe(page) == []

    page.goto(f"{live_server}/varsler")
    rows = page.locator(".notice-row")
    assert rows.count() == 3
    assert rows.locator(".notice-row__title").all_inner_texts() == [
        "Ola har et nytt prøvesvar",
        "Du har et nytt prøvesvar",
        "Du har et nytt prøvesvar",
    ]
    assert page.locator(".notice-row--unread").count() == 2
    # Each "Merk som lest" says which notification it marks (a list of identical button names says nothing).
    marks = page.get_by_role("button", name=re.compile("^Merk som lest"))
    names = [re.sub(r"\d", "9", m.aria_snapshot()) for m in marks.all()]
    assert names == [
        '- button "Merk som lest – Ola har et nytt prøvesvar, 99.99.9999, 99:99"',
        '- button "Merk som lest – Du har et nytt prøvesvar, 99.99.9999, 99:99"',
    ]
    full_length(page, DOCS / "notifications-centre.png")
    assert axe(page) == []

    page.goto(f"{live_server}/varsler/innstillinger")
    assert page.locator(".devices .device__name").all_inner_texts() == ["Chrome · Android"]
    page.locator("[data-push-status]").filter(has_text="Varsler er ikke slått på").wait_for()
    assert page.get_by_role("button", name="Slå av varsler på denne enheten").is_hidden()
    full_length(page, DOCS / "notifications-settings.png")
    assert axe(page) == []

    # 200 % zoom on this phone: half the CSS pixels. Nothing scrolls sideways, axe still finds nothing.
    page.set_viewport_size({"width": PHONE["width"] // 2, "height": PHONE["height"] // 2})
    for path in ("/varsler", "/varsler/innstillinger", "/"):
        page.goto(f"{live_server}{path}")
        SHOTS.mkdir(parents=True, exist_ok=True)
        full_length(page, SHOTS / f"zoom-200{path.replace('/', '-').rstrip('-') or '-overview'}.png")
        assert axe(page) == [], path
        assert page.evaluate(OUT_OF_CARD) == [], path
        assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"), (
            path,
            overflowing(page),
        )
        assert bell(page, unread_name(2)).is_visible(), path
