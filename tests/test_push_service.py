"""The tests' own push service (tests/push_service.py) checks what a real one checks, and answers as scripted.

Each bad request changes one thing in a request that is otherwise accepted (the control case), so a
rejection here is for the reason named and no other.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import http_ece
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid, Vapid01
from pywebpush import WebPusher, WebPushException, webpush, webpush_async

from tests.push_service import (
    DecryptError,
    PushService,
    Received,
    Rejected,
    Subscriber,
    b64url_encode,
    public_bytes,
    sign_jwt,
    vapid_authorization,
)

ROOT = Path(__file__).resolve().parent.parent
SUB = "mailto:ops@varde.test"


@pytest.fixture
def service() -> Iterator[PushService]:
    with PushService() as s:
        yield s


@pytest.fixture(scope="module")
def vapid() -> Vapid:
    key = Vapid()  # Vapid02: "vapid t=…,k=…"; see test_draft_webpush_scheme_is_refused for Vapid01
    key.generate_keys()
    return key


def send(subscription: dict, data: str, vapid: Vapid, **kwargs) -> requests.Response:
    kwargs.setdefault("timeout", 2)
    # A new claims dict each call: pywebpush writes aud and exp into it.
    return webpush(subscription, data, vapid_private_key=vapid, vapid_claims={"sub": SUB}, **kwargs)


def test_pywebpush_message_arrives_decrypted_with_its_headers(service: PushService, vapid: Vapid) -> None:
    subscriber, subscription = service.subscribe("kari-phone")
    payload = json.dumps({"title": "Nytt svar", "url": "/meldinger/7", "tag": "msg-7"}, ensure_ascii=False)

    response = send(subscription, payload, vapid, ttl=3600, headers={"Urgency": "high", "Topic": "msg-7"})

    assert response.status_code == 201
    assert response.headers["Location"].startswith(service.origin + "/message/")
    assert response.headers["TTL"] == "3600"
    [message] = service.wait_for(1)
    assert message.payload == payload.encode()
    assert message.json()["title"] == "Nytt svar"
    assert (message.name, message.ttl, message.urgency, message.topic) == ("kari-phone", 3600, "high", "msg-7")
    assert message.claims["aud"] == service.origin
    assert message.claims["sub"] == SUB
    assert message.vapid_key == b64url_encode(public_bytes(vapid.private_key))
    assert subscription == {"endpoint": service.endpoint("kari-phone"), "keys": subscriber.keys}
    service.assert_no_rejections()


def test_many_messages_over_one_keep_alive_connection(service: PushService, vapid: Vapid) -> None:
    _, subscription = service.subscribe()
    with requests.Session() as session:
        for i in range(5):
            send(subscription, f"m{i}", vapid, ttl=60, requests_session=session)
    assert [m.payload for m in service.wait_for(5)] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert service.connections == 1


def test_webpush_async_with_one_aiohttp_session(service: PushService, vapid: Vapid) -> None:
    subscriptions = [service.subscribe()[1] for _ in range(4)]

    async def push_all() -> list[int]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4)) as session:
            sends = [
                webpush_async(
                    subscriptions[i % 4],
                    f"n{i}",
                    vapid_private_key=vapid,
                    vapid_claims={"sub": SUB},
                    ttl=60,
                    timeout=2,
                    aiohttp_session=session,
                )
                for i in range(20)
            ]
            return [r.status for r in await asyncio.gather(*sends)]

    assert asyncio.run(push_all()) == [201] * 20
    assert sorted(m.text() for m in service.wait_for(20)) == sorted(f"n{i}" for i in range(20))
    assert service.connections <= 4
    service.assert_no_rejections()


# --- decryption is real ----------------------------------------------------------------------------


def test_subscriber_decrypts_only_an_intact_body_for_its_own_keys() -> None:
    subscriber = Subscriber()
    body = WebPusher(subscriber.subscription("http://x/push/a")).encode(b"hei")["body"]
    assert subscriber.decrypt(body) == b"hei"

    damaged = bytearray(body)
    damaged[-5] ^= 1
    with pytest.raises(DecryptError, match="tag"):
        subscriber.decrypt(bytes(damaged))
    with pytest.raises(DecryptError, match="tag"):
        Subscriber().decrypt(body)
    same_key_other_auth = Subscriber(private_key=subscriber.private_key)
    with pytest.raises(DecryptError, match="tag"):
        same_key_other_auth.decrypt(body)
    with pytest.raises(DecryptError, match="shorter"):
        subscriber.decrypt(body[:20])
    sender = ec.generate_private_key(ec.SECP256R1())
    two_records = http_ece.encrypt(
        b"x" * 40, private_key=sender, dh=subscriber.public, auth_secret=subscriber.auth, rs=32, version="aes128gcm"
    )
    with pytest.raises(DecryptError, match="more than one record"):
        subscriber.decrypt(two_records)


# --- a request is refused for each thing a real push service refuses --------------------------------


def good_request(service: PushService, name: str = "ola") -> tuple[str, dict[str, str], bytes]:
    _, subscription = service.subscribe(name)
    body = WebPusher(subscription).encode(b'{"ok": true}')["body"]
    key = ec.generate_private_key(ec.SECP256R1())
    headers = {"Authorization": vapid_authorization(key, service.origin), "TTL": "60", "Content-Encoding": "aes128gcm"}
    return subscription["endpoint"], headers, body


def jwt_auth(key: ec.EllipticCurvePrivateKey, claims: dict, header: dict | None = None, k_of=None) -> str:
    return f"vapid t={sign_jwt(key, claims, header)},k={b64url_encode(public_bytes(k_of or key))}"


def _claims(service: PushService, **changes: object) -> dict:
    claims = {"aud": service.origin, "exp": int(time.time()) + 3600, "sub": SUB}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _with(headers: dict[str, str], **changes: str | None) -> dict[str, str]:
    """``headers`` with ``Content_Encoding="x"`` set, ``TTL=None`` removed."""
    out = dict(headers)
    for key, value in changes.items():
        if value is None:
            out.pop(key.replace("_", "-"))
        else:
            out[key.replace("_", "-")] = value
    return out


KEY = ec.generate_private_key(ec.SECP256R1())
OTHER = ec.generate_private_key(ec.SECP256R1())

BAD = {
    "control (accepted)": (lambda s, h, b: (h, b), 201, ""),
    "signed by another key than k": (
        lambda s, h, b: (_with(h, Authorization=jwt_auth(KEY, _claims(s), k_of=OTHER)), b),
        403,
        "signature",
    ),
    "aud of another origin": (
        lambda s, h, b: (_with(h, Authorization=jwt_auth(KEY, _claims(s, aud="http://127.0.0.1:1"))), b),
        403,
        "aud",
    ),
    "expired": (
        lambda s, h, b: (_with(h, Authorization=jwt_auth(KEY, _claims(s, exp=int(time.time()) - 5))), b),
        403,
        "expired",
    ),
    "exp more than 24 h ahead": (
        lambda s, h, b: (_with(h, Authorization=jwt_auth(KEY, _claims(s, exp=int(time.time()) + 25 * 3600))), b),
        403,
        "24 h",
    ),
    "sub missing": (lambda s, h, b: (_with(h, Authorization=jwt_auth(KEY, _claims(s, sub=None))), b), 403, "sub"),
    "sub not a URI": (
        lambda s, h, b: (_with(h, Authorization=jwt_auth(KEY, _claims(s, sub="ops@varde.test"))), b),
        403,
        "sub",
    ),
    "alg not ES256": (
        lambda s, h, b: (_with(h, Authorization=jwt_auth(KEY, _claims(s), {"typ": "JWT", "alg": "HS256"})), b),
        403,
        "ES256",
    ),
    "no Authorization": (lambda s, h, b: (_with(h, Authorization=None), b), 401, "Authorization"),
    "no TTL": (lambda s, h, b: (_with(h, TTL=None), b), 400, "TTL"),
    "bad Urgency": (lambda s, h, b: (_with(h, Urgency="urgent"), b), 400, "Urgency"),
    "Topic too long": (lambda s, h, b: (_with(h, Topic="t" * 33), b), 400, "Topic"),
    "aesgcm encoding": (lambda s, h, b: (_with(h, Content_Encoding="aesgcm"), b), 400, "aes128gcm"),
    "garbage body": (lambda s, h, b: (h, os.urandom(len(b))), 400, "decrypt"),
    "empty body": (lambda s, h, b: (h, b""), 400, "empty"),
    "body over 4096 bytes": (lambda s, h, b: (h, b + bytes(4097 - len(b))), 413, "4096"),
}


@pytest.mark.parametrize("case", BAD)
def test_each_fault_is_refused_and_recorded(service: PushService, case: str) -> None:
    endpoint, headers, body = good_request(service)
    change, status, reason = BAD[case]
    headers, body = change(service, headers, body)

    response = requests.post(endpoint, data=body, headers=headers, timeout=2)

    assert response.status_code == status, response.text
    if status == 201:
        assert [m.json() for m in service.received] == [{"ok": True}]
        service.assert_no_rejections()
    else:
        assert service.received == []
        [rejected] = service.rejected
        assert (rejected.status, rejected.name) == (status, "ola")
        assert reason in rejected.reason
        with pytest.raises(AssertionError, match="rejected"):
            service.assert_no_rejections()


def test_unknown_endpoint_is_404(service: PushService, vapid: Vapid) -> None:
    subscription = Subscriber().subscription(service.endpoint("never-subscribed"))
    with pytest.raises(WebPushException) as e:
        send(subscription, "hei", vapid, ttl=60)
    assert e.value.status_code == 404
    assert "not subscribed" in service.rejected[0].reason


def test_draft_webpush_scheme_is_refused(service: PushService) -> None:
    """pywebpush signs with the draft ``WebPush <jwt>`` + ``Crypto-Key`` scheme when given a Vapid01."""
    old = Vapid01()
    old.generate_keys()
    _, subscription = service.subscribe()
    with pytest.raises(WebPushException) as e:
        webpush(subscription, "hei", vapid_private_key=old, vapid_claims={"sub": SUB}, ttl=60, timeout=2)
    assert e.value.status_code == 401
    assert "'WebPush' is not 'vapid'" in service.rejected[0].reason


def test_jwt_verification_is_cached_but_expiry_is_not(service: PushService) -> None:
    endpoint, headers, body = good_request(service)
    headers["Authorization"] = jwt_auth(KEY, _claims(service, exp=int(time.time()) + 2))
    assert requests.post(endpoint, data=body, headers=headers, timeout=2).status_code == 201
    assert len(service._jwt_cache) == 1
    assert requests.post(endpoint, data=body, headers=headers, timeout=2).status_code == 201
    assert len(service._jwt_cache) == 1
    service._check_vapid(headers["Authorization"], time.time())  # still valid now
    with pytest.raises(Rejected, match="expired"):
        service._check_vapid(headers["Authorization"], time.time() + 3)


# --- scripted answers ------------------------------------------------------------------------------


def test_scripted_410_and_429_reach_the_sender_then_201(service: PushService, vapid: Vapid) -> None:
    _, subscription = service.subscribe("per")
    service.script("per", 410)
    service.script("per", 429, retry_after=2)

    with pytest.raises(WebPushException) as gone:
        send(subscription, "a", vapid, ttl=60)
    with pytest.raises(WebPushException) as slow_down:
        send(subscription, "b", vapid, ttl=60)
    send(subscription, "c", vapid, ttl=60)

    assert gone.value.status_code == 410
    assert slow_down.value.status_code == 429
    assert slow_down.value.retry_after == "2"
    assert [(a.status, a.outcome, a.message.payload) for a in service.attempts] == [
        (410, "refused", b"a"),
        (429, "refused", b"b"),
        (201, "accepted", b"c"),
    ]
    assert [m.payload for m in service.received] == [b"c"]
    service.assert_no_rejections()


def test_unsubscribed_endpoint_is_gone_for_good(service: PushService, vapid: Vapid) -> None:
    _, subscription = service.subscribe("nora")
    service.unsubscribe("nora")
    for _ in range(2):
        with pytest.raises(WebPushException) as e:
            send(subscription, "x", vapid, ttl=60)
        assert e.value.status_code == 410
    assert service.received == []


def test_hang_fires_the_client_timeout_and_the_message_still_counts(service: PushService, vapid: Vapid) -> None:
    _, subscription = service.subscribe("treig")
    service.script("treig", "hang", seconds=0.4)

    started = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        send(subscription, "sent but unanswered", vapid, ttl=60, timeout=0.1)
    assert time.monotonic() - started < 0.35

    [message] = service.wait_for(1, timeout=2)  # accepted once the hang is over: a real duplicate risk
    assert message.payload == b"sent but unanswered"
    assert service.attempts[0].reason == "answered after 0.4 s"


def test_close_drops_the_connection_without_an_answer(service: PushService, vapid: Vapid) -> None:
    _, subscription = service.subscribe("borte")
    service.script("borte", "close")
    with pytest.raises(requests.exceptions.ConnectionError):
        send(subscription, "lost", vapid, ttl=60)
    assert service.received == []
    [attempt] = service.attempts
    assert (attempt.outcome, attempt.status, attempt.message.payload) == ("closed", None, b"lost")
    send(subscription, "next", vapid, ttl=60)
    assert [m.payload for m in service.wait_for(1)] == [b"next"]


def test_callback_runs_after_decrypting_before_answering(service: PushService, vapid: Vapid) -> None:
    _, subscription = service.subscribe("hook")
    seen: list[tuple[Received, int]] = []
    service.script("hook", lambda message: seen.append((message, len(service.received))))
    service.script("hook", lambda message: 1 / 0)

    assert send(subscription, "first", vapid, ttl=60).status_code == 201
    with pytest.raises(WebPushException) as e:
        send(subscription, "second", vapid, ttl=60)

    [(message, received_before_answer)] = seen
    assert (message.payload, received_before_answer) == (b"first", 0)
    assert e.value.status_code == 500
    assert [m.payload for m in service.received] == [b"first"]
    with pytest.raises(AssertionError, match="ZeroDivisionError"):
        service.assert_no_rejections()


def test_wait_for_says_why_nothing_came(service: PushService) -> None:
    endpoint, headers, body = good_request(service)
    requests.post(endpoint, data=body, headers={**headers, "TTL": "soon"}, timeout=2)
    with pytest.raises(TimeoutError, match=r"(?s)0 of 1 messages.*TTL is not a non-negative integer"):
        service.wait_for(1, timeout=0.05)


# --- HTTP details ----------------------------------------------------------------------------------


def _raw(service: PushService, data: bytes, expect: int) -> list[bytes]:
    with socket.create_connection(("127.0.0.1", service.port), timeout=2) as sock:
        sock.sendall(data)
        got = b""
        while got.count(b"HTTP/1.1 ") < expect:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
    return [b"HTTP/1.1 " + part for part in got.split(b"HTTP/1.1 ")[1:]]


def test_pipelined_requests_are_answered_in_order() -> None:
    with PushService(verify=False) as service:
        request = b"POST /push/a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        answers = _raw(service, request * 3 + b"GET /count HTTP/1.1\r\nHost: x\r\n\r\n", 4)
        assert [a.split(b"\r\n", 1)[0] for a in answers] == [b"HTTP/1.1 201 Created"] * 3 + [b"HTTP/1.1 200 OK"]
        assert json.loads(answers[3].split(b"\r\n\r\n", 1)[1])["received"] == 3


def test_chunked_body_is_refused(service: PushService) -> None:
    [answer] = _raw(service, b"POST /push/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 1)
    assert answer.startswith(b"HTTP/1.1 411 ")
    assert "Transfer-Encoding" in service.rejected[0].reason


def test_no_verify_mode_counts_anything() -> None:
    with PushService(verify=False, keep=False) as service, requests.Session() as session:
        for _ in range(3):
            assert session.post(service.endpoint("x"), data=b"not encrypted", timeout=2).status_code == 201
        service.wait_for(3, timeout=1)
        assert session.get(service.origin + "/count", timeout=2).json()["received"] == 3
        assert service.received == []


def test_decrypt_false_verifies_headers_for_any_endpoint() -> None:
    with PushService(decrypt=False) as service:
        endpoint, headers, body = good_request(service)
        other = endpoint.replace("/push/ola", "/push/anyone")
        assert requests.post(other, data=body, headers=headers, timeout=2).status_code == 201
        assert requests.post(other, data=b"x" * 120, headers=headers, timeout=2).status_code == 400
        [message] = service.received
        assert (message.name, message.payload, message.ttl) == ("anyone", None, 60)
        with pytest.raises(ValueError, match="decrypt=False"):
            message.json()
        assert "aes128gcm record" in service.rejected[0].reason


def test_runs_as_a_process_of_its_own() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.push_service", "--port", "0", "--no-verify"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("listening http://127.0.0.1:"), first
        origin = first.split()[1]
        with requests.Session() as session:
            for _ in range(2):
                assert session.post(origin + "/push/bench-1", data=b"x", timeout=2).status_code == 201
            assert session.get(origin + "/count", timeout=2).json()["received"] == 2
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=5)
        assert json.loads(out)["received"] == 2
        assert process.returncode == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_stop_does_not_wait_for_a_hang(vapid: Vapid) -> None:
    service = PushService().start()
    _, subscription = service.subscribe("h")
    service.script("h", "hang", seconds=30)
    errors: list[Exception] = []

    def sender() -> None:
        try:
            send(subscription, "x", vapid, ttl=60, timeout=5)
        except Exception as e:
            errors.append(e)

    thread = threading.Thread(target=sender)
    thread.start()
    deadline = time.monotonic() + 2
    while not service.attempts and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    service.stop()
    assert time.monotonic() - started < 1
    thread.join(3)
    assert [type(e) for e in errors] == [requests.exceptions.ConnectionError]
    assert service.attempts[0].outcome == "pending"
