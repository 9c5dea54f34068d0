"""The event (outbox) table: every change a patient should hear about, written in the same
transaction as the change. Delivery (push, the notification centre) reads these rows after commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import db, now_default


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
    # Set by the delivery worker (notification issue) once the event has been turned into notifications.
    delivered_at: Mapped[datetime | None]
