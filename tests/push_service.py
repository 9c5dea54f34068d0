"""A web push service of the tests' own, on 127.0.0.1, in a background thread (or a process of its own).

Nothing on these machines reaches a real push service, so the tests point subscription endpoints here.
Every POST is checked the way a strict push service would (RFC 8030, 8291, 8292), then decrypted with
the private key of the subscription the test created, so a test can assert the exact payload:

    with PushService() as service:
        subscriber, subscription = service.subscribe("kari-phone")
        ... register ``subscription`` with the app, make the app send ...
        [message] = service.wait_for(1)
        assert message.json() == {...} and message.ttl == 3600 and message.urgency == "high"
        service.assert_no_rejections()

What is checked (a failure is answered 400/401/403/404/413 and kept in ``rejected`` with its reason):
``Authorization: vapid t=<JWT>,k=<key>`` (JWT header alg ES256, signature by ``k``, ``aud`` == this
service's origin, ``exp`` in the future and at most 24 h ahead, ``sub`` starting with ``mailto:`` or
``https:``); ``TTL`` a non-negative integer; ``Urgency`` one of very-low/low/normal/high; ``Topic`` at most
32 base64url characters; ``Content-Encoding: aes128gcm``; a non-empty body of at most 4096 bytes
(``max_body``, ``allow_empty``); an endpoint the test subscribed (unknown → 404); a body that decrypts
(RFC 8291, one record, padding delimiter 0x02). A verification failure never consumes a scripted answer.

Scripted answers (per endpoint name, consumed in order, then 201 Created with a Location header):
``script(name, 410)``, ``script(name, 429, retry_after=2)``, ``script(name, 500)``, ``script(name, 413)``,
``script(name, "hang", seconds=5)`` (answer late, so the client's timeout fires), ``script(name, "close")``
(drop the connection without answering), ``script(name, callback)`` (``callback(received)`` runs in a
worker thread after decrypting and before answering, e.g. to kill the sender between "sent" and
"marked"). ``hang`` and a callback answer ``then`` afterwards (default 201). ``unsubscribe(name)`` makes an
endpoint answer 410 Gone for good, as after the browser unsubscribed.

What the records mean — read this before asserting delivery:
* ``attempts``: every request that passed verification, in arrival order, with the status answered
  (``None`` while pending or when the connection was dropped by ``"close"``); each carries the
  decrypted message, so a test sees what a refused request would have delivered.
* ``received``: the messages the service *accepted* (decided to answer 2xx) — what the device gets.
  A message is in it even when the sender never saw the 201: after a ``"hang"`` that the client gave up
  on, or a callback that killed the sender. So at-least-once is "every expected message id is in
  ``received``" and duplicates are legal (count them with ``Counter``; exactly-once cannot be promised
  by a sender that may die between "sent" and "marked"). Scripted non-2xx answers and ``"close"`` are
  not deliveries: a test that the app *retries* after 429/500/timeout asserts the id shows up in
  ``received`` after the failed attempt in ``attempts``.
* ``rejected``: requests that failed verification — a bug in the sender; tests assert it stays empty
  (``assert_no_rejections()``, which also reports exceptions raised by callbacks).

Modes: ``verify=False`` accepts anything and only counts (the benchmark; scripts still apply);
``decrypt=False`` verifies the headers and the aes128gcm header but does not decrypt (any endpoint name is
then accepted); ``keep=False`` keeps counters only (``count``, ``summary()``), not messages or attempts.
JWT signature checks are cached per (token, key): the sender signs once per origin and reuses it; ``exp``
and ``aud`` are still checked on every request.

Other helpers: ``register(name, subscriber)`` for a Subscriber made elsewhere; ``wait_for_attempts(n)``;
``connections`` (opened so far: keep-alive shows as far fewer than requests); ``reset()``;
``vapid_authorization(key, aud)`` and ``sign_jwt(key, claims, header)`` to craft headers by hand.
pywebpush given a py_vapid ``Vapid01`` signs with the draft ``WebPush <jwt>`` + ``Crypto-Key`` scheme,
refused here (401) as by push services that want RFC 8292; ``Vapid`` (= ``Vapid02``), a PEM or a
base64url private key give ``vapid t=…,k=…``.

As a process of its own (decrypting needs the keys, so it never decrypts there):

    python -m tests.push_service --port 8765 [--no-verify]

prints ``listening http://127.0.0.1:PORT`` when ready, serves ``GET /count`` (JSON counters;
``DELETE /count`` resets them) and prints the counters as JSON on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import binascii
import contextlib
import itertools
import json
import os
import re
import signal
import socket
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAX_EXP_AHEAD = 24 * 60 * 60  # RFC 8292 §2: exp MUST NOT be more than 24 hours from the request
URGENCIES = frozenset({"very-low", "low", "normal", "high"})
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_NAME = re.compile(r"^[A-Za-z0-9._~-]{1,200}$")
_JWT_CACHE_SIZE = 4096


# --- base64url and VAPID signing ------------------------------------------------------------------


_TO_URL = str.maketrans("+/", "-_")
_FROM_URL = str.maketrans("-_", "+/")


def b64url_encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode().translate(_TO_URL).rstrip("=")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding (as JWTs, ``k`` and the subscription keys are written)."""
    if not _B64URL.match(text) or len(text) % 4 == 1:
        raise ValueError(f"not unpadded base64url: {text[:40]!r}")
    return binascii.a2b_base64((text.translate(_FROM_URL) + "==")[: len(text) + (-len(text) % 4)])


def public_bytes(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    """The uncompressed point (65 bytes) of a P-256 key."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def sign_jwt(
    private_key: ec.EllipticCurvePrivateKey, claims: dict[str, Any], header: dict[str, Any] | None = None
) -> str:
    """An ES256 JWT over ``claims`` exactly as given (nothing added or checked: tests craft bad ones)."""
    head = b64url_encode(json.dumps(header or {"typ": "JWT", "alg": "ES256"}, separators=(",", ":")).encode())
    body = b64url_encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{head}.{body}"
    r, s = decode_dss_signature(private_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64url_encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def vapid_authorization(
    private_key: ec.EllipticCurvePrivateKey,
    aud: str,
    sub: str = "mailto:ops@varde.test",
    exp: float | None = None,
) -> str:
    """An ``Authorization`` header value ``vapid t=…,k=…`` (exp defaults to 12 h ahead)."""
    claims = {"aud": aud, "exp": int(exp if exp is not None else time.time() + 12 * 3600), "sub": sub}
    return f"vapid t={sign_jwt(private_key, claims)},k={b64url_encode(public_bytes(private_key))}"


# --- the subscriber's side: keys and RFC 8291 decryption -------------------------------------------


class DecryptError(ValueError):
    """The body is not one well-formed RFC 8291 aes128gcm record for this subscriber."""


@dataclass(eq=False)
class Subscriber:
    """A browser's push subscription keys: a P-256 key pair and a 16-byte auth secret."""

    private_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def __post_init__(self) -> None:
        if len(self.auth) != 16:
            raise ValueError("the auth secret is 16 bytes")
        self.public = public_bytes(self.private_key)

    @property
    def keys(self) -> dict[str, str]:
        return {"p256dh": b64url_encode(self.public), "auth": b64url_encode(self.auth)}

    def subscription(self, endpoint: str) -> dict[str, Any]:
        """What ``PushSubscription.toJSON()`` gives the page (without expirationTime)."""
        return {"endpoint": endpoint, "keys": self.keys}

    def decrypt(self, body: bytes) -> bytes:
        """The plaintext of an RFC 8291 ``aes128gcm`` body (a single record); DecryptError otherwise."""
        if len(body) < 21:
            raise DecryptError(f"body of {len(body)} bytes is shorter than the aes128gcm header")
        salt, rs, idlen = body[:16], int.from_bytes(body[16:20], "big"), body[20]
        if rs < 18:
            raise DecryptError(f"record size {rs} < 18")
        if idlen != 65:
            raise DecryptError(f"keyid must be the sender's 65-byte public key (RFC 8291 §4), idlen is {idlen}")
        sender_public = body[21:86]
        record = body[86:]
        if len(sender_public) != 65 or sender_public[0] != 4:
            raise DecryptError("keyid is not an uncompressed P-256 point")
        if len(record) > rs:
            raise DecryptError(f"{len(record)} bytes of records with rs={rs}: more than one record (not supported)")
        if len(record) < 17:
            raise DecryptError(f"record of {len(record)} bytes cannot hold a tag and a delimiter")
        try:
            sender_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender_public)
        except ValueError as e:
            raise DecryptError(f"keyid is not a point on P-256: {e}") from None
        ecdh_secret = self.private_key.exchange(ec.ECDH(), sender_key)
        key_info = b"WebPush: info\x00" + self.public + sender_public
        ikm = HKDF(hashes.SHA256(), 32, salt=self.auth, info=key_info).derive(ecdh_secret)
        cek = HKDF(hashes.SHA256(), 16, salt=salt, info=b"Content-Encoding: aes128gcm\x00").derive(ikm)
        nonce = HKDF(hashes.SHA256(), 12, salt=salt, info=b"Content-Encoding: nonce\x00").derive(ikm)
        try:
            padded = AESGCM(cek).decrypt(nonce, record, None)
        except InvalidTag:
            raise DecryptError("authentication tag does not verify (wrong keys or a damaged body)") from None
        unpadded = padded.rstrip(b"\x00")
        if not unpadded:
            raise DecryptError("no padding delimiter")
        if unpadded[-1] != 2:
            raise DecryptError(f"padding delimiter is {unpadded[-1]:#04x}, not 0x02 (last record)")
        return unpadded[:-1]


# --- what the service records ----------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One message as the push service saw it (payload is None when the service does not decrypt)."""

    name: str
    payload: bytes | None
    ttl: int | None
    urgency: str | None
    topic: str | None
    claims: dict[str, Any]
    vapid_key: str | None = field(repr=False)
    headers: dict[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    at: float = field(default_factory=time.time)

    def json(self) -> Any:
        if self.payload is None:
            raise ValueError("the service was started with decrypt=False")
        return json.loads(self.payload)

    def text(self) -> str:
        if self.payload is None:
            raise ValueError("the service was started with decrypt=False")
        return self.payload.decode()


@dataclass(eq=False)
class Attempt:
    """One request: ``outcome`` is pending, accepted (2xx), refused (other status), closed or rejected."""

    name: str
    outcome: str
    status: int | None
    reason: str = ""
    message: Received | None = None
    at: float = field(default_factory=time.time)

    @property
    def rejected(self) -> bool:
        return self.outcome == "rejected"


class Rejected(Exception):
    """A request the push service refuses: answered ``status`` with ``reason`` as the body."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class _Script:
    kind: str  # "status", "hang", "close", "callback"
    status: int = 201
    retry_after: str | None = None
    seconds: float = 0.0
    callback: Callable[[Received], object] | None = None


Behaviour = int | str | Callable[[Received], object]


# --- the HTTP/1.1 side: a small asyncio protocol --------------------------------------------------
#
# Not aiohttp's server: on this machine kind (2 cores), driven by a lean keep-alive client, a bare aiohttp
# POST handler served ~2,900–4,700 req/s at a full core; this protocol (no-verify) ~9,000–12,000 req/s,
# leaving the benchmark's sender its CPU. It speaks what push senders send: requests with Content-Length
# (chunked bodies are answered 411 and recorded as rejected), keep-alive, pipelining, Expect: 100-continue.

_MAX_HEAD = 64 * 1024
_MAX_REQUEST_BODY = 1 << 20


class _Answer:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: tuple[tuple[str, str], ...] = (), body: bytes | str = b"") -> None:
        self.status, self.headers = status, headers
        self.body = body.encode() if isinstance(body, str) else body

    def encode(self, keep_alive: bool = True) -> bytes:
        try:
            phrase = HTTPStatus(self.status).phrase
        except ValueError:
            phrase = "Status"
        lines = [f"HTTP/1.1 {self.status} {phrase}", *(f"{k}: {v}" for k, v in self.headers)]
        lines.append(f"Content-Length: {len(self.body)}")
        if not keep_alive:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


_CLOSE = object()  # answer nothing, drop the connection
_Result = _Answer | object | Coroutine[Any, Any, Any]


class _Connection(asyncio.Protocol):
    def __init__(self, service: PushService) -> None:
        self.service = service
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False  # an answer is being worked out asynchronously (hang, callback)
        self.closed = False
        self.continued = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.service._connections.add(self)
        self.service._opened += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.service._connections.discard(self)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self._process()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _process(self) -> None:
        assert self.transport is not None
        out: list[bytes] = []
        while not self.busy and not self.closed:
            request = self._parse()
            if request is None:
                break
            if isinstance(request, _Answer):  # malformed HTTP: answer and hang up
                out.append(request.encode(keep_alive=False))
                self.transport.write(b"".join(out))
                self.transport.close()
                self.closed = True
                return
            method, target, headers, body, keep_alive = request
            result = self.service._dispatch(method, target, headers, body)
            if isinstance(result, _Answer):
                if result is self.service._fast_answer and keep_alive:
                    out.append(self.service._fast_bytes)
                else:
                    out.append(result.encode(keep_alive))
                if not keep_alive:
                    self.closed = True
            elif result is _CLOSE:
                if out:
                    self.transport.write(b"".join(out))
                self.abort()
                return
            else:
                self.busy = True
                self.service._spawn(self._later(result, keep_alive))  # type: ignore[arg-type]
        if out:
            self.transport.write(b"".join(out))
        if self.closed:
            self.transport.close()

    async def _later(self, pending: Coroutine[Any, Any, Any], keep_alive: bool) -> None:
        try:
            result = await pending
        except asyncio.CancelledError:
            self.abort()
            raise
        if self.closed or self.transport is None:
            return  # the client gave up (its timeout): the answer is lost, as on a real network
        if result is _CLOSE:
            self.abort()
            return
        self.transport.write(result.encode(keep_alive))
        if not keep_alive:
            self.closed = True
            self.transport.close()
            return
        self.busy = False
        if self.buf:
            self._process()

    def _parse(self) -> tuple[str, str, dict[str, str], bytes, bool] | _Answer | None:
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return self.service._protocol_error(431, "request head too large") if len(buf) > _MAX_HEAD else None
        lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
            return self.service._protocol_error(400, f"bad request line {lines[0][:80]!r}")
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                return self.service._protocol_error(400, f"bad header line {line[:80]!r}")
            name, value = name.lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if "transfer-encoding" in headers:
            return self.service._protocol_error(411, "Transfer-Encoding is not supported here: send Content-Length")
        length = headers.get("content-length", "0")
        if not length.isascii() or not length.isdigit():
            return self.service._protocol_error(400, f"bad Content-Length {length!r}")
        size = int(length)
        if size > _MAX_REQUEST_BODY:
            return self.service._protocol_error(413, f"request body of {size} bytes")
        total = end + 4 + size
        if len(buf) < total:
            if not self.continued and headers.get("expect", "").lower() == "100-continue":
                self.continued = True
                assert self.transport is not None
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            return None
        body = bytes(buf[end + 4 : total])
        del buf[:total]
        self.continued = False
        connection = headers.get("connection", "").lower()
        keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        return method, target, headers, body, keep_alive


# --- the service -----------------------------------------------------------------------------------


class PushService:
    """An HTTP/1.1 push service (keep-alive) on ``host``, a free port unless given; see the module docstring."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        verify: bool = True,
        decrypt: bool = True,
        keep: bool = True,
        max_body: int = 4096,
        allow_empty: bool = False,
    ) -> None:
        self.host, self.verify, self.decrypt, self.keep = host, verify, decrypt, keep
        self.max_body, self.allow_empty = max_body, allow_empty
        self._requested_port = port
        self.port = 0
        self._cond = threading.Condition()
        self._subscribers: dict[str, Subscriber] = {}
        self._gone: set[str] = set()
        self._scripts: dict[str, deque[_Script]] = {}
        self._received: list[Received] = []
        self._attempts: list[Attempt] = []
        self._rejected: list[Attempt] = []
        self._errors: list[str] = []
        self._count = 0
        self._statuses: Counter[int] = Counter()
        self._jwt_cache: dict[tuple[str, str], dict[str, Any] | Rejected] = {}
        self._ids = itertools.count(1)
        self._names = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._opened = 0
        self._fast_answer = _Answer(201)
        self._fast_bytes = b""

    # lifecycle

    def start(self) -> PushService:
        if self._thread is not None:
            raise RuntimeError("already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self.port = sock.getsockname()[1]
        self._fast_answer = _Answer(201, (("Location", f"{self.origin}/message/0"),))
        self._fast_bytes = self._fast_answer.encode()
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        async def serve() -> None:
            self._server = await loop.create_server(lambda: _Connection(self), sock=sock, backlog=1024)

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(serve())
            except BaseException as e:
                failure.append(e)
                sock.close()
                return
            finally:
                ready.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=f"push-service-{self.port}", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure or self._server is None:
            self._thread.join(1)
            loop.close()
            self._thread = self._loop = None
            raise RuntimeError(f"push service did not start: {failure}")
        return self

    def stop(self) -> None:
        """Close the port, drop open connections, cancel answers still pending (a hang, a callback)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = self._server = None

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(TimeoutError):  # callbacks run in the default executor's threads
            await asyncio.wait_for(asyncio.get_running_loop().shutdown_default_executor(), 2)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def __enter__(self) -> PushService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # addresses and subscriptions

    @property
    def origin(self) -> str:
        if not self.port:
            raise RuntimeError("not started")
        return f"http://{self.host}:{self.port}"

    def endpoint(self, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(f"endpoint names are URL-safe: {name!r}")
        return f"{self.origin}/push/{name}"

    def register(self, name: str, subscriber: Subscriber) -> dict[str, Any]:
        """Accept pushes to ``endpoint(name)``, decrypted with ``subscriber``; returns the subscription."""
        endpoint = self.endpoint(name)
        with self._cond:
            if name in self._subscribers:
                raise ValueError(f"endpoint {name!r} is taken")
            self._subscribers[name] = subscriber
        return subscriber.subscription(endpoint)

    def subscribe(self, name: str | None = None) -> tuple[Subscriber, dict[str, Any]]:
        """A new Subscriber registered at a new endpoint; returns it and its subscription dict."""
        if name is None:
            name = f"sub-{next(self._names)}-{os.urandom(4).hex()}"
        subscriber = Subscriber()
        return subscriber, self.register(name, subscriber)

    def unsubscribe(self, name: str) -> None:
        """From now on the endpoint answers 410 Gone (as after the browser unsubscribed)."""
        with self._cond:
            self._gone.add(name)

    @staticmethod
    def name_of(endpoint: str) -> str:
        """The name in an endpoint URL made by ``endpoint(name)``."""
        return endpoint.rsplit("/push/", 1)[1]

    # scripted answers

    def script(
        self,
        name: str,
        behaviour: Behaviour,
        *,
        retry_after: float | str | None = None,
        seconds: float = 5.0,
        then: int = 201,
        times: int = 1,
    ) -> None:
        """Queue ``times`` answers for the next verified requests to ``name`` (see the module docstring)."""
        if isinstance(behaviour, bool):
            raise TypeError("behaviour is a status, 'hang', 'close' or a callable")
        if isinstance(behaviour, int):
            if not 200 <= behaviour <= 599:
                raise ValueError(f"not an HTTP status: {behaviour}")
            step = _Script("status", behaviour, None if retry_after is None else str(retry_after))
        elif behaviour == "hang":
            step = _Script("hang", then, None, float(seconds))
        elif behaviour == "close":
            step = _Script("close", 0)
        elif callable(behaviour):
            step = _Script("callback", then, callback=behaviour)
        else:
            raise ValueError(f"unknown behaviour {behaviour!r}")
        with self._cond:
            self._scripts.setdefault(name, deque()).extend([step] * times)

    # what happened (snapshots, safe to read from any thread)

    @property
    def received(self) -> list[Received]:
        with self._cond:
            return list(self._received)

    @property
    def attempts(self) -> list[Attempt]:
        with self._cond:
            return list(self._attempts)

    @property
    def rejected(self) -> list[Attempt]:
        with self._cond:
            return list(self._rejected)

    @property
    def errors(self) -> list[str]:
        with self._cond:
            return list(self._errors)

    @property
    def count(self) -> int:
        """Accepted messages (also counted when ``keep`` is False or ``verify`` is off)."""
        with self._cond:
            return self._count

    @property
    def connections(self) -> int:
        """Connections opened so far: with keep-alive, far fewer than requests."""
        return self._opened

    def summary(self) -> dict[str, Any]:
        with self._cond:
            return {
                "received": self._count,
                "connections": self._opened,
                "rejected": len(self._rejected),
                "statuses": {str(k): v for k, v in sorted(self._statuses.items())},
                "first_rejections": [f"{a.status} {a.name}: {a.reason}" for a in self._rejected[:10]],
                "errors": self._errors[:10],
            }

    def reset(self) -> None:
        """Forget what happened (subscriptions and scripts stay)."""
        with self._cond:
            self._received.clear()
            self._attempts.clear()
            self._rejected.clear()
            self._errors.clear()
            self._statuses.clear()
            self._count = 0
            self._opened = 0

    def wait_for(self, n: int, timeout: float = 5.0, name: str | None = None) -> list[Received]:
        """Block until at least ``n`` messages were accepted (for ``name`` if given); return them all.

        With ``keep=False`` only the count is kept: it waits for ``count >= n`` and returns [].
        """

        def matching() -> list[Received]:
            return [r for r in self._received if name is None or r.name == name]

        with self._cond:
            if not self.keep:
                if name is not None:
                    raise ValueError("keep=False keeps no names")
                if self._cond.wait_for(lambda: self._count >= n, timeout):
                    return []
                got = self._count
            elif self._cond.wait_for(lambda: len(matching()) >= n, timeout):
                return matching()
            else:
                got = len(matching())
            raise TimeoutError(f"push service: {got} of {n} messages after {timeout} s{self._diagnosis()}")

    def wait_for_attempts(self, n: int, timeout: float = 5.0, name: str | None = None) -> list[Attempt]:
        """Block until at least ``n`` verified requests were answered (for ``name`` if given); return them."""

        def matching() -> list[Attempt]:
            return [a for a in self._attempts if (name is None or a.name == name) and a.outcome != "pending"]

        with self._cond:
            if self._cond.wait_for(lambda: len(matching()) >= n, timeout):
                return matching()
            raise TimeoutError(f"push service: {len(matching())} of {n} attempts after {timeout} s{self._diagnosis()}")

    def assert_no_rejections(self) -> None:
        """Fail listing every rejected request and every exception raised by a callback."""
        with self._cond:
            problems = [f"{a.status} {a.name}: {a.reason}" for a in self._rejected] + self._errors
        assert not problems, "push service rejected requests:\n  " + "\n  ".join(problems)

    def _diagnosis(self) -> str:
        lines = [f"{a.status} {a.name}: {a.reason}" for a in self._rejected[:5]] + self._errors[:5]
        pending = sum(len(q) for q in self._scripts.values())
        text = f"; {len(self._attempts)} attempts, statuses {dict(self._statuses)}"
        if pending:
            text += f", {pending} scripted answers unused"
        return text + ("; rejected:\n  " + "\n  ".join(lines) if lines else "")

    # answering (on the service's event loop)

    def _dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes) -> _Result:
        path = target.partition("?")[0]
        if path.startswith("/push/"):
            name = path[6:]
            if method != "POST":
                return self._reject(name, 405, f"{method} on a push endpoint")
            if not self.verify and not self._scripts and not self._gone:
                with self._cond:  # the benchmark's path: count and answer
                    self._count += 1
                    self._statuses[201] += 1
                    self._cond.notify_all()
                return self._fast_answer
            return self._push(name, headers, body)
        if path == "/count" and method in ("GET", "DELETE"):
            if method == "DELETE":
                self.reset()
            return _Answer(200, (("Content-Type", "application/json"),), json.dumps(self.summary()))
        return self._reject(path[:80], 404, f"{method} {path[:80]}: no such resource")

    def _protocol_error(self, status: int, reason: str) -> _Answer:
        return self._reject("-", status, f"HTTP: {reason}")

    def _reject(self, name: str, status: int, reason: str) -> _Answer:
        with self._cond:
            self._rejected.append(Attempt(name, "rejected", status, reason))
            self._statuses[status] += 1
            self._cond.notify_all()
        return _Answer(status, (("Content-Type", "text/plain"),), reason)

    def _push(self, name: str, headers: dict[str, str], body: bytes) -> _Result:
        try:
            message = self._verified(name, headers, body) if self.verify else self._unverified(name, headers, body)
        except Rejected as e:
            return self._reject(name, e.status, e.reason)

        attempt = Attempt(name, "pending", None, message=message)
        with self._cond:
            if self.keep:
                self._attempts.append(attempt)
            gone = name in self._gone
            queue = self._scripts.get(name)
            step = queue.popleft() if queue else _Script("status", 201)

        if gone:
            return self._finish(attempt, 410, reason="unsubscribed")
        if step.kind == "status":
            return self._finish(attempt, step.status, step.retry_after)
        if step.kind == "close":
            self._finish(attempt, None, reason="connection closed without an answer")
            return _CLOSE
        return self._answer_later(attempt, step)

    async def _answer_later(self, attempt: Attempt, step: _Script) -> _Answer:
        assert attempt.message is not None
        if step.kind == "hang":
            await asyncio.sleep(step.seconds)
            return self._finish(attempt, step.status, reason=f"answered after {step.seconds} s")
        assert step.callback is not None
        try:
            await asyncio.to_thread(step.callback, attempt.message)
        except Exception as e:
            with self._cond:
                self._errors.append(f"callback for {attempt.name} raised {e!r}")
            return self._finish(attempt, 500, reason=f"callback raised {e!r}")
        return self._finish(attempt, step.status, reason="after the callback")

    def _finish(
        self, attempt: Attempt, status: int | None, retry_after: str | None = None, reason: str = ""
    ) -> _Answer:
        """Settle an attempt: 2xx is a delivery (``received``); anything else is not."""
        accepted = status is not None and 200 <= status < 300
        with self._cond:
            attempt.status, attempt.reason = status, reason
            attempt.outcome = "accepted" if accepted else ("closed" if status is None else "refused")
            if status is not None:
                self._statuses[status] += 1
            if accepted:
                self._count += 1
                if self.keep and attempt.message is not None:
                    self._received.append(attempt.message)
            self._cond.notify_all()
        headers: list[tuple[str, str]] = []
        if accepted:
            headers.append(("Location", f"{self.origin}/message/{next(self._ids)}"))
            if attempt.message is not None and attempt.message.ttl is not None:
                headers.append(("TTL", str(attempt.message.ttl)))  # RFC 8030 §5.2: the TTL applied
        if retry_after is not None:
            headers.append(("Retry-After", retry_after))
        return _Answer(status or 500, tuple(headers), f"{attempt.outcome} {reason}".strip())

    def _unverified(self, name: str, headers: dict[str, str], body: bytes) -> Received:
        ttl = headers.get("ttl", "")
        return Received(
            name=name,
            payload=None,
            ttl=int(ttl) if ttl.isascii() and ttl.isdigit() else None,
            urgency=headers.get("urgency"),
            topic=headers.get("topic"),
            claims={},
            vapid_key=None,
            headers=headers,
            body=body,
        )

    def _verified(self, name: str, headers: dict[str, str], body: bytes) -> Received:
        claims, key = self._check_vapid(headers.get("authorization"), time.time())

        ttl_text = headers.get("ttl")
        if ttl_text is None:
            raise Rejected(400, "no TTL header (RFC 8030 §5.2: the push service MUST answer 400)")
        if not ttl_text.isascii() or not ttl_text.isdigit():
            raise Rejected(400, f"TTL is not a non-negative integer: {ttl_text!r}")
        urgency = headers.get("urgency")
        if urgency is not None and urgency not in URGENCIES:
            raise Rejected(400, f"Urgency {urgency!r} is not one of {sorted(URGENCIES)}")
        topic = headers.get("topic")
        if topic is not None and (not topic or len(topic) > 32 or not _B64URL.match(topic)):
            raise Rejected(400, f"Topic {topic!r} is not 1–32 base64url characters (RFC 8030 §5.4)")

        if not body:
            if not self.allow_empty:
                raise Rejected(400, "empty body: a push without payload (allow_empty=False)")
        else:
            encoding = headers.get("content-encoding")
            if encoding != "aes128gcm":
                raise Rejected(400, f"Content-Encoding must be aes128gcm (RFC 8291), got {encoding!r}")
            if len(body) > self.max_body:
                raise Rejected(413, f"body of {len(body)} bytes > {self.max_body} (RFC 8030 §7.2)")

        payload: bytes | None = None
        if self.decrypt:
            with self._cond:
                subscriber = self._subscribers.get(name)
            if subscriber is None:
                raise Rejected(404, f"no subscription at endpoint {name!r} (not subscribed in this test)")
            try:
                payload = subscriber.decrypt(body) if body else b""
            except DecryptError as e:
                raise Rejected(400, f"cannot decrypt: {e}") from None
        elif body:
            _check_aes128gcm_header(body)
        return Received(
            name=name,
            payload=payload,
            ttl=int(ttl_text),
            urgency=urgency,
            topic=topic,
            claims=claims,
            vapid_key=key,
            headers=headers,
            body=body,
        )

    def _check_vapid(self, authorization: str | None, now: float) -> tuple[dict[str, Any], str]:
        if not authorization:
            raise Rejected(401, "no Authorization header")
        scheme, _, rest = authorization.partition(" ")
        if scheme.lower() != "vapid":
            raise Rejected(401, f"Authorization scheme {scheme!r} is not 'vapid' (RFC 8292 §3)")
        params: dict[str, str] = {}
        for part in rest.split(","):
            key, sep, value = part.strip().partition("=")
            if sep:
                params[key.strip().lower()] = value.strip()
        token, key = params.get("t"), params.get("k")
        if not token or not key:
            raise Rejected(401, f"Authorization lacks t= or k=: {authorization[:80]!r}")

        cached = self._jwt_cache.get((token, key))
        if cached is None:
            cached = _verify_jwt(token, key)
            if len(self._jwt_cache) >= _JWT_CACHE_SIZE:
                self._jwt_cache.clear()
            self._jwt_cache[(token, key)] = cached
        if isinstance(cached, Rejected):
            raise cached

        claims = cached
        if claims.get("aud") != self.origin:
            raise Rejected(403, f"aud {claims.get('aud')!r} is not this push service's origin {self.origin!r}")
        exp = claims.get("exp")
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            raise Rejected(403, f"exp is not a number: {exp!r}")
        if exp <= now:
            raise Rejected(403, f"token expired {now - exp:.0f} s ago")
        if exp > now + MAX_EXP_AHEAD:
            raise Rejected(403, f"exp is {exp - now:.0f} s ahead, more than 24 h (RFC 8292 §2)")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.startswith(("mailto:", "https:")):
            raise Rejected(403, f"sub {sub!r} is not a mailto: or https: URI")
        return claims, key


def _verify_jwt(token: str, key: str) -> dict[str, Any] | Rejected:
    """The claims of an ES256 JWT signed by ``key`` (raw point, base64url), or why not."""
    try:
        public = b64url_decode(key)
    except ValueError:
        return Rejected(401, f"k is not base64url: {key[:40]!r}")
    if len(public) != 65 or public[0] != 4:
        return Rejected(401, f"k is not an uncompressed P-256 point ({len(public)} bytes)")
    try:
        verifier = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)
    except ValueError:
        return Rejected(401, "k is not a point on P-256")
    parts = token.split(".")
    if len(parts) != 3:
        return Rejected(403, f"t is not a JWS compact serialization ({len(parts)} parts)")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except ValueError as e:
        return Rejected(403, f"JWT does not decode: {e}")
    if not isinstance(header, dict) or header.get("alg") != "ES256":
        return Rejected(403, f"JWT header is not alg ES256: {header!r}")
    if "typ" in header and str(header["typ"]).upper() != "JWT":
        return Rejected(403, f"JWT typ is {header['typ']!r}")
    if not isinstance(claims, dict):
        return Rejected(403, "JWT claims are not an object")
    if len(signature) != 64:
        return Rejected(403, f"ES256 signature is {len(signature)} bytes, not 64 (r||s)")
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        verifier.verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return Rejected(403, "JWT signature does not verify with k")
    return claims


def _check_aes128gcm_header(body: bytes) -> None:
    if len(body) < 86 + 17 or body[20] != 65 or body[21] != 4 or int.from_bytes(body[16:20], "big") < 18:
        raise Rejected(400, "body is not an aes128gcm record with the sender's key as keyid")


# --- as a process of its own -----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.push_service", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-verify", action="store_true", help="accept anything, only count")
    args = parser.parse_args(argv)

    service = PushService(host=args.host, port=args.port, verify=not args.no_verify, decrypt=False, keep=False)
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    with service:
        print(f"listening {service.origin}", flush=True)
        while not done.wait(0.5):
            pass
        summary = service.summary()
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
