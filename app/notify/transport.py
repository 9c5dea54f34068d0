"""The HTTP client the push worker sends with: keep-alive HTTP/1.1 connections to each push
service, one request at a time on each, a deadline on every request, responses parsed by
httptools (llhttp, the parser uvicorn uses).

pywebpush prepares every request (``WebPusher.send`` with this as its ``requests_session``: it calls
``post(endpoint, data=…, headers=…, timeout=…)`` and hands back what that returns, here an awaitable).
aiohttp's client, which pywebpush's own ``send_async`` uses, cost about 300 µs of CPU per push in
bench/push.py, twice the encryption; this costs a small fraction of that, because a push needs so
little of HTTP: a POST with a short body, and a status line and a few headers back.

Not pipelined: POST is not idempotent, so a request waits for the answer to the one before it
on the same connection (RFC 9112 § 9.3.2). Concurrency comes from several connections.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Coroutine, Generator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools

_HTTP_PORTS = {"http": 80, "https": 443}


class ConnectionDropped(ConnectionError):
    """The push service closed the connection (or sent what is not HTTP) before it answered."""


class InvalidEndpoint(ValueError):
    """An endpoint that cannot be written as an HTTP request line."""


@dataclass(slots=True)
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased


class PendingReply:
    """What ``post`` returns: awaited, it gives the Reply. It also has the attributes of a
    requests.Response that ``WebPusher.send`` reads for its log line before handing it back."""

    __slots__ = ("_coroutine",)
    status_code = 0
    text = ""
    headers = None

    def __init__(self, coroutine: Coroutine[None, None, Reply]) -> None:
        self._coroutine = coroutine

    def __await__(self) -> Generator[None, None, Reply]:
        return self._coroutine.__await__()


class _Connection(asyncio.Protocol):
    """One keep-alive connection. ``request`` writes a whole request and returns a future for its
    answer; the deadline aborts the connection (a late answer would belong to no one)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Reply] | None = None
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
    def request(self, data: bytes, timeout: float) -> asyncio.Future[Reply]:
        waiter = self.waiter = self.loop.create_future()
        self.timer = self.loop.call_later(timeout, self._fail, TimeoutError())
        self.transport.write(data)  # type: ignore[union-attr]
        return waiter

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
        waiter, self.waiter = self.waiter, None
        if waiter is None or waiter.done():
            return
        if exc is not None:
            waiter.set_exception(exc)
        else:
            waiter.set_result(reply)  # type: ignore[arg-type]


@dataclass(slots=True)
class _Target:
    key: tuple[str, str, int]  # scheme, host, port: the connections that can carry it
    host_header: str
    path: str


class PushSession:
    """Connections to push services, reused across requests and batches; ``close`` ends them.

    No limit of its own: the worker's lanes (PUSH_CONCURRENCY) each wait for their answer before
    sending again, so there are never more connections than lanes."""

    def __init__(self, *, connect_timeout: float = 5.0) -> None:
        self.connect_timeout = connect_timeout
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._all: set[_Connection] = set()
        self._targets: dict[str, _Target] = {}
        self._tls: ssl.SSLContext | None = None

    def post(
        self, url: str, *, data: bytes | None = None, headers: dict | None = None, timeout: float = 10.0
    ) -> PendingReply:
        """What ``WebPusher.send`` calls. Awaiting the result gives the Reply, or raises
        TimeoutError, OSError (refused, unreachable; ConnectionDropped) or InvalidEndpoint."""
        return PendingReply(self._post(url, data or b"", headers or {}, timeout))

    async def _post(self, url: str, body: bytes, headers: dict, timeout: float) -> Reply:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        target = self._target(url)
        lines = [f"POST {target.path} HTTP/1.1\r\nHost: {target.host_header}\r\nContent-Length: {len(body)}\r\n"]
        for name, value in headers.items():
            if name.lower() in ("host", "content-length"):
                continue
            line = f"{name}: {value}"
            if "\r" in line or "\n" in line:
                raise InvalidEndpoint("a header with a line break")
            lines.append(line + "\r\n")
        lines.append("\r\n")
        request = "".join(lines).encode("latin-1") + body
        idle = self._idle.get(target.key)
        while idle:
            connection = idle.pop()
            if connection.open:
                break
        else:
            connection = await self._connect(loop, target, deadline)
        reply = await connection.request(request, max(deadline - loop.time(), 0.001))
        if connection.open:
            self._idle.setdefault(target.key, []).append(connection)
        else:
            self._all.discard(connection)
        return reply

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

    async def _connect(self, loop: asyncio.AbstractEventLoop, target: _Target, deadline: float) -> _Connection:
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
            timeout=max(min(deadline - loop.time(), self.connect_timeout), 0.001),
        )
        self._all.add(connection)
        return connection

    async def close(self) -> None:
        for connection in self._all:
            connection.close()
        self._all.clear()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports finish closing
