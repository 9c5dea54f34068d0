"""The HTTP client the push worker sends with: keep-alive HTTP/1.1 connections to each push
service, one request at a time on each, a deadline on every request, responses parsed by
httptools (llhttp, the parser uvicorn uses).

pywebpush prepares every request: ``WebPusher.send`` with a PushSession as its ``requests_session``
calls ``post(endpoint, data=…, headers=…, timeout=…)``, which writes the request down and returns a
``Pending``; ``PushSession.run`` then sends a batch of them. aiohttp's client, which pywebpush's own
``send_async`` uses, cost about 300 µs of CPU per push in bench/push.py, twice the encryption. Here a
request costs a write and a parse: when an answer arrives, its connection is given the next request
at once, in the same callback, with no task or coroutine per request.

Not pipelined: POST is not idempotent, so a request waits for the answer to the one before it on
the same connection (RFC 9112 § 9.3.2). Concurrency comes from several connections.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools

_HTTP_PORTS = {"http": 80, "https": 443}


class ConnectionDropped(ConnectionError):
    """The push service closed the connection (or sent what is not HTTP) before it answered."""


class InvalidEndpoint(ValueError):
    """An endpoint or header that cannot be written as an HTTP request."""


@dataclass(slots=True)
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased


@dataclass(slots=True, eq=False)
class _Target:
    key: tuple[str, str, int]  # scheme, host, port: the connections that can carry it
    host_header: str
    path: str


@dataclass(slots=True, eq=False)
class Pending:
    """A request written down by ``post``; after ``PushSession.run``, its reply or error.

    It also has the attributes of a requests.Response that ``WebPusher.send`` reads for its log
    line before handing it back."""

    target: _Target
    request: bytes
    timeout: float
    reply: Reply | None = None
    error: Exception | None = None
    status_code: int = 0
    text: str = ""
    headers: None = None


_Done = Callable[["_Connection", Reply | None, Exception | None], None]


class _Connection(asyncio.Protocol):
    """One keep-alive connection; ``request`` writes a whole request and calls ``done`` with its
    answer or error. The deadline aborts the connection (a late answer would belong to no one)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.done: _Done | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.headers: dict[str, str] = {}
        self.open = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.open = True

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:  # includes answers nobody asked for
            self._fail(ConnectionDropped(f"not HTTP: {type(exc).__name__}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self._settle(None, ConnectionDropped("connection closed before the answer"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_message_complete(self) -> None:
        reply = Reply(self.parser.get_status_code(), self.headers)
        self.headers = {}
        if not self.parser.should_keep_alive():
            self.close()
        self._settle(reply, None)

    # the client's side
    def request(self, data: bytes, timeout: float, done: _Done) -> None:
        self.done = done
        self.timer = self.loop.call_later(timeout, self._fail, TimeoutError())
        self.transport.write(data)  # type: ignore[union-attr]

    def close(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.abort()
        self._settle(None, exc)

    def _settle(self, reply: Reply | None, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        done, self.done = self.done, None
        if done is not None:
            done(self, reply, exc)


class PushSession:
    """Connections to push services, reused across requests and batches; ``close`` ends them."""

    def __init__(self, *, connect_timeout: float = 5.0) -> None:
        self.connect_timeout = connect_timeout
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._all: set[_Connection] = set()
        self._targets: dict[str, _Target] = {}
        self._tls: ssl.SSLContext | None = None

    def post(
        self, url: str, *, data: bytes | None = None, headers: dict | None = None, timeout: float = 10.0
    ) -> Pending:
        """What ``WebPusher.send`` calls: the request, written down to be sent by ``run``.
        Raises InvalidEndpoint for what cannot be written as an HTTP request."""
        body = data or b""
        target = self._target(url)
        lines = [f"POST {target.path} HTTP/1.1\r\nHost: {target.host_header}\r\nContent-Length: {len(body)}\r\n"]
        for name, value in (headers or {}).items():
            if name.lower() in ("host", "content-length"):
                continue
            line = f"{name}: {value}"
            if "\r" in line or "\n" in line:
                raise InvalidEndpoint("a header with a line break")
            lines.append(line + "\r\n")
        lines.append("\r\n")
        return Pending(target, "".join(lines).encode("latin-1") + body, timeout)

    async def run(self, requests: list[Pending], concurrency: int) -> None:
        """Send ``requests``, at most ``concurrency`` at a time, each within its own timeout (from
        when it is started, connecting included). Each ends with ``reply`` or ``error`` (TimeoutError;
        OSError: refused, unreachable, ConnectionDropped)."""
        if not requests:
            return
        loop = asyncio.get_running_loop()
        queue = deque(requests)
        finished = loop.create_future()
        state = {"active": 0, "left": len(requests)}
        connecting: set[asyncio.Task[None]] = set()

        def start_more() -> None:
            while queue and state["active"] < concurrency:
                item = queue.popleft()
                state["active"] += 1
                idle = self._idle.get(item.target.key)
                connection = None
                while idle:
                    candidate = idle.pop()
                    if candidate.open:
                        connection = candidate
                        break
                    self._all.discard(candidate)
                if connection is not None:
                    connection.request(item.request, item.timeout, lambda c, r, e, item=item: end(item, c, r, e))
                else:
                    task = loop.create_task(connect_and_send(item))
                    connecting.add(task)
                    task.add_done_callback(connecting.discard)

        async def connect_and_send(item: Pending) -> None:
            deadline = loop.time() + item.timeout
            try:
                connection = await self._connect(loop, item.target, min(item.timeout, self.connect_timeout))
            except Exception as exc:  # OSError, TimeoutError, or anything else: never left hanging
                end(item, None, None, exc)
                return
            remaining = max(deadline - loop.time(), 0.001)
            connection.request(item.request, remaining, lambda c, r, e: end(item, c, r, e))

        def end(item: Pending, connection: _Connection | None, reply: Reply | None, exc: Exception | None) -> None:
            item.reply, item.error = reply, exc
            if connection is not None:
                if connection.open:
                    self._idle.setdefault(item.target.key, []).append(connection)
                else:
                    self._all.discard(connection)
            state["active"] -= 1
            state["left"] -= 1
            if state["left"] == 0:
                if not finished.done():
                    finished.set_result(None)
            else:
                start_more()

        start_more()
        await finished

    def _target(self, url: str) -> _Target:
        target = self._targets.get(url)
        if target is None:
            parts = urlsplit(url)
            if parts.scheme not in _HTTP_PORTS or not parts.hostname:
                raise InvalidEndpoint("not an http(s) URL")
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            if any(c <= " " or c == "\x7f" for c in path):
                raise InvalidEndpoint("a path with spaces or control characters")
            port = parts.port or _HTTP_PORTS[parts.scheme]
            target = _Target((parts.scheme, parts.hostname, port), parts.netloc, path)
            if len(self._targets) > 10_000:
                self._targets.clear()
            self._targets[url] = target
        return target

    async def _connect(self, loop: asyncio.AbstractEventLoop, target: _Target, timeout: float) -> _Connection:
        scheme, host, port = target.key
        tls = None
        if scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        _, connection = await asyncio.wait_for(
            loop.create_connection(
                lambda: _Connection(loop), host, port, ssl=tls, server_hostname=host if tls else None
            ),
            timeout=max(timeout, 0.001),
        )
        self._all.add(connection)
        return connection

    async def close(self) -> None:
        for connection in self._all:
            connection.close()
        self._all.clear()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports finish closing
