"""The push worker's HTTP client (app/notify/transport.py) against raw servers that answer exactly
as scripted: keep-alive reuse, Connection: close, chunked answers, garbage, hangs, drops, refusals.
The worker's behaviour on each answer class is tested end to end in test_push_delivery.py."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from app.notify.transport import ConnectionDropped, InvalidEndpoint, PushSession

CREATED = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"


class RawServer:
    """Reads one request head + Content-Length body at a time and answers with ``answer(n)``
    (bytes, or None to drop the connection, or "hang" to never answer)."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    def url(self, path: str = "/push/abc") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                reply = self.answer(len(self.requests))
                if reply == "hang":
                    await asyncio.sleep(30)
                    return
                if reply is None:
                    return
                writer.write(reply)
                await writer.drain()
                if b"connection: close" in reply.lower():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


def run(coroutine):
    return asyncio.run(coroutine)


def test_requests_are_written_as_prepared_and_connections_kept_alive():
    async def scenario():
        async with RawServer(lambda n: CREATED) as server:
            session = PushSession()
            pending = [
                session.post(server.url(f"/push/{i}?x=1"), data=b"\x00body", headers={"TTL": "60", "Topic": "t"})
                for i in range(20)
            ]
            await session.run(pending, concurrency=2)
            second = [session.post(server.url(), data=b"again", headers={}) for _ in range(4)]
            await session.run(second, concurrency=2)
            await session.close()
            return server, pending + second

    server, pending = run(scenario())
    assert [p.reply.status for p in pending] == [201] * 24
    assert server.connections == 2  # two lanes, reused for every request and across batches
    first = server.requests[0]
    assert first.startswith(b"POST /push/") and b"?x=1 HTTP/1.1\r\n" in first
    assert b"\r\nHost: 127.0.0.1:" in first and b"\r\nContent-Length: 5\r\n" in first
    assert b"\r\nTTL: 60\r\n" in first and first.endswith(b"\r\n\r\n\x00body")


def test_connection_close_and_chunked_answers_with_headers():
    answers = {
        1: b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 30\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno",
        2: b"HTTP/1.1 410 Gone\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ngone\r\n0\r\n\r\n",
        3: CREATED,
    }

    async def scenario():
        async with RawServer(lambda n: answers[n]) as server:
            session = PushSession()
            pending = [session.post(server.url(), data=b"x") for _ in range(3)]
            await session.run(pending, concurrency=1)
            await session.close()
            return server, pending

    server, pending = run(scenario())
    assert [(p.reply.status, p.reply.headers.get("retry-after")) for p in pending] == [
        (429, "30"),
        (410, None),
        (201, None),
    ]
    assert server.connections == 2  # a new connection after "Connection: close", then kept


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (lambda n: b"SMTP ready\r\n\r\n", ConnectionDropped),  # not HTTP
        (lambda n: None, ConnectionDropped),  # closed without an answer
        (
            lambda n: b"HTTP/1.1 201 Created\r\nContent-Length: 10\r\nConnection: close\r\n\r\nabc",
            ConnectionDropped,
        ),  # cut short
    ],
)
def test_broken_answers_end_in_an_error(answer, error):
    async def scenario():
        async with RawServer(lambda n: answer(n)) as server:
            session = PushSession()
            pending = [session.post(server.url(), data=b"x")]
            await session.run(pending, concurrency=4)
            await session.close()
            return pending[0]

    result = run(scenario())
    assert result.reply is None and isinstance(result.error, error)


def test_a_hanging_push_service_times_out_and_the_rest_still_go():
    async def scenario():
        async with RawServer(lambda n: "hang" if n == 1 else CREATED) as server:
            session = PushSession()
            pending = [session.post(server.url(), data=b"x", timeout=0.3) for _ in range(5)]
            started = time.monotonic()
            await session.run(pending, concurrency=2)
            elapsed = time.monotonic() - started
            await session.close()
            return pending, elapsed

    pending, elapsed = run(scenario())
    assert isinstance(pending[0].error, TimeoutError)
    assert [p.reply.status for p in pending[1:]] == [201] * 4
    assert 0.25 < elapsed < 2


def test_a_refused_connection_is_an_os_error_and_does_not_hold_up_others():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]

    async def scenario():
        async with RawServer(lambda n: CREATED) as server:
            session = PushSession()
            pending = [
                session.post(f"http://127.0.0.1:{closed_port}/push/x", data=b"x"),
                session.post(server.url(), data=b"x"),
            ]
            await session.run(pending, concurrency=8)
            await session.close()
            return pending

    refused, fine = run(scenario())
    assert isinstance(refused.error, OSError) and refused.reply is None
    assert fine.reply.status == 201


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("http://127.0.0.1:1/push/a b", {}),
        ("http://127.0.0.1:1/push/a\r\nX-Injected: 1", {}),
        ("ftp://127.0.0.1/push/a", {}),
        ("http://127.0.0.1:1/push/a", {"Topic": "a\r\nX-Injected: 1"}),
    ],
)
def test_what_cannot_be_an_http_request_is_refused_before_sending(url, headers):
    with pytest.raises(InvalidEndpoint):
        PushSession().post(url, data=b"x", headers=headers)
