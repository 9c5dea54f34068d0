"""Conversations between a patient (or a relative on their behalf) and a care unit's team.

A conversation belongs to one patient and one care unit. Its messages are never edited or
deleted. Per-message states (sent, read by the team, answered) come from two high-water marks on
the conversation (``team_seen_message_id``, ``last_staff_message_id``), so reading a conversation
is one update, not one per message. ``revision`` goes up on every change either side sees: the
pages poll it, and a poll with nothing new reads nothing else.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.auth.models import User
from app.db import db, now_default, str_enum
from app.people.models import CareUnit, Organisation, Person


class Topic(StrEnum):
    TREATMENT = "treatment"
    PRESCRIPTION = "prescription"
    SICK_NOTE = "sick_note"
    PRACTICAL = "practical"
    OTHER = "other"

    @property
    def label(self) -> str:
        return str(TOPIC_LABELS[self])


TOPIC_LABELS = {
    Topic.TREATMENT: _l("Spørsmål om behandling"),
    Topic.PRESCRIPTION: _l("Fornye resept"),
    Topic.SICK_NOTE: _l("Sykmelding"),
    Topic.PRACTICAL: _l("Praktisk spørsmål"),
    Topic.OTHER: _l("Annet"),
}


class ConversationState(StrEnum):
    NEW = "new"  # the patient wrote; nobody on the team has taken it yet
    OPEN = "open"  # the patient wrote; someone on the team has it
    WAITING = "waiting"  # the team answered; waiting for the patient
    CLOSED = "closed"  # ended by the team; still readable, a new one can refer to it

    @property
    def awaits_team(self) -> bool:
        return self in (ConversationState.NEW, ConversationState.OPEN)


class MessageInbox(db.Model):
    """Whether a care unit takes messages from patients, and how soon it promises an answer.
    A unit without a row takes none."""

    __tablename__ = "message_inbox"

    care_unit_id: Mapped[int] = mapped_column(ForeignKey("care_unit.id", ondelete="CASCADE"), primary_key=True)
    accepts_messages: Mapped[bool] = mapped_column(default=True)
    answer_days: Mapped[int] = mapped_column(default=3)  # working days (Monday–Friday)
    # What to do instead when it does not take messages, or shown before writing ("Ring oss ...").
    info: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(30))

    care_unit: Mapped[CareUnit] = relationship()


class Conversation(db.Model):
    __tablename__ = "conversation"
    __table_args__ = (
        # The patient's list, newest activity first (keyset pages).
        Index("ix_conversation_person_last", "person_id", "last_message_at", "id"),
        # A unit's inbox views: new / waiting / closed, oldest waiting first.
        Index("ix_conversation_unit_state", "care_unit_id", "state", "last_message_at", "id"),
        # "Ubesvart": all the unit owes an answer, oldest first.
        Index(
            "ix_conversation_unanswered",
            "care_unit_id",
            "last_message_at",
            "id",
            postgresql_where=text("state IN ('new', 'open')"),
            sqlite_where=text("state IN ('new', 'open')"),
        ),
        # "Mine": one's open conversations, oldest first.
        Index(
            "ix_conversation_mine",
            "assigned_to_id",
            "last_message_at",
            "id",
            postgresql_where=text("state <> 'closed'"),
            sqlite_where=text("state <> 'closed'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    care_unit_id: Mapped[int] = mapped_column(ForeignKey("care_unit.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    topic: Mapped[Topic] = mapped_column(str_enum(Topic))
    subject: Mapped[str] = mapped_column(String(120))
    state: Mapped[ConversationState] = mapped_column(str_enum(ConversationState), default=ConversationState.NEW)
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"))
    refers_to_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id", ondelete="SET NULL"))
    started_by_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    created_at: Mapped[datetime] = mapped_column(default=now_default)
    last_message_at: Mapped[datetime] = mapped_column(default=now_default)
    # Since when the patient has waited for the team (None: not waiting): the inbox's deadline.
    waiting_since: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"))
    last_message_id: Mapped[int] = mapped_column(default=0)
    last_staff_message_id: Mapped[int] = mapped_column(default=0)
    team_seen_message_id: Mapped[int] = mapped_column(default=0)  # the team has read up to here
    patient_seen_message_id: Mapped[int] = mapped_column(default=0)  # the patient side has read up to here
    revision: Mapped[int] = mapped_column(default=0)

    person: Mapped[Person] = relationship()
    care_unit: Mapped[CareUnit] = relationship(lazy="joined", innerjoin=True)
    organisation: Mapped[Organisation] = relationship()
    assigned_to: Mapped[User | None] = relationship(foreign_keys=[assigned_to_id])
    refers_to: Mapped[Conversation | None] = relationship(remote_side=[id])
    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation", order_by="Message.id", cascade="all, delete-orphan"
    )

    @property
    def is_closed(self) -> bool:
        return self.state is ConversationState.CLOSED

    @property
    def unread_for_patient(self) -> bool:
        return self.last_staff_message_id > self.patient_seen_message_id

    @property
    def unread_for_team(self) -> bool:
        return self.last_message_id > self.team_seen_message_id and self.state.awaits_team


class MessageStatus(StrEnum):
    SENT = "sent"
    READ = "read"
    ANSWERED = "answered"


class Message(db.Model):
    __tablename__ = "message"
    __table_args__ = (Index("ix_message_conversation", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"))
    # Who wrote it, as shown then (a staff member's name and title, or the relative's name).
    author_name: Mapped[str] = mapped_column(String(200))
    from_staff: Mapped[bool] = mapped_column(default=False)
    # A relative wrote it on the patient's behalf (the relation it was written under).
    on_behalf: Mapped[bool] = mapped_column(default=False)
    relation_label: Mapped[str | None] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=now_default)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="message", order_by="Attachment.id", cascade="all, delete-orphan"
    )

    def status(self, conversation: Conversation) -> MessageStatus | None:
        """Sent, read by the team or answered, for a message from the patient's side."""
        if self.from_staff:
            return None
        if conversation.last_staff_message_id > self.id:
            return MessageStatus.ANSWERED
        if conversation.team_seen_message_id >= self.id:
            return MessageStatus.READ
        return MessageStatus.SENT


class Attachment(db.Model):
    """A photo or PDF sent with a message. The file lives outside the web root under a generated
    name; images also get a re-encoded preview, which is all a page ever shows inline."""

    __tablename__ = "message_attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("message.id", ondelete="CASCADE"), index=True)
    stored_name: Mapped[str] = mapped_column(String(64), unique=True)
    preview_name: Mapped[str | None] = mapped_column(String(64), unique=True)
    filename: Mapped[str] = mapped_column(String(200))  # the sender's name for it, cleaned; shown only
    content_type: Mapped[str] = mapped_column(String(40))  # from the content, never from the name
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=now_default)

    message: Mapped[Message] = relationship(back_populates="attachments")

    @property
    def is_image(self) -> bool:
        return self.preview_name is not None


class MessageDraft(db.Model):
    """What someone was writing, kept when they leave the page. ``scope`` is the conversation's id,
    or 0 for a new conversation."""

    __tablename__ = "message_draft"
    __table_args__ = (UniqueConstraint("account_id", "person_id", "scope", name="uq_message_draft"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    scope: Mapped[int] = mapped_column(default=0)
    care_unit_id: Mapped[int | None] = mapped_column(ForeignKey("care_unit.id", ondelete="SET NULL"))
    topic: Mapped[str | None] = mapped_column(String(20))
    subject: Mapped[str | None] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text, default="")
    refers_to_id: Mapped[int | None]
    updated_at: Mapped[datetime] = mapped_column(default=now_default, onupdate=now_default)

    care_unit: Mapped[CareUnit | None] = relationship()


class MessageTemplate(db.Model):
    """A ready answer staff can start from (a unit's own)."""

    __tablename__ = "message_template"

    id: Mapped[int] = mapped_column(primary_key=True)
    care_unit_id: Mapped[int] = mapped_column(ForeignKey("care_unit.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=now_default)
