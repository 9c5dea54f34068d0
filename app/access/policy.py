"""The one access policy for health data. Every read of a person's record passes ``check``.

``check(viewer, patient, item=..., category=...)`` decides, writes one audit row (who, acting for
whom, on what basis, which item or category, outcome, UTC time) and either returns a Decision —
whose ``items`` clause every list query must use — or raises 404. Existence never leaks: another
patient's item, an unreleased one and one that does not exist all look the same.

Bases today:
- ``own``: a patient reading their own record sees released items that are not withheld.
- ``care_relation``: a clinician sees the items of the organisations they work in, for patients
  who have items there (a visit, a result, a note). Clerks and administrators see no clinical items.
- ``parent``: a parent with parental responsibility sees what their child under 12 sees, except
  items a clinician hid from guardians (pasient- og brukerrettighetsloven § 3-4). From 12 the
  parent's access to health information ends here; the relatives issue adds the limited 12–16
  access, adult proxies and guardians — in this file, nowhere else.

Who hears of an event (``notification_recipients``) and whose record a user is looking at
(``current_patient``, ``switchable_people``) are decided here too, by the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import NoReturn

from flask import Flask, Response, abort, g, session
from sqlalchemy import ColumnElement, and_, or_, select, true

from app import clock
from app.access.services import audit
from app.appointments.models import Appointment, Offer
from app.auth.models import Role, StaffMembership, User
from app.db import db
from app.messages.models import Attachment, Conversation
from app.people.models import CareUnit, Person, Relation, RelationKind, age_on
from app.record.models import RecordItem, ReleaseState

# What a viewer may ask for besides a single item.
CATEGORIES = frozenset(
    {
        "overview",
        "results",
        "notes",
        "visits",
        "medications",
        "immunizations",
        "documents",
        "export",
        "access_log",  # "who has seen my record"
        "record",  # the staff console's view of everything held
        "appointments",  # a patient's times (list, book, cancel, offers); see check_appointment
        "messages",  # a patient's conversations with care teams; see check_messages
    }
)


@dataclass(frozen=True)
class Decision:
    basis: str
    organisation_ids: tuple[int, ...] | None  # None: any organisation
    items: ColumnElement[bool]  # the clause a list query must apply to record_item
    is_patient: bool
    care_organisation_id: int | None = None  # staff: an organisation of theirs holding the patient's items
    care_unit_ids: tuple[int, ...] | None = None  # staff reading messages: their units' only; None: any


def staff_organisation_ids(user: User) -> tuple[int, ...]:
    return tuple(
        sorted(
            set(
                db.session.scalars(
                    select(CareUnit.organisation_id)
                    .join(StaffMembership, StaffMembership.care_unit_id == CareUnit.id)
                    .where(StaffMembership.user_id == user.id)
                )
            )
        )
    )


def care_organisation(org_ids: tuple[int, ...], patient: Person) -> int | None:
    """One of ``org_ids`` that holds items about the patient or has given them a time (the care
    relation), or None."""
    if not org_ids:
        return None
    found = db.session.scalar(
        select(RecordItem.organisation_id)
        .where(RecordItem.person_id == patient.id, RecordItem.organisation_id.in_(org_ids))
        .limit(1)
    )
    if found is None:
        found = db.session.scalar(
            select(Appointment.organisation_id)
            .where(Appointment.person_id == patient.id, Appointment.organisation_id.in_(org_ids))
            .limit(1)
        )
    return found


def staff_unit_ids(user: User) -> tuple[int, ...]:
    """The care units a staff account works in (its scheduling console shows these)."""
    if not user.role.is_staff or user.role is Role.ADMINISTRATOR:
        return ()
    return tuple(
        sorted(db.session.scalars(select(StaffMembership.care_unit_id).where(StaffMembership.user_id == user.id)))
    )


def patient_visible() -> ColumnElement[bool]:
    return and_(RecordItem.release_state == ReleaseState.RELEASED, RecordItem.withheld_at.is_(None))


# A parent sees a child's health information until the child turns 12 (§ 3-4; 12–16 comes with
# the relatives issue).
PARENT_FULL_ACCESS_UNTIL_AGE = 12
ACTING_FOR = "acting_for"  # session key: the person whose record the user chose to see


def parent_may_see(holder_person_id: int | None, child: Person, today: date | None = None) -> bool:
    """Does this person hold parental responsibility for ``child``, and is the child young enough?"""
    return parent_may_see_child(holder_person_id, child.id, child.birth_date, today)


def parent_may_see_child(
    holder_person_id: int | None, child_id: int, birth_date: date, today: date | None = None
) -> bool:
    """``parent_may_see`` for a child known by id and birth date."""
    return (holder_person_id, child_id) in parents_allowed([(holder_person_id, child_id, birth_date)], today)


def parents_allowed(
    pairs: Iterable[tuple[int | None, int, date]], today: date | None = None
) -> set[tuple[int | None, int]]:
    """Which (holder, child) of ``pairs`` (holder's person id, child's id, child's birth date) may
    the holder see as the child's parent today: ``parent_may_see`` for many at once, in a query per
    500 (the push worker checks each batch again when it sends)."""
    today = today or clock.today_in_norway()
    young = {
        (holder, child)
        for holder, child, birth_date in pairs
        if holder is not None and holder != child and age_on(birth_date, today) < PARENT_FULL_ACCESS_UNTIL_AGE
    }
    allowed: set[tuple[int | None, int]] = set()
    ordered = sorted(young)  # type: ignore[arg-type]
    for i in range(0, len(ordered), 500):
        chunk = ordered[i : i + 500]
        rows = db.session.execute(
            select(Relation.holder_id, Relation.subject_id).where(
                Relation.holder_id.in_({holder for holder, _ in chunk}),
                Relation.subject_id.in_({child for _, child in chunk}),
                Relation.kind == RelationKind.PARENT,
                or_(Relation.valid_until.is_(None), Relation.valid_until >= today),
            )
        )
        allowed.update((holder, child) for holder, child in rows if (holder, child) in young)
    return allowed


def _decide(viewer: User, patient: Person, item: RecordItem | None) -> Decision | None:
    if viewer.role is Role.PATIENT:
        if viewer.person_id == patient.id:
            if item is not None and not item.is_visible_to_patient:
                return None
            return Decision("own", None, patient_visible(), True)
        if parent_may_see(viewer.person_id, patient):
            if item is not None and (not item.is_visible_to_patient or item.hidden_from_guardians):
                return None
            return Decision("parent", None, and_(patient_visible(), RecordItem.hidden_from_guardians.is_(False)), False)
        return None
    if viewer.role is Role.CLINICIAN:
        org_ids = staff_organisation_ids(viewer)
        care_org = care_organisation(org_ids, patient)
        if care_org is None:
            return None
        if item is not None and item.organisation_id not in org_ids:
            return None
        return Decision("care_relation", org_ids, RecordItem.organisation_id.in_(org_ids), False, care_org)
    return None


def _concluded(
    decision: Decision | None,
    viewer: User,
    patient: Person,
    action: str,
    object_type: str,
    object_id: int | None,
    organisation_id: int | None,
) -> Decision:
    """Every check ends here: one audit row for the decision (who, whose, what, outcome, basis,
    for which organisation), then the decision — or, refused, 404 with the denial committed (the
    error page rolls back the request's work)."""
    audit(
        action,
        actor_user_id=viewer.id,
        subject_person_id=patient.id,
        object_type=object_type,
        object_id=object_id,
        outcome="ok" if decision else "denied",
        basis=decision.basis if decision else None,
        organisation_id=organisation_id if decision else None,
    )
    if decision is None:
        db.session.commit()
        abort(404)
    g.audit_pending = True
    return decision


def check(
    viewer: User,
    patient: Person,
    *,
    item: RecordItem | None = None,
    category: str | None = None,
    action: str = "read",
) -> Decision:
    """Allow or 404, and audit either way. Give exactly one of ``item`` and ``category``."""
    if (item is None) == (category is None):
        raise ValueError("give an item or a category")
    if category is not None and category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}")
    mismatched = item is not None and item.person_id != patient.id
    decision = None if mismatched else _decide(viewer, patient, item)
    organisation_id = None
    if decision is not None and not decision.is_patient:
        organisation_id = item.organisation_id if item is not None else decision.care_organisation_id
    return _concluded(
        decision,
        viewer,
        patient,
        f"{action}_{item.kind.value}" if item is not None else f"{action}_{category}",
        "record_item" if item is not None else category,  # type: ignore[arg-type]
        item.id if item is not None else None,
        organisation_id,
    )


def load_item(
    viewer: User, patient: Person, item_id: int, kinds: tuple[str, ...], action: str = "read"
) -> tuple[RecordItem, Decision]:
    """The item with this id in ``patient``'s record, if the viewer may see it; else 404 (audited)."""
    item = db.session.get(RecordItem, item_id)
    if item is None or item.kind.value not in kinds:
        not_found(viewer, patient, f"{action}_item", "record_item", item_id)
    return item, check(viewer, patient, item=item, action=action)


def not_found(viewer: User, patient: Person, action: str, object_type: str, object_id: int) -> NoReturn:
    """404 for an id that names nothing the viewer may reach: the attempt is still recorded
    against the record it was made in (committed, as the error page rolls back)."""
    audit(
        action,
        actor_user_id=viewer.id,
        subject_person_id=patient.id,
        object_type=object_type,
        object_id=object_id,
        outcome="denied",
    )
    db.session.commit()
    abort(404)


def audit_search(viewer: User, found: list[Person], org_ids: tuple[int, ...]) -> None:
    """A patient search tells staff who has a care relation: each person found gets an audit row
    (shown in their "who has seen my record")."""
    for person in found:
        audit(
            "search_patient",
            actor_user_id=viewer.id,
            subject_person_id=person.id,
            object_type="search",
            outcome="ok",
            basis="care_relation",
            organisation_id=care_organisation(org_ids, person),
        )
    if found:
        g.audit_pending = True


def switchable_people(viewer: User) -> list[Person]:
    """Everyone whose record the viewer may open from the profile switcher, themselves first."""
    if viewer.role is not Role.PATIENT or viewer.person is None:
        return []
    today = clock.today_in_norway()
    children = db.session.scalars(
        select(Person)
        .join(Relation, Relation.subject_id == Person.id)
        .where(
            Relation.holder_id == viewer.person_id,
            Relation.kind == RelationKind.PARENT,
            or_(Relation.valid_until.is_(None), Relation.valid_until >= today),
        )
        .order_by(Person.birth_date.desc(), Person.id)
    ).all()
    return [viewer.person] + [c for c in children if c.age_on(today) < PARENT_FULL_ACCESS_UNTIL_AGE]


def switch_to(viewer: User, person_id: int) -> Person | None:
    """Choose whose record the patient pages show. None (and nothing changed) if not allowed.
    A change is audited (the caller's request commits it)."""
    person = next((p for p in switchable_people(viewer) if p.id == person_id), None)
    if person is None:
        return None
    before = session.get(ACTING_FOR) or viewer.person_id
    if person.id == viewer.person_id:
        session.pop(ACTING_FOR, None)
    else:
        session[ACTING_FOR] = person.id
    g.pop("_varde_acting_for", None)
    if before != person.id:
        audit(
            "profile_switched",
            actor_user_id=viewer.id,
            subject_person_id=person.id,
            object_type="profile",
            basis="own" if person.id == viewer.person_id else "parent",
        )
    return person


def current_patient(viewer: User) -> Person:
    """Whose record the viewer is looking at in the patient pages: their own, or a child's chosen
    in the profile switcher while the parent may still see it (checked on every request, so access
    ends by itself on the birthday). Staff have none: 404."""
    if viewer.role is not Role.PATIENT or viewer.person is None:
        abort(404)
    acting_for = session.get(ACTING_FOR)
    if acting_for is None or acting_for == viewer.person_id:
        return viewer.person
    if g.get("_varde_acting_for") is None:  # once a request: the route and the banner both ask
        child = db.session.get(Person, acting_for)
        if child is None or not parent_may_see(viewer.person_id, child):
            session.pop(ACTING_FOR, None)
            return viewer.person
        g._varde_acting_for = child
    return g._varde_acting_for


# -- Appointments ---------------------------------------------------------------------------
# A patient and a parent of a child under 12 see and act on all of the child's times; clinicians
# and clerks see the times their organisations gave (the care relation, appointments included).
# The relatives issue narrows and widens this for 12–16 and adult proxies, here.


def _decide_appointments(viewer: User, patient: Person) -> Decision | None:
    if viewer.role is Role.PATIENT:
        if viewer.person_id == patient.id:
            return Decision("own", None, patient_visible(), True)
        if parent_may_see(viewer.person_id, patient):
            return Decision("parent", None, patient_visible(), False)
        return None
    if viewer.role in (Role.CLINICIAN, Role.CLERK):
        org_ids = staff_organisation_ids(viewer)
        care_org = care_organisation(org_ids, patient)
        if care_org is None:
            return None
        return Decision("care_relation", org_ids, RecordItem.organisation_id.in_(org_ids), False, care_org)
    return None


def appointment_scope(decision: Decision) -> ColumnElement[bool]:
    """The clause every query of a patient's appointments applies (staff: their organisations')."""
    if decision.organisation_ids is None:
        return true()
    return Appointment.organisation_id.in_(decision.organisation_ids)


def check_appointment(
    viewer: User, patient: Person, appointment: Appointment | None = None, *, action: str = "list"
) -> Decision:
    """Allow or 404 for the patient's appointments as a whole (``appointment`` None: the list,
    booking, the waiting list) or one of them; audited either way, like ``check``."""
    decision = _decide_appointments(viewer, patient)
    if decision is not None and appointment is not None:
        mine = appointment.person_id == patient.id
        in_scope = decision.organisation_ids is None or appointment.organisation_id in decision.organisation_ids
        if not (mine and in_scope):
            decision = None
    organisation_id = None
    if decision is not None and not decision.is_patient:
        organisation_id = appointment.organisation_id if appointment is not None else decision.care_organisation_id
    return _concluded(
        decision,
        viewer,
        patient,
        f"{action}_appointment" if appointment is not None else f"{action}_appointments",
        "appointment" if appointment is not None else "appointments",
        appointment.id if appointment is not None else None,
        organisation_id,
    )


def load_appointment(viewer: User, patient: Person, appointment_id: int, action: str) -> Appointment:
    """The appointment with this id in ``patient``'s times, if the viewer may reach it; else 404."""
    appointment = db.session.get(Appointment, appointment_id)
    if appointment is None:
        not_found(viewer, patient, f"{action}_appointment", "appointment", appointment_id)
    check_appointment(viewer, patient, appointment, action=action)
    return appointment


def load_offer(viewer: User, patient: Person, offer_id: int, action: str) -> Offer:
    """An earlier-time offer made to ``patient``, if the viewer may act for them; else 404."""
    offer = db.session.get(Offer, offer_id)
    if offer is None or offer.person_id != patient.id:
        not_found(viewer, patient, f"{action}_offer", "offer", offer_id)
    check_appointment(viewer, patient, offer.appointment, action=action)
    return offer


def audit_unit_list(
    viewer: User, people: Iterable[int], organisation_id: int, action: str, object_type: str = "appointments"
) -> None:
    """A staff list of a unit's times (the day list, the waiting list, an offer log) or messages
    (the inbox) shows who has dealings there: each person listed gets an audit row, seen in their
    "who has seen my record". One multi-row INSERT for the whole page."""
    from flask import has_request_context, request
    from sqlalchemy import insert

    from app.access.models import AuditEvent

    now = clock.utcnow()
    ip = request.remote_addr if has_request_context() else None
    rows = [
        {
            "occurred_at": now,
            "action": action,
            "actor_user_id": viewer.id,
            "subject_person_id": person_id,
            "on_behalf_of_person_id": None,
            "object_type": object_type,
            "object_id": None,
            "outcome": "ok",
            "basis": "care_relation",
            "organisation_id": organisation_id,
            "ip": ip,
        }
        for person_id in sorted(set(people))
    ]
    if rows:
        db.session.execute(insert(AuditEvent), rows)
    g.audit_pending = True


# -- Messages -------------------------------------------------------------------------------
# A patient, and a parent of a child under 12, read and write the patient's conversations (a
# parent's messages are marked as written on the child's behalf). Staff — clinicians and clerks —
# read and answer the conversations of the care units they work in, and no others. The relatives
# issue adds the 12–16 rules and adult proxies here.


def _decide_messages(viewer: User, patient: Person | None) -> Decision | None:
    if viewer.role is Role.PATIENT:
        if patient is None:
            return None
        if viewer.person_id == patient.id:
            return Decision("own", None, patient_visible(), True)
        if parent_may_see(viewer.person_id, patient):
            return Decision("parent", None, patient_visible(), False)
        return None
    if viewer.role in (Role.CLINICIAN, Role.CLERK):
        unit_ids = staff_unit_ids(viewer)
        if not unit_ids:
            return None
        return Decision("care_relation", None, patient_visible(), False, care_unit_ids=unit_ids)
    return None


def _conversation_allowed(decision: Decision | None, patient_id: int, unit_id: int, person: Person | None) -> bool:
    if decision is None:
        return False
    if decision.care_unit_ids is not None:
        return unit_id in decision.care_unit_ids
    return person is not None and patient_id == person.id


def check_messages(
    viewer: User,
    patient: Person,
    conversation: Conversation | None = None,
    *,
    action: str = "list",
    audited: bool = True,
) -> Decision:
    """Allow or 404 for the patient's conversations as a whole (``conversation`` None: the list,
    writing a new one) or one of them; audited either way, like ``check``. Staff with no
    conversation given are refused: they reach a patient's messages one conversation at a time.
    ``audited`` False is for what reads nothing of the patient's (saving one's own draft, or a
    check the caller audits itself): an allowed one writes no row; a denial always does."""
    decision = _decide_messages(viewer, patient)
    if decision is not None and conversation is None and viewer.role is not Role.PATIENT:
        decision = None
    if conversation is not None and not _conversation_allowed(
        decision, conversation.person_id, conversation.care_unit_id, patient
    ):
        decision = None
    if decision is not None and not audited:
        return decision
    return _concluded(
        decision,
        viewer,
        patient,
        f"{action}_conversation" if conversation is not None else f"{action}_conversations",
        "conversation" if conversation is not None else "messages",
        conversation.id if conversation is not None else None,
        conversation.organisation_id if conversation is not None and decision and not decision.is_patient else None,
    )


def load_conversation(
    viewer: User, patient: Person | None, conversation_id: int, action: str, *, audited: bool = True
) -> tuple[Conversation, Decision]:
    """The conversation with this id, if the viewer may reach it: in ``patient``'s record for the
    patient's side; for staff (``patient`` None) in one of their units. Else 404, audited."""
    conversation = db.session.get(Conversation, conversation_id)
    subject = patient if patient is not None else (conversation.person if conversation is not None else None)
    if conversation is None or subject is None or (patient is not None and conversation.person_id != patient.id):
        if subject is None:
            audit(
                f"{action}_conversation",
                actor_user_id=viewer.id,
                object_type="conversation",
                object_id=conversation_id,
                outcome="denied",
            )
            db.session.commit()
            abort(404)
        not_found(viewer, subject, f"{action}_conversation", "conversation", conversation_id)
    return conversation, check_messages(viewer, subject, conversation, action=action, audited=audited)


def load_attachment(viewer: User, patient: Person | None, conversation_id: int, attachment_id: int) -> Attachment:
    """A file sent in a conversation the viewer may read (the read is audited against the file)."""
    conversation, _decision = load_conversation(viewer, patient, conversation_id, "download", audited=False)
    attachment = db.session.get(Attachment, attachment_id)
    if attachment is None or attachment.message.conversation_id != conversation.id:
        not_found(viewer, conversation.person, "download_attachment", "attachment", attachment_id)
    audit(
        "download_attachment",
        actor_user_id=viewer.id,
        subject_person_id=conversation.person_id,
        object_type="attachment",
        object_id=attachment.id,
        outcome="ok",
        basis=_decision.basis,
        organisation_id=None if _decision.is_patient else conversation.organisation_id,
    )
    g.audit_pending = True
    return attachment


def poll_needs_nothing_more(
    *,
    role: Role,
    active: bool,
    person_id: int | None,
    acting_for: object,
    conversation_person_id: int,
    works_in_unit: bool,
    staff_page: bool,
) -> bool:
    """For the poll's fast path (app/messages/poll.py), which reads these values in one statement:
    is this one of the two plainest grants of ``check_messages`` — a patient's own conversation
    while not acting for anyone else, or a conversation of a unit the staff account works in? Then
    a poll with nothing new may be answered without going further. Anything else (a parent acting
    for a child, everything refused) goes the whole way through ``conversation_revision``."""
    if not active:
        return False
    if staff_page:
        return role in (Role.CLINICIAN, Role.CLERK) and works_in_unit
    return (
        role is Role.PATIENT
        and person_id is not None
        and acting_for in (None, person_id)
        and conversation_person_id == person_id
    )


def conversation_revision(viewer: User, patient: Person | None, conversation_id: int) -> int:
    """For a poll: the revision of a conversation the viewer may read, reading nothing else (so it
    writes no audit row; the page it asks for, when something is new, is a read and is audited).
    A conversation the viewer may not reach is a 404, and that attempt is audited."""
    row = db.session.execute(
        select(Conversation.person_id, Conversation.care_unit_id, Conversation.revision).where(
            Conversation.id == conversation_id
        )
    ).first()
    decision = _decide_messages(viewer, patient)
    if row is None or not _conversation_allowed(decision, row[0], row[1], patient):
        subject_id = patient.id if patient is not None else (row[0] if row is not None else None)
        audit(
            "poll_conversation",
            actor_user_id=viewer.id,
            subject_person_id=subject_id,
            object_type="conversation",
            object_id=conversation_id,
            outcome="denied",
        )
        db.session.commit()
        abort(404)
    return row[2]


def notification_recipients(person_ids: set[int]) -> dict[int, list[tuple[int, bool]]]:
    """Who hears of events in these people's records, as {person id: [(account id, is own)]}:
    the person's own account, and every parent who may see the record now. Three queries for the
    whole batch. (An item hidden from guardians is the caller's to leave parents out of.)"""
    if not person_ids:
        return {}
    ids = sorted(person_ids)
    out: dict[int, list[tuple[int, bool]]] = {pid: [] for pid in ids}
    for account_id, person_id in db.session.execute(
        select(User.id, User.person_id).where(User.person_id.in_(ids), User.role == Role.PATIENT, User.active.is_(True))
    ):
        out[person_id].append((account_id, True))
    today = clock.today_in_norway()
    young = [
        pid
        for pid, birth in db.session.execute(select(Person.id, Person.birth_date).where(Person.id.in_(ids)))
        if age_on(birth, today) < PARENT_FULL_ACCESS_UNTIL_AGE
    ]
    if young:
        for account_id, child_id in db.session.execute(
            select(User.id, Relation.subject_id)
            .join(Relation, Relation.holder_id == User.person_id)
            .where(
                Relation.subject_id.in_(young),
                Relation.kind == RelationKind.PARENT,
                or_(Relation.valid_until.is_(None), Relation.valid_until >= today),
                User.role == Role.PATIENT,
                User.active.is_(True),
            )
            .order_by(User.id)
        ):
            out[child_id].append((account_id, False))
    return out


def init_app(app: Flask) -> None:
    @app.after_request
    def commit_audit(response: Response) -> Response:
        """Audit rows of this request are committed with the response (denials included)."""
        if g.pop("audit_pending", False):
            db.session.commit()
        return response
