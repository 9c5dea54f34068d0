"""Push delivery: the worker's side of web push (RFC 8030, 8291 aes128gcm, 8292 VAPID).

``deliver_due`` claims due deliveries, sends them concurrently with pywebpush over one aiohttp
session, and records each answer:

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
import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from time import monotonic
from urllib.parse import urlsplit

import aiohttp
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from py_vapid import Vapid02
from pywebpush import WebPusher
from sqlalchemy import delete, func, select, update

from app import clock
from app.auth.models import User
from app.db import db
from app.notify import vapid
from app.notify.kinds import kind_of, text_for
from app.notify.models import DeliveryState, Notification, PushDelivery, PushSubscription
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


def vapid_headers(endpoint: str) -> dict[str, str]:
    """The Authorization header for a push service origin, signed once and reused for hours
    (``exp`` 12 h ahead, re-signed after 6 h): signing per push would cost as much as sending."""
    parts = urlsplit(endpoint)
    audience = f"{parts.scheme}://{parts.netloc}"
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


def payload_for(notification: Notification, locale: str, first_name: str | None) -> dict[str, str]:
    """The whole payload: generic text, the opaque token, the tap path, the tag. ``first_name``
    is given only when the notification is about someone else (a parent's child)."""
    with force_locale(locale):
        title = text_for(notification.kind, first_name)
        body = _("Trykk for å åpne Varde.")
    return {
        "id": notification.token,
        "title": title,
        "body": body,
        "url": f"/varsler/{notification.token}",
        "tag": kind_of(notification.kind).tag,
    }


def ttl_for(kind: str, expires_at: datetime | None, now: datetime) -> int:
    """Seconds the push service may keep it for an offline device: the kind's, or until an
    offer expires. Never 0 (0 means: drop it unless the device is online this very moment)."""
    ttl = int(kind_of(kind).ttl.total_seconds())
    if expires_at is not None:
        ttl = min(ttl, int((expires_at - now).total_seconds()))
    return max(ttl, 60)


# -- Claiming and recording ------------------------------------------------------------------


def _claim(now: datetime, limit: int, lease: timedelta) -> list[int]:
    """Take up to ``limit`` due deliveries for this worker. Several workers never take the same
    row while a claim lasts (SKIP LOCKED on PostgreSQL; SQLite has one writer at a time)."""
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
    if db.engine.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = db.session.scalars(
        update(PushDelivery)
        .where(
            PushDelivery.id.in_(due.scalar_subquery()),
            PushDelivery.state == DeliveryState.PENDING,
        )
        .values(claimed_until=now + lease, attempts=PushDelivery.attempts + 1)
        .returning(PushDelivery.id)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return list(ids)


def _load_jobs(ids: list[int], now: datetime) -> tuple[list[Job], list[int]]:
    """The claimed rows as jobs; and those that expired before they could be sent."""
    rows = db.session.execute(
        select(PushDelivery, PushSubscription, Notification, User.locale, User.person_id, Person.given_name)
        .join(PushSubscription, PushSubscription.id == PushDelivery.subscription_id)
        .join(Notification, Notification.id == PushDelivery.notification_id)
        .join(User, User.id == Notification.account_id)
        .join(Person, Person.id == Notification.subject_person_id)
        .where(PushDelivery.id.in_(ids))
        .order_by(PushDelivery.id)
    ).all()
    default_locale = current_app.config["BABEL_DEFAULT_LOCALE"]
    jobs, expired = [], []
    for delivery, sub, notification, locale, own_person_id, given_name in rows:
        if delivery.expires_at is not None and delivery.expires_at <= now:
            expired.append(delivery.id)
            continue
        first_name = None if notification.subject_person_id == own_person_id else given_name.split()[0]
        payload = json.dumps(
            payload_for(notification, locale or default_locale, first_name), ensure_ascii=False, separators=(",", ":")
        ).encode()
        spec = kind_of(notification.kind)
        jobs.append(
            Job(
                id=delivery.id,
                subscription_id=sub.id,
                endpoint=sub.endpoint,
                p256dh=sub.p256dh,
                auth=sub.auth,
                payload=payload,
                ttl=ttl_for(notification.kind, delivery.expires_at, now),
                urgency=spec.urgency,
                topic=spec.topic,
                attempts=delivery.attempts,
            )
        )
    # A claimed row whose subscription was removed meanwhile has nowhere to go.
    missing = set(ids) - {j.id for j in jobs} - set(expired)
    if missing:
        db.session.execute(
            update(PushDelivery)
            .where(PushDelivery.id.in_(missing))
            .values(state=DeliveryState.GONE, claimed_until=None)
            .execution_options(synchronize_session=False)
        )
    if expired:
        db.session.execute(
            update(PushDelivery)
            .where(PushDelivery.id.in_(expired))
            .values(state=DeliveryState.EXPIRED, claimed_until=None)
            .execution_options(synchronize_session=False)
        )
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


def _chunks(ids: list[int], size: int = 500):
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def _record(answers: list[Answer], now: datetime) -> dict[str, int]:
    config = current_app.config
    stats = {"sent": 0, "gone": 0, "retry": 0, "failed": 0}
    sent = [a for a in answers if 200 <= a.status < 300]
    gone = [a for a in answers if a.status in (404, 410)]
    for chunk in _chunks([a.job.id for a in sent]):
        db.session.execute(
            update(PushDelivery)
            .where(PushDelivery.id.in_(chunk))
            .values(state=DeliveryState.SENT, sent_at=now, last_status=201, last_error=None, claimed_until=None)
            .execution_options(synchronize_session=False)
        )
    for chunk in _chunks(sorted({a.job.subscription_id for a in sent})):
        db.session.execute(
            update(PushSubscription)
            .where(PushSubscription.id.in_(chunk))
            .values(last_success_at=now)
            .execution_options(synchronize_session=False)
        )
    stats["sent"] = len(sent)
    if gone:
        sub_ids = sorted({a.job.subscription_id for a in gone})
        for a in gone:
            db.session.execute(
                update(PushDelivery)
                .where(PushDelivery.id == a.job.id)
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
            .where(PushDelivery.id == a.job.id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    db.session.commit()
    return stats


def _forget_subscriptions(sub_ids: list[int]) -> None:
    """Delete subscriptions; their deliveries still waiting end as GONE (sent ones stay as they were)."""
    db.session.execute(
        update(PushDelivery)
        .where(PushDelivery.subscription_id.in_(sub_ids), PushDelivery.state == DeliveryState.PENDING)
        .values(state=DeliveryState.GONE, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        delete(PushSubscription).where(PushSubscription.id.in_(sub_ids)).execution_options(synchronize_session=False)
    )


# -- Sending ---------------------------------------------------------------------------------


async def _send_one(session: aiohttp.ClientSession, job: Job, timeout: aiohttp.ClientTimeout) -> Answer:
    pusher = WebPusher(
        {"endpoint": job.endpoint, "keys": {"p256dh": job.p256dh, "auth": job.auth}}, aiohttp_session=session
    )
    headers = dict(vapid_headers(job.endpoint))
    headers["Urgency"] = job.urgency
    headers["Topic"] = job.topic
    try:
        response = await pusher.send_async(
            data=job.payload, headers=headers, ttl=job.ttl, timeout=timeout, content_encoding="aes128gcm"
        )
    except TimeoutError:
        return Answer(job, NO_ANSWER, "timeout")
    except aiohttp.ClientError as exc:
        return Answer(job, NO_ANSWER, type(exc).__name__)
    except Exception as exc:
        return Answer(job, 400, f"not sendable: {type(exc).__name__}")
    error = None
    if response.status >= 300:
        error = f"HTTP {response.status}"
    return Answer(job, response.status, error, response.headers.get("Retry-After"))


async def send_jobs(jobs: list[Job], *, concurrency: int, timeout_seconds: float) -> list[Answer]:
    """Send concurrently over one keep-alive session; every request has a timeout."""
    timeout = aiohttp.ClientTimeout(total=timeout_seconds, connect=min(timeout_seconds, 5))
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency, ttl_dns_cache=300)
    semaphore = asyncio.Semaphore(concurrency)

    async def guarded(job: Job) -> Answer:
        async with semaphore:
            return await _send_one(session, job, timeout)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        return await asyncio.gather(*(guarded(job) for job in jobs))


def deliver_due(*, time_budget: float | None = None) -> dict[str, int]:
    """Send everything due now, batch after batch (within ``time_budget`` seconds, if given).
    Returns counts by outcome."""
    config = current_app.config
    lease = timedelta(seconds=config["PUSH_LEASE_SECONDS"])
    totals = {"sent": 0, "gone": 0, "retry": 0, "failed": 0, "expired": 0}
    started = monotonic()
    while True:
        now = clock.utcnow()
        ids = _claim(now, config["PUSH_BATCH"], lease)
        if not ids:
            break
        jobs, expired = _load_jobs(ids, now)
        totals["expired"] += len(expired)
        if jobs:
            answers = asyncio.run(
                send_jobs(jobs, concurrency=config["PUSH_CONCURRENCY"], timeout_seconds=config["PUSH_TIMEOUT_SECONDS"])
            )
            for key, value in _record(answers, clock.utcnow()).items():
                totals[key] += value
        if len(ids) < config["PUSH_BATCH"] or (time_budget is not None and monotonic() - started > time_budget):
            break
    if any(totals.values()):
        current_app.logger.info("push delivery: %s", totals)
    return totals


def next_due_in(now: datetime | None = None) -> float | None:
    """Seconds until the next pending delivery is due (None: nothing pending)."""
    now = now or clock.utcnow()
    nearest = db.session.scalar(
        select(func.min(PushDelivery.next_attempt_at)).where(PushDelivery.state == DeliveryState.PENDING)
    )
    if nearest is None:
        return None
    return max((nearest - now).total_seconds(), 0.0)


def prune(now: datetime | None = None) -> dict[str, int]:
    """Forget devices not seen for PUSH_SUBSCRIPTION_MAX_AGE_DAYS, and finished deliveries older
    than 30 days (the notifications themselves stay in the notification centre)."""
    now = now or clock.utcnow()
    cutoff = now - timedelta(days=current_app.config["PUSH_SUBSCRIPTION_MAX_AGE_DAYS"])
    stale = list(db.session.scalars(select(PushSubscription.id).where(PushSubscription.last_seen_at < cutoff)))
    if stale:
        _forget_subscriptions(stale)
    finished = db.session.execute(
        delete(PushDelivery)
        .where(PushDelivery.state != DeliveryState.PENDING, PushDelivery.created_at < now - timedelta(days=30))
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return {"subscriptions": len(stale), "deliveries": finished or 0}
