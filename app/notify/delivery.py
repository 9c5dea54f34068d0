"""Push delivery: the worker's side of web push (RFC 8030, 8291 aes128gcm, 8292 VAPID).

``deliver_due`` claims due deliveries, sends them concurrently with pywebpush over keep-alive
connections (``transport.PushSession``), and records each answer:

- 201 (any 2xx): sent. Only now is the row marked, so a worker killed between sending and
  marking loses nothing: its claim runs out and the row is sent again, with the same
  notification token and tag, so the service worker replaces it instead of showing it twice.
- 404/410: the subscription no longer exists; it is deleted and its pending deliveries end.
- 429: waits for Retry-After.
- 5xx, timeouts, refused connections: retried with exponential backoff and jitter, up to
  PUSH_MAX_ATTEMPTS, then given up and recorded.
- 400, 413 and other 4xx: recorded, not retried (sending the same again cannot help).

Payloads are generic text, the notification's opaque token and a path: never anything from the
record. The logs say counts and statuses, never whose or what.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import os
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from time import monotonic
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from py_vapid import Vapid02
from pywebpush import CaseInsensitiveDict, WebPusher, WebPushException
from sqlalchemy import ColumnElement, case, delete, func, or_, select, update

from app import clock
from app.access.policy import relatives_allowed
from app.auth.models import User
from app.db import db, one_of
from app.notify import vapid
from app.notify.kinds import kind_of, text_for
from app.notify.models import DeliveryState, Notification, PushDelivery, PushSubscription
from app.notify.transport import InvalidEndpoint, Pending, PushSession
from app.people.models import Person

NO_ANSWER = 0  # last_status when the push service never answered (timeout, refused)


@dataclass
class Job:
    """One claimed delivery, with everything needed to send it (loaded in one query)."""

    id: int
    subscription_id: int
    endpoint: str
    p256dh: str
    auth: str
    payload: bytes
    ttl: int
    urgency: str
    topic: str
    attempts: int
    pusher: _WebPusher | None = None  # ready to send (see _prepare_all)
    refused: str | None = None  # why it cannot be sent, if it cannot
    pending: Pending | None = None  # the request, and after sending its answer


@dataclass
class Answer:
    job: Job
    status: int  # HTTP status, or NO_ANSWER
    error: str | None = None
    retry_after: str | None = None


# -- VAPID -----------------------------------------------------------------------------------

_vapid_cache: dict[str, tuple[float, dict[str, str]]] = {}


@lru_cache(maxsize=4)
def _signer(private_key: str) -> Vapid02:
    return Vapid02(private_key=vapid.load_private_key(private_key))


@lru_cache(maxsize=8192)
def _origin(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


def vapid_headers(endpoint: str) -> dict[str, str]:
    """The Authorization header for a push service origin, signed once and reused for hours
    (``exp`` 12 h ahead, re-signed after 6 h): signing per push would cost as much as sending."""
    audience = _origin(endpoint)
    now = monotonic()
    hit = _vapid_cache.get(audience)
    if hit and hit[0] > now:
        return hit[1]
    claims = {
        "aud": audience,
        "exp": int(clock.utcnow().timestamp()) + 12 * 3600,
        "sub": current_app.config["VAPID_SUBJECT"],
    }
    headers = _signer(current_app.config["VAPID_PRIVATE_KEY"]).sign(dict(claims))
    headers = {"Authorization": headers["Authorization"]}
    _vapid_cache[audience] = (now + 6 * 3600, headers)
    return headers


# -- What a push says ------------------------------------------------------------------------


def _texts(kind: str, locale: str, first_name: str | None) -> tuple[str, str]:
    """The title and body of a push in ``locale``."""
    with force_locale(locale):
        return text_for(kind, first_name), _("Trykk for å åpne Varde.")


def _payload(token: str, kind: str, title: str, body: str) -> dict[str, str]:
    """The whole payload: generic text, the opaque token, the tap path, the tag."""
    return {"id": token, "title": title, "body": body, "url": f"/varsler/{token}", "tag": kind_of(kind).tag}


def ttl_for(kind: str, expires_at: datetime | None, now: datetime) -> int:
    """Seconds the push service may keep it for an offline device: the kind's, or until an
    offer expires. Never 0 (0 means: drop it unless the device is online this very moment)."""
    ttl = int(kind_of(kind).ttl.total_seconds())
    if expires_at is not None:
        ttl = min(ttl, int((expires_at - now).total_seconds()))
    return max(ttl, 1)


# -- Claiming and recording ------------------------------------------------------------------


def _claim(now: datetime, limit: int, lease: timedelta) -> list[int]:
    """Take up to ``limit`` due deliveries for this worker. Several workers never take the same
    row while a claim lasts (SKIP LOCKED on PostgreSQL; SQLite has one writer at a time).

    A row whose claim ran out with its attempts used up (its workers died sending it, again and
    again) is given up here, so it cannot hold up every batch it lands in."""
    db.session.execute(
        update(PushDelivery)
        .where(
            PushDelivery.state == DeliveryState.PENDING,
            PushDelivery.claimed_until <= now,
            PushDelivery.attempts >= current_app.config["PUSH_MAX_ATTEMPTS"],
        )
        .values(state=DeliveryState.FAILED, claimed_until=None, last_error="gave up: no answer recorded")
        .execution_options(synchronize_session=False)
    )
    due = (
        select(PushDelivery.id)
        .where(
            PushDelivery.state == DeliveryState.PENDING,
            PushDelivery.next_attempt_at <= now,
            (PushDelivery.claimed_until.is_(None)) | (PushDelivery.claimed_until <= now),
        )
        .order_by(PushDelivery.next_attempt_at, PushDelivery.id)
        .limit(limit)
    )
    claim = {"claimed_until": now + lease, "attempts": PushDelivery.attempts + 1}
    if db.engine.dialect.name == "postgresql":
        # Locked rows are skipped, so workers never wait for each other. A materialised CTE, not
        # "id IN (… LIMIT n)": PostgreSQL may run such a subquery more than once and take more rows.
        locked = due.with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED")
        statement = update(PushDelivery).where(PushDelivery.id == locked.c.id)
    else:
        statement = update(PushDelivery).where(PushDelivery.id.in_(due.scalar_subquery()))
    ids = db.session.scalars(
        statement.where(PushDelivery.state == DeliveryState.PENDING)
        .values(**claim)
        .returning(PushDelivery.id)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return list(ids)


def _load_jobs(ids: list[int], now: datetime) -> tuple[list[Job], list[int]]:
    """The claimed rows as jobs; and those that expired before they could be sent.

    Plain columns, not ORM objects (a thousand rows of four entities cost more than sending them),
    and each (kind, language, first name) translated once per batch, not once per push."""
    rows = db.session.execute(
        select(
            PushDelivery.id,
            PushDelivery.attempts,
            PushDelivery.expires_at,
            PushSubscription.id.label("subscription_id"),
            PushSubscription.endpoint,
            PushSubscription.p256dh,
            PushSubscription.auth,
            Notification.token,
            Notification.kind,
            Notification.subject_person_id,
            Notification.object_type,
            Notification.object_id,
            User.locale,
            User.person_id.label("own_person_id"),
            User.active,
            Person.given_name,
            Person.birth_date,
        )
        .join(PushSubscription, PushSubscription.id == PushDelivery.subscription_id)
        .join(Notification, Notification.id == PushDelivery.notification_id)
        .join(User, User.id == Notification.account_id)
        .join(Person, Person.id == Notification.subject_person_id)
        .where(one_of(PushDelivery.id, ids))
        .order_by(PushDelivery.id)
    ).all()
    default_locale = current_app.config["BABEL_DEFAULT_LOCALE"]
    texts: dict[tuple[str, str, str | None], tuple[str, str]] = {}
    jobs, expired, gone, broken = [], [], [], []
    # Checked again when it is sent (it may have waited out the night): a child who has turned 12
    # or 16 since, a proxy revoked or a relation that ended is not pushed to. One query for the batch.
    relatives = relatives_allowed(
        (r.own_person_id, r.subject_person_id, r.kind, r.object_type, r.object_id)
        for r in rows
        if r.subject_person_id != r.own_person_id
    )
    for r in rows:
        if r.expires_at is not None and r.expires_at <= now:
            expired.append(r.id)
            continue
        own = r.subject_person_id == r.own_person_id
        if not r.active or (
            not own and (r.own_person_id, r.subject_person_id, r.kind, r.object_type, r.object_id) not in relatives
        ):
            gone.append(r.id)
            continue
        try:
            first_name = None if own else ((r.given_name or "").split() or ["?"])[0]
            key = (r.kind, r.locale or default_locale, first_name)
            if (text := texts.get(key)) is None:
                text = texts[key] = _texts(*key)
            spec = kind_of(r.kind)
            # Someone else's news (a child's) is its own notification: it neither replaces nor is
            # replaced by the parent's own (the suffix is a keyed hash, not the child's id).
            suffix = "" if own else "-" + _subject_tag(r.subject_person_id)
            payload = _payload(r.token, r.kind, *text)
            payload["tag"] += suffix
            jobs.append(
                Job(
                    id=r.id,
                    subscription_id=r.subscription_id,
                    endpoint=r.endpoint,
                    p256dh=r.p256dh,
                    auth=r.auth,
                    payload=json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode(),
                    ttl=ttl_for(r.kind, r.expires_at, now),
                    urgency=spec.urgency,
                    topic=spec.topic + suffix,
                    attempts=r.attempts,
                )
            )
        except Exception:  # one bad row must not hold up the batch: it is given up, visibly
            current_app.logger.exception("push delivery %d could not be prepared", r.id)
            broken.append(r.id)
    # A claimed row whose subscription was removed meanwhile has nowhere to go.
    gone += sorted(set(ids) - {j.id for j in jobs} - set(expired) - set(gone) - set(broken))
    for state, chosen in ((DeliveryState.GONE, gone), (DeliveryState.EXPIRED, expired), (DeliveryState.FAILED, broken)):
        for chunk in _chunks(chosen):
            end_waiting(one_of(PushDelivery.id, chunk), state)
    db.session.commit()
    return jobs, expired


def retry_after_seconds(value: str | None, now: datetime) -> float:
    """Retry-After as seconds (RFC 9110 § 10.2.3: delay-seconds or an HTTP-date), within 1 s–1 h."""
    seconds = 60.0
    if value:
        value = value.strip()
        try:
            seconds = float(int(value))
        except ValueError:
            try:
                seconds = (parsedate_to_datetime(value) - now).total_seconds()
            except (TypeError, ValueError):
                seconds = 60.0
    return min(max(seconds, 1.0), 3600.0)


def backoff_seconds(attempts: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: base × 2^(attempts−1), capped, then scaled by 0.5–1.5."""
    delay = min(cap, base * (2 ** max(attempts - 1, 0)))
    return delay * random.uniform(0.5, 1.5)  # noqa: S311 - jitter, not a secret


_SUCCESS_EVERY = timedelta(hours=1)


def _chunks(ids: list[int], size: int = 500):
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def _record(answers: list[Answer], now: datetime, claimed_until: datetime) -> dict[str, int]:
    """Write down each answer. Only rows still pending change (a device removed meanwhile stays
    GONE); a retry or failure only where this worker's claim still holds (not another's)."""
    config = current_app.config
    stats = {"sent": 0, "gone": 0, "retry": 0, "failed": 0}
    slowed_down: dict[str, datetime] = {}  # push service origin -> not before
    sent = [a for a in answers if 200 <= a.status < 300]
    gone = [a for a in answers if a.status in (404, 410)]
    for chunk in _chunks([a.job.id for a in sent]):
        db.session.execute(
            update(PushDelivery)
            .where(one_of(PushDelivery.id, chunk), PushDelivery.state == DeliveryState.PENDING)
            .values(state=DeliveryState.SENT, sent_at=now, last_status=201, last_error=None, claimed_until=None)
            .execution_options(synchronize_session=False)
        )
    for chunk in _chunks(sorted({a.job.subscription_id for a in sent})):
        db.session.execute(
            update(PushSubscription)
            .where(
                one_of(PushSubscription.id, chunk),
                # once an hour is enough to tell a working device (and saves a write per push)
                or_(
                    PushSubscription.last_success_at.is_(None),
                    PushSubscription.last_success_at < now - _SUCCESS_EVERY,
                ),
            )
            .values(last_success_at=now)
            .execution_options(synchronize_session=False)
        )
    stats["sent"] = len(sent)
    if gone:
        sub_ids = sorted({a.job.subscription_id for a in gone})
        for a in gone:
            db.session.execute(
                update(PushDelivery)
                .where(PushDelivery.id == a.job.id, PushDelivery.state == DeliveryState.PENDING)
                .values(state=DeliveryState.GONE, last_status=a.status, claimed_until=None)
                .execution_options(synchronize_session=False)
            )
        _forget_subscriptions(sub_ids)
        stats["gone"] = len(gone)
    for a in answers:
        if 200 <= a.status < 300 or a.status in (404, 410):
            continue
        values: dict = {"last_status": a.status, "last_error": (a.error or "")[:200] or None, "claimed_until": None}
        if a.status == 429:
            values["next_attempt_at"] = now + timedelta(seconds=retry_after_seconds(a.retry_after, now))
            retry = a.job.attempts < config["PUSH_MAX_ATTEMPTS"]
            slowed_down.setdefault(_origin(a.job.endpoint), values["next_attempt_at"])
        elif a.status >= 500 or a.status == NO_ANSWER:
            values["next_attempt_at"] = now + timedelta(
                seconds=backoff_seconds(
                    a.job.attempts, config["PUSH_BACKOFF_SECONDS"], config["PUSH_BACKOFF_MAX_SECONDS"]
                )
            )
            retry = a.job.attempts < config["PUSH_MAX_ATTEMPTS"]
        else:  # 400, 413 and the rest: the same request would be refused again
            retry = False
        if retry:
            stats["retry"] += 1
        else:
            values["state"] = DeliveryState.FAILED
            values.pop("next_attempt_at", None)
            stats["failed"] += 1
            current_app.logger.warning(
                "push delivery %d given up after %d attempts: status %s", a.job.id, a.job.attempts, a.status
            )
        db.session.execute(
            update(PushDelivery)
            .where(
                PushDelivery.id == a.job.id,
                PushDelivery.state == DeliveryState.PENDING,
                PushDelivery.claimed_until == claimed_until,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    for origin, not_before in slowed_down.items():
        # A push service that says "too many requests" means it for the sender, not one device:
        # what else waits for it (and no worker holds) waits as long.
        db.session.execute(
            update(PushDelivery)
            .where(
                PushDelivery.state == DeliveryState.PENDING,
                PushDelivery.next_attempt_at < not_before,
                (PushDelivery.claimed_until.is_(None)) | (PushDelivery.claimed_until <= now),
                PushDelivery.subscription_id.in_(
                    select(PushSubscription.id).where(
                        PushSubscription.endpoint.startswith(origin + "/", autoescape=True)
                    )
                ),
            )
            .values(next_attempt_at=not_before)
            .execution_options(synchronize_session=False)
        )
    db.session.commit()
    return stats


def end_waiting(condition: ColumnElement[bool], state: DeliveryState = DeliveryState.GONE) -> None:
    """Deliveries still waiting that match ``condition`` are not sent (sent or ended ones stay as
    they were). The one way a delivery ends without an answer from the push service."""
    db.session.execute(
        update(PushDelivery)
        .where(condition, PushDelivery.state == DeliveryState.PENDING)
        .values(state=state, claimed_until=None)
        .execution_options(synchronize_session=False)
    )


def _forget_subscriptions(sub_ids: list[int]) -> None:
    """Delete subscriptions; their deliveries still waiting end as GONE."""
    end_waiting(PushDelivery.subscription_id.in_(sub_ids))
    db.session.execute(
        delete(PushSubscription).where(PushSubscription.id.in_(sub_ids)).execution_options(synchronize_session=False)
    )


# -- Sending ---------------------------------------------------------------------------------

_RECORD_SIZE = 4096  # as pywebpush (http_ece) writes it
_ONE_RECORD = _RECORD_SIZE - 17  # plaintext that fits one record with its delimiter and tag


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 HKDF-SHA-256 for one block (length <= 32)."""
    return hmac.digest(hmac.digest(salt, ikm, "sha256"), info + b"\x01", "sha256")[:length]


@lru_cache(maxsize=4096)
def _receiver_key(raw: bytes) -> ec.EllipticCurvePublicKey:
    """A subscriber's public key, checked to lie on the curve once per worker process, not per push."""
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)


def encrypt_aes128gcm(receiver_raw: bytes, auth: bytes, data: bytes) -> bytes:
    """RFC 8291 (aes128gcm, RFC 8188): a fresh ECDH key pair and salt per message, one record of
    4096 bytes at most, the sender's public key as keyid. The same layout pywebpush's encoder
    (http_ece) writes, at about half its cost: no key objects built and serialised twice, HKDF as
    plain HMACs."""
    receiver = _receiver_key(receiver_raw)
    sender = ec.generate_private_key(ec.SECP256R1())
    sender_raw = sender.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    ikm = _hkdf(auth, sender.exchange(ec.ECDH(), receiver), b"WebPush: info\x00" + receiver_raw + sender_raw, 32)
    salt = os.urandom(16)
    prk = hmac.digest(salt, ikm, "sha256")
    key = hmac.digest(prk, b"Content-Encoding: aes128gcm\x00\x01", "sha256")[:16]
    nonce = hmac.digest(prk, b"Content-Encoding: nonce\x00\x01", "sha256")[:12]
    header = salt + _RECORD_SIZE.to_bytes(4, "big") + bytes([len(sender_raw)]) + sender_raw
    return header + AESGCM(key).encrypt(nonce, data + b"\x02", None)


def _subject_tag(person_id: int) -> str:
    """A short stable name for whose news it is, for Topic and tag: opaque outside Varde."""
    mac = hmac.digest(current_app.config["SECRET_KEY"].encode(), f"push-subject:{person_id}".encode(), "sha256")
    return base64.urlsafe_b64encode(mac[:6]).decode()


class _WebPusher(WebPusher):
    """pywebpush's WebPusher (it prepares the request and sends it through our PushSession), given
    the body ``_prepare_all`` encrypted; without one, pywebpush encrypts as usual."""

    encrypted: bytes | None = None

    def encode(self, data: bytes, content_encoding: str = "aes128gcm") -> CaseInsensitiveDict:
        if self.encrypted is None or content_encoding != "aes128gcm" or not data:
            return super().encode(data, content_encoding)
        reply = CaseInsensitiveDict()
        reply["body"] = self.encrypted
        return reply


def _prepare_all(jobs: list[Job], session: PushSession) -> None:
    """Each job's request, prepared by pywebpush (its WebPusher checks and decodes the subscription's
    keys, and writes the headers) with the payload encrypted here. All the encryption first, in one
    loop: interleaved with other work, the elliptic-curve code's tables fall out of the CPU caches and
    each push costs about twice as much. Keys pywebpush refuses make the job unsendable; a payload
    this encoder cannot take (longer than one record) is left to pywebpush's own encoder."""
    for job in jobs:
        try:
            job.pusher = _WebPusher(
                {"endpoint": job.endpoint, "keys": {"p256dh": job.p256dh, "auth": job.auth}},
                requests_session=session,
            )
        except (WebPushException, ValueError) as exc:  # binascii.Error is a ValueError
            job.refused = f"not sendable: {type(exc).__name__}"
            continue
        if len(job.payload) <= _ONE_RECORD:
            try:
                job.pusher.encrypted = encrypt_aes128gcm(job.pusher.receiver_key, job.pusher.auth_key, job.payload)
            except ValueError:  # not a point on the curve: pywebpush's encoder says so below
                job.pusher.encrypted = None
    timeout = float(current_app.config["PUSH_TIMEOUT_SECONDS"])
    for job in jobs:
        if job.pusher is None:
            continue
        headers = dict(vapid_headers(job.endpoint))
        headers["Urgency"] = job.urgency
        headers["Topic"] = job.topic
        try:
            job.pending = job.pusher.send(
                data=job.payload, headers=headers, ttl=job.ttl, timeout=timeout, content_encoding="aes128gcm"
            )
        except (WebPushException, InvalidEndpoint, ValueError) as exc:  # sending again cannot help
            job.refused = f"not sendable: {type(exc).__name__}"


def _answer(job: Job) -> Answer:
    """What became of a job sent by ``PushSession.run`` (or refused before)."""
    pending = job.pending
    if pending is None:
        return Answer(job, 400, job.refused)
    if pending.reply is not None:
        status = pending.reply.status
        error = f"HTTP {status}" if status >= 300 else None
        return Answer(job, status, error, pending.reply.headers.get("retry-after"))
    exc = pending.error
    if isinstance(exc, TimeoutError):
        return Answer(job, NO_ANSWER, "timeout")
    # refused, unreachable, reset, closed before the answer, or anything else: tried again
    return Answer(job, NO_ANSWER, type(exc).__name__)


async def _send_all(session: PushSession, jobs: list[Job], concurrency: int) -> list[Answer]:
    """Every prepared job sent, ``concurrency`` at a time; an answer for each job."""
    await session.run([job.pending for job in jobs if job.pending is not None], concurrency)
    return [_answer(job) for job in jobs]


def deliver_due(*, time_budget: float | None = None) -> dict[str, int]:
    """Send everything due now, batch after batch (within ``time_budget`` seconds, if given).
    Returns counts by outcome."""
    totals = asyncio.run(_deliver_due(time_budget))
    if any(totals.values()):
        current_app.logger.info("push delivery: %s", totals)
    return totals


async def _deliver_due(time_budget: float | None) -> dict[str, int]:
    """The batches of one ``deliver_due`` share one client session, so its keep-alive connections
    (and TLS sessions) serve every batch rather than being opened again for each."""
    config = current_app.config
    # A claim outlasts the slowest batch (every request taking its whole timeout), so a row is
    # never taken by a second worker while the first is still sending it.
    slowest = -(-config["PUSH_BATCH"] // config["PUSH_CONCURRENCY"]) * config["PUSH_TIMEOUT_SECONDS"] + 30
    lease = timedelta(seconds=max(config["PUSH_LEASE_SECONDS"], slowest))
    totals = {"sent": 0, "gone": 0, "retry": 0, "failed": 0, "expired": 0}
    started = monotonic()
    session: PushSession | None = None
    timeout = float(config["PUSH_TIMEOUT_SECONDS"])
    try:
        while True:
            now = clock.utcnow()
            ids = _claim(now, config["PUSH_BATCH"], lease)
            if not ids:
                break
            jobs, expired = _load_jobs(ids, now)
            totals["expired"] += len(expired)
            if jobs:
                if session is None:
                    session = PushSession(connect_timeout=min(timeout, 5.0))
                _prepare_all(jobs, session)
                answers = await _send_all(session, jobs, config["PUSH_CONCURRENCY"])
                for key, value in _record(answers, clock.utcnow(), now + lease).items():
                    totals[key] += value
            if len(ids) < config["PUSH_BATCH"] or (time_budget is not None and monotonic() - started > time_budget):
                break
    finally:
        if session is not None:
            await session.close()
    return totals


def next_due_in(now: datetime | None = None) -> float | None:
    """Seconds until the next pending delivery is due (None: nothing pending)."""
    now = now or clock.utcnow()
    # A row another worker holds is due when its claim runs out, not before.
    due_at = case(
        (PushDelivery.claimed_until > PushDelivery.next_attempt_at, PushDelivery.claimed_until),
        else_=PushDelivery.next_attempt_at,
    )
    nearest = db.session.scalar(select(func.min(due_at)).where(PushDelivery.state == DeliveryState.PENDING))
    if nearest is None:
        return None
    return max((nearest - now).total_seconds(), 0.0)


def prune(now: datetime | None = None) -> dict[str, int]:
    """Forget devices not seen for PUSH_SUBSCRIPTION_MAX_AGE_DAYS, and finished deliveries older
    than 30 days (the notifications themselves stay in the notification centre)."""
    now = now or clock.utcnow()
    cutoff = now - timedelta(days=current_app.config["PUSH_SUBSCRIPTION_MAX_AGE_DAYS"])
    stale = list(db.session.scalars(select(PushSubscription.id).where(PushSubscription.last_seen_at < cutoff)))
    for chunk in _chunks(stale):
        _forget_subscriptions(chunk)
        db.session.commit()
    finished = 0
    while True:  # in batches, each its own short transaction
        old = (
            select(PushDelivery.id)
            .where(PushDelivery.created_at < now - timedelta(days=30), PushDelivery.state != DeliveryState.PENDING)
            .limit(5000)
        )
        deleted = db.session.execute(
            delete(PushDelivery)
            .where(PushDelivery.id.in_(old.scalar_subquery()))
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        finished += deleted or 0
        if not deleted or deleted < 5000:
            break
    return {"subscriptions": len(stale), "deliveries": finished}
