"""What patients and staff do with conversations: start, reply, read, assign, close, drafts.

Plain functions on objects the access policy has already let through (routes call
``policy.check_messages`` / ``policy.load_conversation`` first). A refused action raises
``Refused`` before anything is written (attachments included) and the caller commits what
succeeded; an answer from the team writes its event in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, case, func, or_, select, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute, joinedload, selectinload

from app import clock
from app.access import policy
from app.access.policy import Decision
from app.appointments.models import Appointment, AppointmentStatus
from app.auth.models import Role, StaffMembership, User
from app.db import db
from app.messages import attachments
from app.messages.models import (
    Attachment,
    Conversation,
    ConversationState,
    Message,
    MessageDraft,
    MessageInbox,
    MessageTemplate,
    Topic,
)
from app.notify import events
from app.people.models import CareUnit, Person, UnitRelation, UnitRelationKind
from app.record.models import ItemKind, RecordItem, ReleaseState
from app.refusal import Refused

# Why the patient may write to a unit, strongest first.
RELATION_WORDS = {
    "gp": _l("Fastlegekontoret ditt"),
    "referral": _l("Du er henvist hit"),
    "follow_up": _l("Du følges opp her"),
    "appointment": _l("Du har en time her"),
    "visit": _l("Du har vært her"),
    "conversation": _l("Du har skrevet med dem"),
}
_RELATION_ORDER = list(RELATION_WORDS)
# What a relative is to the patient, shown with what they wrote.


@dataclass
class UnitChoice:
    unit: CareUnit
    inbox: MessageInbox | None
    relation: str  # a key of RELATION_WORDS

    @property
    def accepts(self) -> bool:
        return self.inbox is not None and self.inbox.accepts_messages

    @property
    def relation_text(self) -> str:
        return str(RELATION_WORDS[self.relation])


@dataclass
class Upload:
    """A file as it came from the form (name as the sender's device called it, bytes)."""

    filename: str | None
    data: bytes


# -- Which units a patient may write to --------------------------------------------------------


def units_for(patient: Person, now: datetime | None = None) -> list[UnitChoice]:
    """Every care unit the patient has a relation to: their GP office, a referral or follow-up, a
    time there (upcoming, or within MESSAGE_RELATION_MONTHS), a visit there in that time, or a
    conversation with it in that time."""
    now = now or clock.utcnow()
    since = now - timedelta(days=31 * current_app.config["MESSAGE_RELATION_MONTHS"])
    today = clock.today_in_norway()
    found: dict[int, str] = {}

    def note(unit_id: int | None, why: str) -> None:
        if unit_id is not None and (
            unit_id not in found or _RELATION_ORDER.index(why) < _RELATION_ORDER.index(found[unit_id])
        ):
            found[unit_id] = why

    for unit_id, kind in db.session.execute(
        select(UnitRelation.care_unit_id, UnitRelation.kind).where(
            UnitRelation.person_id == patient.id,
            or_(UnitRelation.valid_until.is_(None), UnitRelation.valid_until >= today),
        )
    ):
        note(unit_id, UnitRelationKind(kind).value)
    for (unit_id,) in db.session.execute(
        select(Appointment.care_unit_id)
        .where(
            Appointment.person_id == patient.id,
            Appointment.status.in_((AppointmentStatus.BOOKED, AppointmentStatus.ATTENDED)),
            Appointment.start >= since,
        )
        .distinct()
    ):
        note(unit_id, "appointment")
    visits = db.session.execute(
        select(RecordItem.organisation_id, RecordItem.care_unit_name)
        .where(
            RecordItem.person_id == patient.id,
            RecordItem.kind == ItemKind.ENCOUNTER,
            RecordItem.release_state == ReleaseState.RELEASED,
            RecordItem.withheld_at.is_(None),
            RecordItem.effective_at >= since,
            RecordItem.care_unit_name.is_not(None),
        )
        .distinct()
    ).all()
    if visits:
        for (unit_id,) in db.session.execute(
            select(CareUnit.id).where(tuple_(CareUnit.organisation_id, CareUnit.name).in_(visits))
        ):
            note(unit_id, "visit")
    for (unit_id,) in db.session.execute(
        select(Conversation.care_unit_id)
        .where(Conversation.person_id == patient.id, Conversation.last_message_at >= since)
        .distinct()
    ):
        note(unit_id, "conversation")
    if not found:
        return []
    rows = db.session.execute(
        select(CareUnit, MessageInbox)
        .options(joinedload(CareUnit.organisation))
        .outerjoin(MessageInbox, MessageInbox.care_unit_id == CareUnit.id)
        .where(CareUnit.id.in_(found))
    ).all()
    choices = [UnitChoice(unit, inbox, found[unit.id]) for unit, inbox in rows]
    return sorted(choices, key=lambda c: (not c.accepts, _RELATION_ORDER.index(c.relation), c.unit.name))


def unit_choice(patient: Person, unit_id: int | None) -> UnitChoice | None:
    return next((c for c in units_for(patient) if c.unit.id == unit_id), None)


def working_days_after(start: datetime, days: int) -> datetime:
    """``days`` working days (Monday–Friday) after ``start``, at the same time of day in Norway."""
    moment = start.astimezone(clock.NORWAY)
    left = days
    while left > 0:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            left -= 1
    return moment


def answer_due(conversation: Conversation, inbox: MessageInbox | None) -> datetime | None:
    """When the team promised to have answered (None when nobody is waiting for the team)."""
    if conversation.waiting_since is None or inbox is None:
        return None
    return working_days_after(conversation.waiting_since, inbox.answer_days)


# -- Reading -----------------------------------------------------------------------------------


def conversations(
    patient: Person, decision: Decision, *, before: tuple[datetime, int] | None = None, limit: int = 20
) -> list[Conversation]:
    """The patient's conversations, latest activity first, ``limit`` + 1 (the extra says "more")."""
    query = (
        select(Conversation)
        .options(joinedload(Conversation.care_unit).joinedload(CareUnit.organisation))
        .where(Conversation.person_id == patient.id, policy.conversation_scope(decision))
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(tuple_(Conversation.last_message_at, Conversation.id) < before)
    return list(db.session.scalars(query))


def earlier_conversations(patient: Person, decision: Decision, unit_id: int) -> list[Conversation]:
    """What a new conversation to a unit may refer to: the patient's earlier ones with that unit,
    newest first (the team reads what it refers to; another unit's is not theirs to read)."""
    return list(
        db.session.scalars(
            select(Conversation)
            .where(
                Conversation.person_id == patient.id,
                Conversation.care_unit_id == unit_id,
                policy.conversation_scope(decision),
            )
            .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
            .limit(50)
        )
    )


def with_messages(conversation: Conversation) -> list[Message]:
    return list(
        db.session.scalars(
            select(Message)
            .options(selectinload(Message.attachments))
            .where(Message.conversation_id == conversation.id)
            .order_by(Message.id)
        )
    )


def _bump(conversation: Conversation, **values: object) -> None:
    """Change the conversation and its revision in one UPDATE (two writers never lose a step)."""
    db.session.execute(
        update(Conversation)
        .where(Conversation.id == conversation.id)
        .values(revision=Conversation.revision + 1, **values)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(conversation)


def _at_least(column: InstrumentedAttribute[int], value: int) -> ColumnElement[int]:
    """A high-water mark only rises, whatever another request wrote meanwhile."""
    return case((column < value, value), else_=column)


def _lock(conversation: Conversation) -> None:
    """Read the conversation again, locked until commit, so writers to one conversation take
    turns and each decides on what the one before it left. (SQLite has no row locks: a no-op
    UPDATE first takes its one write lock, so the read that follows is already inside it.)"""
    if db.engine.dialect.name == "sqlite":
        db.session.execute(
            update(Conversation)
            .where(Conversation.id == conversation.id)
            .values(revision=Conversation.revision)
            .execution_options(synchronize_session=False)
        )
    db.session.execute(
        select(Conversation)
        .where(Conversation.id == conversation.id)
        # Only the conversation's row (not the care unit it is joined with), and FOR NO KEY
        # UPDATE: new conversations and messages that point at it are not held up.
        .with_for_update(of=Conversation, key_share=True)
        .execution_options(populate_existing=True)
    ).scalar_one()


def seen_by_patient(conversation: Conversation) -> None:
    """The patient's side has read everything so far (unread marks go; the team's view does not change)."""
    if conversation.patient_seen_message_id < conversation.last_message_id:
        db.session.execute(
            update(Conversation)
            .where(Conversation.id == conversation.id)
            .values(
                patient_seen_message_id=_at_least(Conversation.patient_seen_message_id, conversation.last_message_id)
            )
            .execution_options(synchronize_session=False)
        )
        conversation.patient_seen_message_id = conversation.last_message_id


def seen_by_team(conversation: Conversation) -> None:
    """Someone on the team opened it: the patient's messages so far show as read."""
    if conversation.team_seen_message_id < conversation.last_message_id:
        _bump(
            conversation,
            team_seen_message_id=_at_least(Conversation.team_seen_message_id, conversation.last_message_id),
        )


# -- Writing -----------------------------------------------------------------------------------


def _check_text(body: str) -> str:
    body = (body or "").replace("\r\n", "\n").strip()
    limit = current_app.config["MESSAGE_MAX_CHARS"]
    if not body:
        raise Refused(_("Skriv meldingen før du sender den."))
    if len(body) > limit:
        raise Refused(_("Meldingen er for lang: %(n)s tegn. Den kan være høyst %(max)s tegn.", n=len(body), max=limit))
    return body


def _check_files(uploads: list[Upload]) -> list[attachments.Checked]:
    uploads = [u for u in uploads if u.data or u.filename]
    most = current_app.config["MESSAGE_MAX_ATTACHMENTS"]
    if len(uploads) > most:
        raise Refused(_("Du kan legge ved høyst %(n)s filer i en melding.", n=most))
    try:
        return [attachments.check(u.filename, u.data) for u in uploads]
    except attachments.Rejected as refused:
        raise Refused(str(refused)) from None


def _add_message(
    conversation: Conversation,
    author: User,
    body: str,
    files: list[attachments.Checked],
    *,
    from_staff: bool,
    relation: str | None,
    stored: attachments.Stored,
) -> Message:
    message = Message(
        conversation=conversation,
        author_id=author.id,
        author_name=author.display_name,
        from_staff=from_staff,
        on_behalf=relation is not None,
        relation_label=relation,
        body=body,
        created_at=clock.utcnow(),
    )
    for checked in files:
        message.attachments.append(Attachment(**attachments.store(checked, stored)))
    db.session.add(message)
    db.session.flush()
    return message


def _relation(decision: Decision) -> str | None:
    """None when the patient writes themselves; else what the writer is to them ("parent")."""
    return None if decision.is_patient else decision.basis


def start(
    viewer: User,
    patient: Person,
    decision: Decision,
    *,
    choice: UnitChoice,
    topic: str | None,
    subject: str,
    body: str,
    uploads: list[Upload],
    refers_to_id: int | None,
    stored: attachments.Stored,
) -> Conversation:
    """A new conversation with a unit the patient has a relation to (``choice``, from ``unit_choice``:
    the caller has it already) and that takes messages."""
    if not choice.accepts:
        raise Refused(_("%(unit)s tar ikke imot meldinger her. Ring dem i stedet.", unit=choice.unit.name))
    try:
        chosen_topic = Topic(topic or "")
    except ValueError:
        raise Refused(_("Velg hva meldingen gjelder.")) from None
    subject = " ".join((subject or "").split())
    if not subject:
        raise Refused(_("Skriv en kort overskrift."))
    if len(subject) > 120:
        raise Refused(_("Overskriften kan være høyst 120 tegn."))
    text = _check_text(body)
    refers_to = None
    if refers_to_id:
        refers_to = db.session.get(Conversation, refers_to_id)
        if refers_to is None or refers_to.person_id != patient.id or refers_to.care_unit_id != choice.unit.id:
            raise Refused(_("Velg en av dine tidligere samtaler med dette stedet, eller ingen."))
    files = _check_files(uploads)
    now = clock.utcnow()
    conversation = Conversation(
        person_id=patient.id,
        care_unit_id=choice.unit.id,
        organisation_id=choice.unit.organisation_id,
        topic=chosen_topic,
        subject=subject,
        state=ConversationState.NEW,
        refers_to=refers_to,
        started_by_id=viewer.id,
        created_at=now,
        last_message_at=now,
        waiting_since=now,
    )
    db.session.add(conversation)
    message = _add_message(
        conversation, viewer, text, files, from_staff=False, relation=_relation(decision), stored=stored
    )
    conversation.last_message_id = message.id
    conversation.patient_seen_message_id = message.id
    discard_draft(viewer, patient, new_scope(choice.unit.id))
    legacy = draft(viewer, patient, 0)
    if legacy is not None and legacy.care_unit_id in (None, choice.unit.id):
        db.session.delete(legacy)
    return conversation


def reply_as_patient(
    viewer: User,
    patient: Person,
    decision: Decision,
    conversation: Conversation,
    body: str,
    uploads: list[Upload],
    stored: attachments.Stored,
) -> Message:
    """The patient's side writes again; the conversation goes back to the team."""
    _lock(conversation)
    if conversation.is_closed:
        raise Refused(_("Samtalen er avsluttet. Start en ny samtale; du kan vise til denne."))
    text = _check_text(body)
    files = _check_files(uploads)
    message = _add_message(
        conversation, viewer, text, files, from_staff=False, relation=_relation(decision), stored=stored
    )
    state = ConversationState.OPEN if conversation.assigned_to_id else ConversationState.NEW
    _bump(
        conversation,
        state=state,
        last_message_at=message.created_at,
        last_message_id=message.id,
        patient_seen_message_id=message.id,
        waiting_since=conversation.waiting_since or message.created_at,  # the row is locked: read as is
    )
    discard_draft(viewer, patient, conversation.id)
    return message


def _unseen_by_writer(conversation: Conversation, seen: int | None) -> None:
    """Refuse when the patient wrote after the page the staff member answered from: an answer
    must not mark a message read and answered that nobody on the team has seen."""
    if seen is not None and conversation.last_message_id > seen:
        raise Refused(
            _("Pasienten har skrevet en ny melding mens du skrev. Les den før du sender; teksten din er beholdt.")
        )


def reply_as_staff(
    viewer: User,
    conversation: Conversation,
    body: str,
    uploads: list[Upload],
    close: bool,
    stored: attachments.Stored,
    seen: int | None = None,
) -> Message:
    """The team answers: the patient gets an event (and push) that a message arrived; the
    conversation waits for the patient, or is closed with the answer. ``seen``: the last message
    the staff member's page showed."""
    _lock(conversation)
    if conversation.is_closed:
        raise Refused(_("Samtalen er avsluttet. Pasienten kan starte en ny."))
    _unseen_by_writer(conversation, seen)
    text = _check_text(body)
    files = _check_files(uploads)
    message = _add_message(conversation, viewer, text, files, from_staff=True, relation=None, stored=stored)
    now = message.created_at
    _bump(
        conversation,
        state=ConversationState.CLOSED if close else ConversationState.WAITING,
        assigned_to_id=func.coalesce(Conversation.assigned_to_id, viewer.id),
        last_message_at=now,
        last_message_id=message.id,
        last_staff_message_id=message.id,
        team_seen_message_id=message.id,
        waiting_since=None,
        closed_at=now if close else None,
        closed_by_id=viewer.id if close else None,
    )
    events.emit(
        conversation.person_id,
        "message_received",
        object_type="conversation",
        object_id=conversation.id,
        url=url_for("messages.conversation", conversation_id=conversation.id),
        actor_account_id=viewer.id,
    )
    discard_draft(viewer, conversation.person, conversation.id)
    return message


def assign(conversation: Conversation, to: User | None) -> None:
    """Give the conversation to someone on the team (None: back to the unit's new list)."""
    _lock(conversation)
    state = conversation.state
    if state.awaits_team:
        state = ConversationState.OPEN if to is not None else ConversationState.NEW
    _bump(conversation, assigned_to_id=to.id if to is not None else None, state=state)


def close(conversation: Conversation, by: User, seen: int | None = None) -> None:
    _lock(conversation)
    if conversation.is_closed:
        return
    _unseen_by_writer(conversation, seen)
    _bump(
        conversation, state=ConversationState.CLOSED, closed_at=clock.utcnow(), closed_by_id=by.id, waiting_since=None
    )


def colleagues(unit_id: int) -> list[User]:
    """Who on the unit's team a conversation can be given to."""
    return list(
        db.session.scalars(
            select(User)
            .join(StaffMembership, StaffMembership.user_id == User.id)
            .where(
                StaffMembership.care_unit_id == unit_id,
                User.role.in_((Role.CLINICIAN, Role.CLERK)),
                User.active.is_(True),
            )
            .order_by(User.display_name)
        )
    )


def templates_for(unit_id: int) -> list[MessageTemplate]:
    return list(
        db.session.scalars(
            select(MessageTemplate).where(MessageTemplate.care_unit_id == unit_id).order_by(MessageTemplate.title)
        )
    )


# -- The staff inbox ---------------------------------------------------------------------------

VIEWS = ("ny", "mine", "ubesvart", "venter", "lukket")
_VIEW_STATES = {
    "ny": (ConversationState.NEW,),
    # Everything the team owes an answer, whoever has it (someone away, or no longer here).
    "ubesvart": (ConversationState.NEW, ConversationState.OPEN),
    "mine": (ConversationState.OPEN, ConversationState.NEW, ConversationState.WAITING),
    "venter": (ConversationState.WAITING,),
    "lukket": (ConversationState.CLOSED,),
}
_OLDEST_FIRST = {"ny", "mine", "ubesvart"}
# The partial indexes' own predicates, written as they are (not as bound values), so that a plan
# PostgreSQL prepares once can still tell the index applies.
_UNANSWERED = text("conversation.state IN ('new', 'open')")
_NOT_CLOSED = text("conversation.state <> 'closed'")  # queues: whoever has waited longest first


def inbox(
    unit_id: int, view: str, user: User, *, after: tuple[datetime, int] | None = None, limit: int = 20
) -> list[Conversation]:
    """One page of a unit's inbox view, ``limit`` + 1 rows (the extra says "more")."""
    # The people by primary key in a second query: joined into the page's query they can make the
    # planner read the whole person table before the LIMIT.
    query = select(Conversation).options(selectinload(Conversation.person), selectinload(Conversation.assigned_to))
    if view == "mine":  # the partial index ix_conversation_mine gives the order
        query = query.where(Conversation.assigned_to_id == user.id, _NOT_CLOSED, Conversation.care_unit_id == unit_id)
    elif view == "ubesvart":  # the partial index ix_conversation_unanswered gives the order
        query = query.where(Conversation.care_unit_id == unit_id, _UNANSWERED)
    else:
        query = query.where(Conversation.care_unit_id == unit_id, Conversation.state.in_(_VIEW_STATES[view]))
    key = tuple_(Conversation.last_message_at, Conversation.id)
    if view in _OLDEST_FIRST:
        query = query.order_by(Conversation.last_message_at, Conversation.id)
        if after is not None:
            query = query.where(key > after)
    else:
        query = query.order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        if after is not None:
            query = query.where(key < after)
    return list(db.session.scalars(query.limit(limit + 1)))


COUNT_CAP = 100  # a badge says "99+" beyond: the count is for a glance, and costs what it shows


def inbox_counts(unit_id: int, user: User) -> dict[str, int]:
    """How many are new in the unit, and how many of mine await an answer (capped: "99+")."""

    def capped(*where: ColumnElement[bool]):  # type: ignore[no-untyped-def]
        inner = select(Conversation.id).where(*where).limit(COUNT_CAP).subquery()
        return select(func.count()).select_from(inner).scalar_subquery()

    new, mine = db.session.execute(
        select(
            capped(Conversation.care_unit_id == unit_id, Conversation.state == ConversationState.NEW),
            capped(
                Conversation.assigned_to_id == user.id,
                text("conversation.state = 'open'"),  # a literal, so ix_conversation_mine applies
                Conversation.care_unit_id == unit_id,
            ),
        )
    ).one()
    return {"ny": new or 0, "mine": mine or 0}


# -- Drafts ------------------------------------------------------------------------------------


def new_scope(unit_id: int) -> int:
    """The draft scope of a new message to a unit: one draft per unit, so starting to write to
    another unit never replaces what waits for the first (conversations have positive scopes)."""
    return -unit_id


def new_message_draft(viewer: User, patient: Person, unit_id: int) -> MessageDraft | None:
    """The unsent new message to this unit: its own draft, or one kept before drafts were per unit."""
    found = draft(viewer, patient, new_scope(unit_id))
    if found is None:
        found = draft(viewer, patient, 0)
        if found is not None and found.care_unit_id not in (None, unit_id):
            found = None
    return found


def new_message_drafts(viewer: User, patient: Person) -> list[MessageDraft]:
    """Every new message not yet sent (with some text), newest first."""
    return list(
        db.session.scalars(
            select(MessageDraft)
            .where(
                MessageDraft.account_id == viewer.id,
                MessageDraft.person_id == patient.id,
                MessageDraft.scope <= 0,
                MessageDraft.body != "",
            )
            .order_by(MessageDraft.updated_at.desc())
        )
    )


def draft(viewer: User, patient: Person, scope: int) -> MessageDraft | None:
    return db.session.scalar(
        select(MessageDraft).where(
            MessageDraft.account_id == viewer.id, MessageDraft.person_id == patient.id, MessageDraft.scope == scope
        )
    )


def just_sent(viewer: User, patient: Person, scope: int, body: str | None) -> bool:
    """Is this the text the writer has just sent (an autosave that arrives after the send, as the
    text box loses focus when Send is pressed)? Then it is not kept as a draft again."""
    text = (body or "").replace("\r\n", "\n").strip()
    if not text:
        return False
    recent = clock.utcnow() - timedelta(minutes=2)
    query = (
        select(Message.body)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.author_id == viewer.id, Conversation.person_id == patient.id, Message.created_at >= recent)
        .order_by(Message.id.desc())
        .limit(1)
    )
    if scope > 0:
        query = query.where(Message.conversation_id == scope)
    return db.session.scalar(query) == text


def save_draft(viewer: User, patient: Person, scope: int, **fields: object) -> None:
    """Keep what is being written (one row per writer, record and conversation; the last save wins)."""
    limit = current_app.config["MESSAGE_MAX_CHARS"]
    values = {
        "body": str(fields.get("body") or "")[: limit * 2],
        "subject": (str(fields.get("subject") or "")[:120]) or None,
        "topic": fields.get("topic") if fields.get("topic") in {t.value for t in Topic} else None,
        "care_unit_id": fields.get("care_unit_id") if isinstance(fields.get("care_unit_id"), int) else None,
        "refers_to_id": fields.get("refers_to_id") if isinstance(fields.get("refers_to_id"), int) else None,
        "updated_at": clock.utcnow(),
    }
    if values["care_unit_id"] is not None and db.session.get(CareUnit, values["care_unit_id"]) is None:
        values["care_unit_id"] = None
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(MessageDraft).values(account_id=viewer.id, person_id=patient.id, scope=scope, **values)
    db.session.execute(
        statement.on_conflict_do_update(index_elements=["account_id", "person_id", "scope"], set_=values)
    )


def carry_to_new(viewer: User, patient: Person, conversation: Conversation, body: str | None) -> None:
    """A reply that could not be sent because the conversation was closed meanwhile becomes the
    draft of a new message to the same unit, about the same thing, referring to this one."""
    earlier = new_message_draft(viewer, patient, conversation.care_unit_id)
    text = "\n\n".join(part for part in ((earlier.body or "").strip() if earlier else "", (body or "").strip()) if part)
    save_draft(
        viewer,
        patient,
        new_scope(conversation.care_unit_id),
        care_unit_id=conversation.care_unit_id,
        topic=conversation.topic.value,
        subject=conversation.subject,
        body=text,
        refers_to_id=conversation.id,
    )
    if earlier is not None and earlier.scope == 0:
        db.session.delete(earlier)  # merged into the unit's own draft
    discard_draft(viewer, patient, conversation.id)


def discard_draft(viewer: User, patient: Person, scope: int) -> None:
    found = draft(viewer, patient, scope)
    if found is not None:
        db.session.delete(found)
