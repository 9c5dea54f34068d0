"""A private desktop-notification server on a private D-Bus session bus: trusted notification clicks.

Headless Chromium on Linux still hands web notifications to ``org.freedesktop.Notifications`` on the
session bus. This module starts its own ``dbus-daemon`` (config and socket in a temporary folder, no
service activation) and a dbus-next service owning that name in a background thread with its own
asyncio loop. The test sees every ``Notify`` call and can emit ``ActionInvoked(id, "default")``, which
Chromium turns into a real, trusted ``notificationclick`` (``event.isTrusted`` is true, ``event.action``
is ""), so ``clients.openWindow()`` works. A synthetic event cannot do that (``InvalidAccessError``)::

    ok, reason = available()            # (False, "dbus-daemon not found ...") -> pytest.skip(reason)
    with NotificationDaemon() as daemon:
        context = p.chromium.launch_persistent_context(
            profile, executable_path="/usr/bin/chromium", headless=True, args=FLAGS,
            env={**os.environ, **daemon.env})   # DBUS_SESSION_BUS_ADDRESS=<private bus>
        ...                                      # grant notifications, deliver a push over CDP
        note = daemon.wait_for(1)[-1]            # blocks this thread only; Chromium keeps going
        assert note.summary == "title from the push"
        with context.expect_page() as new_page:
            daemon.click(note.id)
        assert new_page.value.url == expected_url

Facts measured with Debian's Chromium 156 in ``--headless=new`` and conftest.FLAGS (no extra flag):
- Native D-Bus notifications are on by default (feature ``NativeNotifications``); no ``--enable-features``
  is needed, and ``--disable-features=NativeNotifications`` turns them off. Chromium probes the bus once
  at launch (``GetCapabilities``, ``GetServerInformation``): the daemon must own the name *before* the
  browser starts. Launched without a bus, or before the name is owned, Chromium silently falls back to its
  own in-browser message centre for its whole life: ``registration.getNotifications()`` still lists the
  notification, but nothing reaches D-Bus and nothing can click it. Playwright's ``env=`` replaces the
  environment, hence ``{**os.environ, **daemon.env}``.
- What Notify gets (capabilities "actions", "body"): app_name "Chromium", summary = the title,
  body = "127.0.0.1:PORT\n\n<body>" (the origin first; with "body-markup" it is an <a> link),
  icon a temporary file:///tmp/org.chromium.Chromium.scoped_dir.*/logo.png, actions
  ["default", "Activate", "settings", "Settings"], hints {"desktop-entry": "chromium", "urgency": 1},
  timeout 25000 (-1 if "persistence" is advertised). Notify arrives ~20-30 ms after
  ``ServiceWorker.deliverPushMessage``; the page from ``openWindow`` ~170-250 ms after ``click()``.
- One D-Bus id is one web notification. A second ``showNotification`` with the same tag is a single
  ``Notify`` with ``replaces_id`` = the old id (no CloseNotification); this server then returns the same
  id, and ``getNotifications()`` lists one (the new title). Another tag gets a new id.
- Clicking does not close it: Chromium calls ``CloseNotification(id)`` only when the worker calls
  ``event.notification.close()``; otherwise it stays in ``getNotifications()``. ``close(id)`` here (the
  user dismissing it, reason 2) fires ``notificationclose`` in the worker and removes it from
  ``getNotifications()``. Clicking an id that was closed or replaced does nothing. ``click(id,
  "settings")`` opens chrome://settings/content/notifications and fires no worker event.
- ``client.focus()`` uses up the click's permission to open a window: after it, ``openWindow`` fails with
  InvalidAccessError "Not allowed to open a window." ``client.navigate(url)`` does not use it up, but
  works only on a page this worker controls (else TypeError "This service worker is not the client's
  active service worker"); ``clients.matchAll({type: "window", includeUncontrolled: true})`` lists every
  open same-origin page, controlled or not. So: ``navigate(url)`` a controlled client, then ``focus()``
  the client it resolves to; if there is none or navigate fails, ``openWindow(url)``.
"""

# ruff: noqa: F821, F722  (dbus-next reads D-Bus type strings such as "as" and "a{sv}" from annotations)

import asyncio
import contextlib
import importlib.util
import select
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUS_NAME = "org.freedesktop.Notifications"
OBJECT_PATH = "/org/freedesktop/Notifications"

# NotificationClosed reasons from the Desktop Notifications spec.
EXPIRED, DISMISSED, CLOSED_BY_CALL, UNDEFINED = 1, 2, 3, 4

_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={dir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def available() -> tuple[bool, str]:
    """Whether a private notification daemon can run here, and if not, why (a skip reason)."""
    if not shutil.which("dbus-daemon"):
        return False, "dbus-daemon not found (sudo apt-get install dbus-daemon)"
    if importlib.util.find_spec("dbus_next") is None:
        return False, "the Python package dbus-next is missing (pip install -r requirements-dev.txt)"
    return True, ""


@dataclass
class Notification:
    """One Notify call, as the browser made it."""

    id: int
    app_name: str
    replaces_id: int
    icon: str
    summary: str
    body: str
    actions: list[str]
    hints: dict[str, Any]
    timeout: int
    closed: bool = field(default=False)

    @property
    def action_keys(self) -> list[str]:
        """The action keys (actions is a flat list key, label, key, label, ...)."""
        return self.actions[0::2]


def _plain(value: Any) -> Any:
    from dbus_next import Variant

    if isinstance(value, Variant):
        return _plain(value.value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _make_interface(daemon: "NotificationDaemon"):
    from dbus_next.service import ServiceInterface, method, signal

    class Notifications(ServiceInterface):
        def __init__(self) -> None:
            super().__init__(BUS_NAME)

        @method()
        def GetCapabilities(self) -> "as":
            daemon._record("GetCapabilities", ())
            return list(daemon.capabilities)

        @method()
        def GetServerInformation(self) -> "ssss":
            daemon._record("GetServerInformation", ())
            return ["varde-test-notifications", "Varde", "1.0", "1.2"]

        @method()
        def Notify(
            self,
            app_name: "s",
            replaces_id: "u",
            app_icon: "s",
            summary: "s",
            body: "s",
            actions: "as",
            hints: "a{sv}",
            expire_timeout: "i",
        ) -> "u":
            return daemon._notify(
                app_name, replaces_id, app_icon, summary, body, list(actions), _plain(hints), expire_timeout
            )

        @method()
        def CloseNotification(self, id: "u"):
            daemon._record("CloseNotification", (id,))
            if daemon._forget(id):
                daemon._closed(id, CLOSED_BY_CALL)
                self.NotificationClosed(id, CLOSED_BY_CALL)

        @signal()
        def NotificationClosed(self, id, reason) -> "uu":
            return [id, reason]

        @signal()
        def ActionInvoked(self, id, action_key) -> "us":
            return [id, action_key]

        @signal()
        def ActivationToken(self, id, token) -> "us":
            return [id, token]

    return Notifications()


class NotificationDaemon:
    """A private session bus with a notification server on it, for one browser under test."""

    def __init__(self, capabilities: tuple[str, ...] = ("actions", "body"), timeout: float = 10.0) -> None:
        self.capabilities = capabilities
        self.timeout = timeout
        self.address = ""
        self.shown: list[Notification] = []
        self.calls: list[tuple[str, tuple]] = []
        self.closed: list[tuple[int, int]] = []
        self._open: dict[int, Notification] = {}
        self._next_id = 1
        self._cond = threading.Condition()
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._iface = None
        self._bus = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> str:
        ok, reason = available()
        if not ok:
            raise RuntimeError(reason)
        self._tmp = tempfile.TemporaryDirectory(prefix="varde-dbus-")
        config = Path(self._tmp.name) / "session.conf"
        config.write_text(_CONFIG.format(dir=self._tmp.name))
        self._proc = subprocess.Popen(  # noqa: S603
            [shutil.which("dbus-daemon"), f"--config-file={config}", "--nofork", "--print-address"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        readable, _, _ = select.select([self._proc.stdout], [], [], self.timeout)
        line = self._proc.stdout.readline().strip() if readable else ""
        if not line:
            self._proc.terminate()
            error = self._proc.communicate(timeout=self.timeout)[1].strip()
            self.stop()
            raise RuntimeError(f"dbus-daemon printed no address: {error}")
        self.address = line
        self._thread = threading.Thread(target=self._run, name="notification-daemon", daemon=True)
        self._thread.start()
        if not self._ready.wait(self.timeout) or self._error is not None:
            error = self._error
            self.stop()
            raise RuntimeError(f"the notification service did not start: {error!r}") from error
        return self.address

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None and self._thread is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(self.timeout)
            self._thread = None
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(self.timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            for stream in (self._proc.stdout, self._proc.stderr):
                if stream:
                    stream.close()
            self._proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "NotificationDaemon":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def env(self) -> dict[str, str]:
        """What the browser's environment needs to talk to this daemon."""
        return {"DBUS_SESSION_BUS_ADDRESS": self.address}

    # -- for the test thread ---------------------------------------------------------------------
    def wait_for(self, n: int = 1, timeout: float = 10.0) -> list[Notification]:
        """Block until at least n Notify calls have arrived; return them all (AssertionError on timeout)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.shown) >= n, timeout):
                raise AssertionError(f"expected {n} notification(s) within {timeout}s, got {self.shown!r}")
            return list(self.shown)

    def click(self, notification_id: int, action: str = "default") -> None:
        """A trusted click: emit ActionInvoked(id, action) as a desktop would."""
        self._call(self._emit("ActionInvoked", notification_id, action))

    def close(self, notification_id: int, reason: int = DISMISSED) -> None:
        """The user dismissed it: emit NotificationClosed(id, reason)."""
        self._forget(notification_id)
        self._call(self._emit("NotificationClosed", notification_id, reason))

    @property
    def open(self) -> list[Notification]:
        """Notifications shown and neither replaced nor closed."""
        with self._cond:
            return list(self._open.values())

    # -- internals ---------------------------------------------------------------------------------
    def _call(self, coro) -> Any:
        if self._loop is None:
            coro.close()
            raise RuntimeError("the notification daemon is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self.timeout)

    async def _emit(self, name: str, *args: Any) -> None:
        if name == "NotificationClosed":
            self._closed(*args)
        getattr(self._iface, name)(*args)

    def _closed(self, notification_id: int, reason: int) -> None:
        with self._cond:
            self.closed.append((notification_id, reason))
            self._cond.notify_all()

    def _record(self, name: str, args: tuple) -> None:
        with self._cond:
            self.calls.append((name, args))
            self._cond.notify_all()

    def _notify(self, app_name, replaces_id, icon, summary, body, actions, hints, timeout) -> int:
        with self._cond:
            self.calls.append(("Notify", (app_name, replaces_id, icon, summary, body, actions, hints, timeout)))
            if replaces_id and replaces_id in self._open:
                nid = replaces_id
            else:
                nid = self._next_id
                self._next_id += 1
            note = Notification(nid, app_name, replaces_id, icon, summary, body, actions, hints, timeout)
            self._open[nid] = note
            self.shown.append(note)
            self._cond.notify_all()
            return nid

    def _forget(self, notification_id: int) -> bool:
        with self._cond:
            note = self._open.pop(notification_id, None)
            if note is not None:
                note.closed = True
            self._cond.notify_all()
            return note is not None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as error:
            self._error = error
        finally:
            self._ready.set()
            loop.close()
            self._loop = None

    async def _serve(self) -> None:
        from dbus_next import BusType
        from dbus_next.aio import MessageBus
        from dbus_next.constants import RequestNameReply

        self._stopping = asyncio.Event()
        bus = await MessageBus(bus_address=self.address, bus_type=BusType.SESSION).connect()
        self._bus = bus
        try:
            self._iface = _make_interface(self)
            bus.export(OBJECT_PATH, self._iface)
            reply = await bus.request_name(BUS_NAME)
            if reply != RequestNameReply.PRIMARY_OWNER:
                raise RuntimeError(f"could not own {BUS_NAME}: {reply}")
            self._ready.set()
            await self._stopping.wait()
        finally:
            bus.disconnect()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(bus.wait_for_disconnect(), self.timeout)
            # dbus-next leaves its socket open after disconnecting.
            with contextlib.suppress(Exception):
                bus._stream.close()
                bus._sock.close()
