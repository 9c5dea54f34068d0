"""Accounts, the identities that log in to them, recovery codes and server-side sessions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from flask_login import UserMixin
from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import db, now_default, str_enum
from app.people.models import CareUnit, Person


class Role(StrEnum):
    PATIENT = "patient"
    CLINICIAN = "clinician"
    CLERK = "clerk"
    ADMINISTRATOR = "administrator"

    @property
    def is_staff(self) -> bool:
        return self is not Role.PATIENT


class IdentityProvider(StrEnum):
    LOCAL = "local"  # username + password + TOTP, kept by Varde
    IDPORTEN = "idporten"  # OIDC, level high; the subject is the person's pid


class User(UserMixin, db.Model):
    """An account. How it logs in lives in Identity, so OIDC can be added without changing this."""

    __tablename__ = "account"  # "user" is a reserved word in PostgreSQL

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), unique=True)
    role: Mapped[Role] = mapped_column(str_enum(Role), default=Role.PATIENT)
    display_name: Mapped[str] = mapped_column(String(200))
    locale: Mapped[str | None] = mapped_column(String(8))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled_at: Mapped[datetime | None]
    # Last accepted TOTP time step: a code is accepted once, never replayed.
    totp_last_step: Mapped[int | None]
    # Accounts built by `flask demo`: only these may skip the second factor, and only in demo mode.
    is_demo: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=now_default)
    last_login_at: Mapped[datetime | None]

    person: Mapped[Person | None] = relationship()
    identities: Mapped[list[Identity]] = relationship(back_populates="user", cascade="all, delete-orphan")
    memberships: Mapped[list[StaffMembership]] = relationship(back_populates="user", cascade="all, delete-orphan")

    @property
    def is_active(self) -> bool:  # Flask-Login
        return self.active

    @property
    def is_staff(self) -> bool:
        return self.role.is_staff

    @property
    def has_second_factor(self) -> bool:
        return self.totp_enabled_at is not None


class Identity(db.Model):
    """A way to log in: (provider, subject) is unique. Local: the username. ID-porten: the pid."""

    __table_args__ = (UniqueConstraint("provider", "subject", name="uq_identity_provider_subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    provider: Mapped[IdentityProvider] = mapped_column(str_enum(IdentityProvider))
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=now_default)
    last_used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="identities")


class RecoveryCode(db.Model):
    """A one-time code that stands in for the authenticator app. Only a hash is stored."""

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(255))
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=now_default)


class StaffMembership(db.Model):
    """A staff account works in a care unit (the care relation policy builds on this)."""

    __table_args__ = (UniqueConstraint("user_id", "care_unit_id", name="uq_staff_membership_user_unit"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    care_unit_id: Mapped[int] = mapped_column(ForeignKey("care_unit.id"), index=True)

    user: Mapped[User] = relationship(back_populates="memberships")
    care_unit: Mapped[CareUnit] = relationship()


class ServerSession(db.Model):
    """A browser session. The cookie holds a random token; only its SHA-256 is stored here."""

    __tablename__ = "server_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=now_default)
    authenticated_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime] = mapped_column(default=now_default, index=True)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))
