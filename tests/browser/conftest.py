"""A real browser: Debian's chromium driven by Playwright, against Varde served on 127.0.0.1.

Never downloads a browser. Without /usr/bin/chromium the browser tests are skipped with a line
saying how to enable them, except when VARDE_REQUIRE_BROWSER is set (CI), where that fails.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # The browser reaches nothing but this machine: no third-party request can slip through.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]


def _require(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("VARDE_REQUIRE_BROWSER"):
        pytest.fail(f"{reason} (VARDE_REQUIRE_BROWSER is set, so browser tests may not be skipped)")
    pytest.skip(f"{reason}; enable browser tests with: sudo apt-get install chromium && make test")


@pytest.fixture(scope="session")
def live_server(app) -> Iterator[str]:
    """Varde on a free port of 127.0.0.1 (a secure context: service workers and push work)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def playwright_instance():
    # Per module, not per session: sync Playwright keeps an asyncio loop running in this thread
    # while it lives, and the push worker's asyncio.run() in the server tests that follow needs none.
    _require(os.path.exists(CHROMIUM), f"{CHROMIUM} not found")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture
def browser_context(playwright_instance, live_server, tmp_path):
    """A persistent profile (an incognito one is never installable), phone-sized, notifications allowed."""
    context = playwright_instance.chromium.launch_persistent_context(
        str(tmp_path / "profile"),
        executable_path=CHROMIUM,
        args=FLAGS,
        viewport=PHONE,
        device_scale_factor=2,
        has_touch=True,
        locale="nb-NO",
        timezone_id="Europe/Oslo",
    )
    context.grant_permissions(["notifications"], origin=live_server)
    yield context
    context.close()


@pytest.fixture
def page(browser_context):
    page = browser_context.pages[0] if browser_context.pages else browser_context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    page.csp_violations = violations  # type: ignore[attr-defined]
    yield page
    assert not violations, f"CSP violations: {violations}"


@pytest.fixture
def phone(playwright_instance, live_server, tmp_path):
    """Another phone, logged in as someone else (or nobody, with None): ``phone(user, "name")``,
    with any of Playwright's context options. No CSP violation may happen on it either."""
    from tests.browser.test_record import new_context, sign_in, watch_csp

    opened = []

    def open_as(user, name: str, **options):  # type: ignore[no-untyped-def]
        context = new_context(playwright_instance, tmp_path, name, **options)
        page = context.pages[0] if context.pages else context.new_page()
        violations = watch_csp(page)
        if user is not None:
            sign_in(context, live_server, user)
        opened.append((context, violations))
        return page

    yield open_as
    for context, _violations in opened:
        context.close()
    assert [v for _c, violations in opened for v in violations] == [], "CSP violations on another phone"


@pytest.fixture
def axe():
    """Run axe-core on the page (injected over CDP, which the page's CSP does not govern)."""
    _require(AXE.exists(), "node_modules/axe-core is missing (make test installs it with npm)")
    source = AXE.read_text()

    def run(page) -> list[dict]:
        page.evaluate(source)
        result = page.evaluate(
            "async () => await axe.run(document, {runOnly: {type: 'tag', values: "
            "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}})"
        )
        return [
            {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"]
        ]

    return run


@pytest.fixture
def notification_daemon():
    """A private D-Bus session bus with a desktop-notification server on it (notification_daemon.py):
    it sees every notification the browser shows and can click one (a trusted notificationclick)."""
    from tests.browser.notification_daemon import NotificationDaemon, available

    ok, reason = available()
    if not ok:
        if os.environ.get("VARDE_REQUIRE_BROWSER"):
            pytest.fail(f"{reason} (VARDE_REQUIRE_BROWSER is set, so browser tests may not be skipped)")
        pytest.skip(reason)
    with NotificationDaemon() as daemon:
        yield daemon
    # dbus-next's disconnect() shuts the socket down but never closes it: close it here, or its
    # ResourceWarning surfaces whenever the garbage collector runs (as an error, with filterwarnings).
    bus = daemon._bus
    for resource in (getattr(bus, "_stream", None), getattr(bus, "_sock", None)):
        if resource is not None:
            resource.close()


@pytest.fixture
def notifying_context(playwright_instance, live_server, notification_daemon, tmp_path):
    """browser_context, but launched on the daemon's bus: Chromium looks for a notification server only
    at launch, so the daemon is up first. Notifications allowed; ``context.csp_violations`` collects the
    CSP reports of every page (new windows opened by the service worker included) and must stay empty."""
    context = playwright_instance.chromium.launch_persistent_context(
        str(tmp_path / "notifying-profile"),
        executable_path=CHROMIUM,
        # locale= reaches the pages' requests only; the browser's own (the service worker script, which
        # /sw.js writes in the request's language) would say en-US. A Norwegian phone says nb everywhere.
        args=[*FLAGS, "--accept-lang=nb-NO,nb"],
        env={**os.environ, **notification_daemon.env},
        viewport=PHONE,
        device_scale_factor=2,
        has_touch=True,
        locale="nb-NO",
        timezone_id="Europe/Oslo",
    )
    context.grant_permissions(["notifications"], origin=live_server)
    violations: list[str] = []

    def watch(page) -> None:  # type: ignore[no-untyped-def]
        page.on(
            "console",
            lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
        )

    for page in context.pages:
        watch(page)
    context.on("page", watch)
    context.csp_violations = violations  # type: ignore[attr-defined]
    yield context
    context.close()
    assert not violations, f"CSP violations: {violations}"
