"""The audit log: one row per read of health data and per security-relevant event."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import db, now_default


class AuditEvent(db.Model):
    """Who did what, to whose data, when. Never holds health detail: only kinds and ids.

    ``subject_person_id`` is whose record was touched; the patient reads these rows in
    "who has seen my record". ``on_behalf_of_person_id`` is set when a relative acts for someone.
    """

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(default=now_default, index=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"), index=True)
    subject_person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), index=True)
    on_behalf_of_person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str | None] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16), default="ok")
    # Why access was allowed: "own" (the patient), "care_relation" (staff), "proxy" and so on.
    basis: Mapped[str | None] = mapped_column(String(32))
    # The organisation the staff member acted for (shown in "who has seen my record").
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id", ondelete="SET NULL"))
    ip: Mapped[str | None] = mapped_column(String(64))
