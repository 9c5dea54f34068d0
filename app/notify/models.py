"""Events (the outbox), the notifications they become, push subscriptions and push deliveries.

An event is what happened to someone's record. In the same transaction it becomes one notification
per account that should hear of it (the patient, a parent) — the rows of the in-app notification
centre — and one push delivery per device of that account that wants this kind. The worker sends
deliveries after commit. None of these rows holds health detail: kinds, ids and paths only.
"""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import db, now_default, str_enum


class Event(db.Model):
    """One thing that happened to someone's record. Never holds health detail: a kind and an id."""

    __tablename__ = "event"
    __table_args__ = (Index("ix_event_undelivered", "delivered_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))  # result_released, note_released, ...
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[int | None]
    # Where a tap should lead (a path inside Varde), and nothing else about the item.
    url: Mapped[str | None] = mapped_column(String(300))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=now_default)
    # When the event was turned into notifications (in the same transaction as the change).
    delivered_at: Mapped[datetime | None]

    notifications: Mapped[list[Notification]] = relationship(back_populates="event")


class Notification(db.Model):
    """One account's notice of one event: a row in the notification centre, opened by its token."""

    __tablename__ = "notification"
    __table_args__ = (
        UniqueConstraint("event_id", "account_id", name="uq_notification_event_account"),
        Index("ix_notification_account_unread", "account_id", "read_at", "id"),  # the bell's count
        Index("ix_notification_account_list", "account_id", "id"),  # the list, newest first
        Index("ix_notification_object", "object_type", "object_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Opaque: what a push payload and the tap URL carry, so neither counts or guesses anything.
    token: Mapped[str] = mapped_column(String(32), unique=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    # Whose record it is about: the account's own person, or a child of theirs.
    subject_person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[int | None]
    url: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=now_default)
    read_at: Mapped[datetime | None]

    event: Mapped[Event] = relationship(back_populates="notifications")
    deliveries: Mapped[list[PushDelivery]] = relationship(back_populates="notification")


class PushSubscription(db.Model):
    """One device's web push subscription (the browser's PushSubscription), kept per account."""

    __tablename__ = "push_subscription"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    # The push service URL: unique, so subscribing the same device again updates its row.
    endpoint: Mapped[str] = mapped_column(String(1024), unique=True)
    p256dh: Mapped[str] = mapped_column(String(120))
    auth: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(120))  # "Chrome på Android"
    created_at: Mapped[datetime] = mapped_column(default=now_default)
    # The device said it still holds this subscription (each time Varde is opened on it).
    last_seen_at: Mapped[datetime] = mapped_column(default=now_default, index=True)
    last_success_at: Mapped[datetime | None]


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENT = "sent"  # the push service answered 201
    FAILED = "failed"  # given up: a 400/413, or retries used up; the reason is recorded
    GONE = "gone"  # the subscription no longer exists (404/410), or was removed
    EXPIRED = "expired"  # its time ran out before it could be sent (an offer)


class PushDelivery(db.Model):
    """Sending one notification to one device: at least once, marked sent only after a 201."""

    __tablename__ = "push_delivery"
    __table_args__ = (
        UniqueConstraint("notification_id", "subscription_id", name="uq_push_delivery_notification_subscription"),
        Index("ix_push_delivery_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notification.id", ondelete="CASCADE"))
    # (notification_id is indexed by the unique constraint below, which starts with it.)
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("push_subscription.id", ondelete="SET NULL"), index=True
    )
    state: Mapped[DeliveryState] = mapped_column(str_enum(DeliveryState), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=now_default)
    # A worker holds the row until then; if it dies mid-send, the row is sent again after that.
    claimed_until: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]  # an offer is worth nothing after it expires
    sent_at: Mapped[datetime | None]
    last_status: Mapped[int | None]  # the push service's last HTTP status (0: no answer)
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=now_default, index=True)  # pruning

    notification: Mapped[Notification] = relationship(back_populates="deliveries")


class NotificationSettings(db.Model):
    """What an account wants pushed, and when not. No row: the defaults below."""

    __tablename__ = "notification_settings"

    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), primary_key=True)
    record: Mapped[bool] = mapped_column(default=True)  # results, notes, documents
    messages: Mapped[bool] = mapped_column(default=True)
    reminders: Mapped[bool] = mapped_column(default=True)
    offers: Mapped[bool] = mapped_column(default=True)
    quiet_enabled: Mapped[bool] = mapped_column(default=True)
    quiet_start: Mapped[time] = mapped_column(default=time(22, 0))
    quiet_end: Mapped[time] = mapped_column(default=time(7, 0))
    offers_break_quiet: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(default=now_default, onupdate=now_default)
