"""The notification centre, devices and preferences: plain functions on already-known accounts."""

from __future__ import annotations

import binascii
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from flask import current_app, g
from flask_babel import gettext as _
from sqlalchemy import func, select, update

from app import clock
from app.db import db
from app.notify.delivery import _forget_subscriptions, end_waiting
from app.notify.models import Notification, NotificationSettings, PushDelivery, PushSubscription
from app.notify.vapid import b64url_decode
from app.people.models import Person

PAGE_SIZE = 30


# -- The notification centre -----------------------------------------------------------------


def _count_changed() -> None:
    """The bell's count came with the session; after a change in this request, count again."""
    from flask import has_request_context, session

    if has_request_context():
        session.unread_notifications = None  # type: ignore[attr-defined]
        g.pop("_varde_unread", None)


def unread_count(account_id: int) -> int:
    return db.session.scalar(
        select(func.count(Notification.id)).where(Notification.account_id == account_id, Notification.read_at.is_(None))
    )


@dataclass(frozen=True)
class Listed:
    notification: Notification
    subject: Person
    own: bool


def notifications(
    account_id: int, own_person_id: int | None, before: int | None = None
) -> tuple[list[Listed], int | None]:
    """One page of the account's notifications, newest first, and the cursor for the next page."""
    query = (
        select(Notification, Person)
        .join(Person, Person.id == Notification.subject_person_id)
        .where(Notification.account_id == account_id)
        .order_by(Notification.id.desc())
        .limit(PAGE_SIZE + 1)
    )
    if before is not None:
        query = query.where(Notification.id < before)
    rows = db.session.execute(query).all()
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    listed = [Listed(n, p, p.id == own_person_id) for n, p in rows]
    return listed, (rows[-1][0].id if more else None)


def by_token(account_id: int, token: str) -> Notification | None:
    """The account's own notification with this token; another account's looks like none."""
    return db.session.scalar(
        select(Notification).where(Notification.token == token, Notification.account_id == account_id)
    )


def mark_read(account_id: int, notification_id: int) -> bool:
    _count_changed()
    return (
        db.session.execute(
            update(Notification)
            .where(
                Notification.id == notification_id,
                Notification.account_id == account_id,
                Notification.read_at.is_(None),
            )
            .values(read_at=clock.utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )


def mark_all_read(account_id: int) -> int:
    _count_changed()
    return db.session.execute(
        update(Notification)
        .where(Notification.account_id == account_id, Notification.read_at.is_(None))
        .values(read_at=clock.utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount


def mark_read_for(account_id: int, object_type: str, object_ids: list[int]) -> None:
    """Opening an item reads its notifications (the caller's request commits)."""
    _count_changed()
    db.session.execute(
        update(Notification)
        .where(
            Notification.account_id == account_id,
            Notification.object_type == object_type,
            Notification.object_id.in_(object_ids),
            Notification.read_at.is_(None),
        )
        .values(read_at=clock.utcnow())
        .execution_options(synchronize_session=False)
    )


# -- Devices ---------------------------------------------------------------------------------


class SubscriptionError(ValueError):
    """A subscription Varde will not store; the message is for the user."""


def _b64url(value: object, length: int) -> bytes:
    if not isinstance(value, str) or len(value) > 200:
        raise SubscriptionError(_("Enheten sendte en ugyldig nøkkel for varsler."))
    try:
        raw = b64url_decode(value)
    except (binascii.Error, ValueError):
        raise SubscriptionError(_("Enheten sendte en ugyldig nøkkel for varsler.")) from None
    if len(raw) != length:
        raise SubscriptionError(_("Enheten sendte en ugyldig nøkkel for varsler."))
    return raw


def _host_allowed(host: str, allowed: list[str]) -> bool:
    return any(host == pattern or (pattern.startswith(".") and host.endswith(pattern)) for pattern in allowed)


def validate_subscription(data: object) -> tuple[str, str, str]:
    """(endpoint, p256dh, auth) from a browser's PushSubscription JSON, or SubscriptionError.

    The endpoint is where the worker will POST, so it must be a known push service over https
    (no requests to arbitrary hosts from the server); the keys must be a P-256 point and a
    16-byte secret, as RFC 8291 requires."""
    if not isinstance(data, dict):
        raise SubscriptionError(_("Varde fikk ikke noe abonnement fra enheten."))
    endpoint = data.get("endpoint")
    keys = data.get("keys") if isinstance(data.get("keys"), dict) else {}
    if not isinstance(endpoint, str) or not endpoint or len(endpoint) > 1024:
        raise SubscriptionError(_("Varde fikk ikke noe abonnement fra enheten."))
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    config = current_app.config
    insecure_ok = _host_allowed(host, config["PUSH_INSECURE_HOSTS"])
    if parts.scheme != "https" and not (parts.scheme == "http" and insecure_ok):
        raise SubscriptionError(_("Nettleseren bruker en varseltjeneste Varde ikke kan sende til."))
    if not (insecure_ok or _host_allowed(host, config["PUSH_SERVICE_HOSTS"])):
        raise SubscriptionError(_("Nettleseren bruker en varseltjeneste Varde ikke kan sende til."))
    try:
        if ipaddress.ip_address(host) and not insecure_ok:
            raise SubscriptionError(_("Nettleseren bruker en varseltjeneste Varde ikke kan sende til."))
    except ValueError:
        pass  # a name, as push services use
    p256dh = _b64url(keys.get("p256dh"), 65)
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    except ValueError:
        raise SubscriptionError(_("Enheten sendte en ugyldig nøkkel for varsler.")) from None
    _b64url(keys.get("auth"), 16)
    return endpoint, keys["p256dh"], keys["auth"]


def subscribe(account_id: int, data: object, label: str) -> tuple[PushSubscription, bool]:
    """Store this device's subscription for the account, or refresh it if it is known already
    (same endpoint: no second row). A device that someone else used before now belongs to the
    account that is logged in on it. Returns (subscription, created)."""
    endpoint, p256dh, auth = validate_subscription(data)
    now = clock.utcnow()
    sub = db.session.scalar(select(PushSubscription).where(PushSubscription.endpoint == endpoint))
    created = sub is None
    if sub is None:
        sub = PushSubscription(endpoint=endpoint, created_at=now)
        db.session.add(sub)
    elif sub.account_id != account_id:
        # Someone else used this browser before: what still waits for them is not sent here.
        end_waiting(PushDelivery.subscription_id == sub.id)
        sub.created_at = now
    sub.account_id = account_id
    sub.p256dh, sub.auth = p256dh, auth
    sub.label = label[:120]
    sub.last_seen_at = now
    db.session.flush()
    return sub, created


def refresh(account_id: int, data: object) -> bool:
    """A device with push on says it still holds its subscription (once a day). Only the
    account's own subscription is refreshed: one removed in settings, or one another account
    took over on a shared browser, stays removed (the page then turns push off in the browser)."""
    endpoint = data.get("endpoint") if isinstance(data, dict) else None
    if not isinstance(endpoint, str):
        return False
    return (
        db.session.execute(
            update(PushSubscription)
            .where(PushSubscription.endpoint == endpoint, PushSubscription.account_id == account_id)
            .values(last_seen_at=clock.utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )


def devices(account_id: int) -> list[PushSubscription]:
    return list(
        db.session.scalars(
            select(PushSubscription)
            .where(PushSubscription.account_id == account_id)
            .order_by(PushSubscription.created_at.desc(), PushSubscription.id.desc())
        )
    )


def remove_device(account_id: int, *, subscription_id: int | None = None, endpoint: str | None = None) -> bool:
    """Stop pushing to one of the account's devices. False if it is not one of theirs."""
    query = select(PushSubscription.id).where(PushSubscription.account_id == account_id)
    if subscription_id is not None:
        query = query.where(PushSubscription.id == subscription_id)
    elif endpoint is not None:
        query = query.where(PushSubscription.endpoint == endpoint)
    else:
        return False
    found = db.session.scalar(query)
    if found is None:
        return False
    _forget_subscriptions([found])
    return True


# -- Preferences -----------------------------------------------------------------------------


def settings_of(account_id: int) -> NotificationSettings:
    from app.notify.events import default_settings

    return db.session.get(NotificationSettings, account_id) or default_settings(account_id)


def save_settings(account_id: int, values: dict) -> NotificationSettings:
    settings = db.session.get(NotificationSettings, account_id)
    if settings is None:
        from app.notify.events import default_settings

        settings = default_settings(account_id)
        db.session.add(settings)
    for key, value in values.items():
        setattr(settings, key, value)
    return settings
