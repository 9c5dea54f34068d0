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
from datetime import date, datetime
from typing import NoReturn

from flask import Flask, Response, abort, current_app, g, has_request_context, request, session
from sqlalchemy import ColumnElement, Select, and_, exists, false, or_, select, true
from sqlalchemy.orm import aliased

from app import clock
from app.access.services import audit
from app.appointments.models import Appointment, Offer
from app.auth.models import Role, StaffMembership, User
from app.db import db
from app.messages.models import Attachment, Conversation
from app.people.models import (
    CareUnit,
    Organisation,
    OrganisationKind,
    Person,
    ProxyLevel,
    Relation,
    RelationKind,
    UnitRelation,
    age_on,
)
from app.record.models import CopyRequest, ItemKind, RecordItem, ReleaseState

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
    rights: frozenset[str] = frozenset()  # a patient-side decision: what its grant allows (see Grant)
    primary_care_only: bool = False  # a parent of a 12–16 year old: GP and municipal services only

    def may(self, right: str) -> bool:
        """Staff decisions are scoped by organisation and unit instead; patient-side ones by rights."""
        return self.basis == "care_relation" or right in self.rights


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


def _care_relations(org_ids: tuple[int, ...], person_id: object) -> tuple[Select, ...]:
    """Each way a patient can be in the care of one of ``org_ids``, as a query for that
    organisation's id: it holds items about them, it gave them a time, they are on its list (their
    GP office) or referred to or followed up by one of its units, or they wrote to one of its units.
    ``person_id`` is a value or a column (then the queries correlate with the outer query)."""
    today = clock.today_in_norway()
    return (
        select(RecordItem.organisation_id).where(
            RecordItem.person_id == person_id, RecordItem.organisation_id.in_(org_ids)
        ),
        select(Appointment.organisation_id).where(
            Appointment.person_id == person_id, Appointment.organisation_id.in_(org_ids)
        ),
        select(CareUnit.organisation_id)
        .join(UnitRelation, UnitRelation.care_unit_id == CareUnit.id)
        .where(
            UnitRelation.person_id == person_id,
            CareUnit.organisation_id.in_(org_ids),
            or_(UnitRelation.valid_until.is_(None), UnitRelation.valid_until >= today),
        ),
        select(Conversation.organisation_id).where(
            Conversation.person_id == person_id, Conversation.organisation_id.in_(org_ids)
        ),
    )


def care_organisation(org_ids: tuple[int, ...], patient: Person) -> int | None:
    """One of ``org_ids`` the patient is in the care of (the care relation), or None."""
    if not org_ids:
        return None
    for query in _care_relations(org_ids, patient.id):
        if (found := db.session.scalar(query.limit(1))) is not None:
            return found
    return None


def in_care_of(org_ids: tuple[int, ...]) -> ColumnElement[bool]:
    """For a query of people: those in the care of one of ``org_ids`` (as ``care_organisation``)."""
    if not org_ids:
        return false()
    return or_(*(exists(query) for query in _care_relations(org_ids, Person.id)))


def staff_unit_ids(user: User) -> tuple[int, ...]:
    """The care units a staff account works in (its scheduling console shows these)."""
    if not user.role.is_staff or user.role is Role.ADMINISTRATOR:
        return ()
    return tuple(
        sorted(db.session.scalars(select(StaffMembership.care_unit_id).where(StaffMembership.user_id == user.id)))
    )


def patient_visible() -> ColumnElement[bool]:
    return and_(RecordItem.release_state == ReleaseState.RELEASED, RecordItem.withheld_at.is_(None))


# -- Who may act for whom ------------------------------------------------------------------
# Rights are what a grant lets its holder do in someone's record. The patient's own grant has them
# all (a youth's own login fewer); a relative's grant is narrower, and never more than the
# patient's own (``LEVEL_RIGHTS`` is intersected with it).

RESULTS = "results"  # results and reports
NOTES = "notes"  # notes, visit summaries included
VISITS = "visits"  # the history of visits
MEDICATIONS = "medications"
IMMUNIZATIONS = "immunizations"
DOCUMENTS = "documents"
EXPORT = "export"  # the instant copy (FHIR file, printable) and asking for a copy
ACCESS_LOG = "access_log"  # who has seen the record
APPOINTMENTS = "appointments"  # upcoming times
PAST_APPOINTMENTS = "past_appointments"
BOOK = "book"  # book, cancel, move, answer offers, the waiting list
READ_MESSAGES = "read_messages"
WRITE_MESSAGES = "write_messages"
QUESTIONNAIRES = "questionnaires"
SETTINGS = "settings"

ALL_RIGHTS = frozenset(
    {
        RESULTS,
        NOTES,
        VISITS,
        MEDICATIONS,
        IMMUNIZATIONS,
        DOCUMENTS,
        EXPORT,
        ACCESS_LOG,
        APPOINTMENTS,
        PAST_APPOINTMENTS,
        BOOK,
        READ_MESSAGES,
        WRITE_MESSAGES,
        QUESTIONNAIRES,
        SETTINGS,
    }
)
# A young person's own login from 12 (where the region allows it): their times, messages,
# results, medicines and vaccines; notes, visit history and documents open at 16.
YOUTH_RIGHTS = ALL_RIGHTS - {NOTES, VISITS, DOCUMENTS, EXPORT}
# A parent of a child of 12–16 (§ 3-4): times with the GP and municipal services, and messages
# with them; no health information.
PARENT_LIMITED_RIGHTS = frozenset({APPOINTMENTS, PAST_APPOINTMENTS, BOOK, READ_MESSAGES, WRITE_MESSAGES})
_HEALTH = frozenset({RESULTS, MEDICATIONS, IMMUNIZATIONS})
LEVEL_RIGHTS = {
    ProxyLevel.STANDARD: _HEALTH | {APPOINTMENTS, BOOK, READ_MESSAGES, WRITE_MESSAGES},
    ProxyLevel.READ_ONLY: _HEALTH | {APPOINTMENTS, READ_MESSAGES},
    ProxyLevel.COMMUNICATE: frozenset({APPOINTMENTS, BOOK, READ_MESSAGES, WRITE_MESSAGES}),
    ProxyLevel.FULL: ALL_RIGHTS,
}
KIND_RIGHTS = {
    ItemKind.RESULT: RESULTS,
    ItemKind.REPORT: RESULTS,
    ItemKind.NOTE: NOTES,
    ItemKind.ENCOUNTER: VISITS,
    ItemKind.MEDICATION: MEDICATIONS,
    ItemKind.IMMUNIZATION: IMMUNIZATIONS,
    ItemKind.DOCUMENT: DOCUMENTS,
}
CATEGORY_RIGHTS = {
    "results": RESULTS,
    "notes": NOTES,
    "visits": VISITS,
    "medications": MEDICATIONS,
    "immunizations": IMMUNIZATIONS,
    "documents": DOCUMENTS,
    "export": EXPORT,
    "access_log": ACCESS_LOG,
    "appointments": APPOINTMENTS,
    "messages": READ_MESSAGES,
    "record": "staff_console",  # everything held: staff only, a right no patient-side grant has
}
# What an event tells of, and so who may hear of it (app/notify/kinds.py names the kinds).
EVENT_RIGHTS = {
    "result_released": RESULTS,
    "note_released": NOTES,
    "document_released": DOCUMENTS,
    "copy_answered": DOCUMENTS,
    "copy_refused": EXPORT,
    "medication_changed": MEDICATIONS,
    "immunization_added": IMMUNIZATIONS,
    "visit_added": VISITS,
    "message_received": READ_MESSAGES,
    "appointment_reminder": APPOINTMENTS,
    "appointment_changed": APPOINTMENTS,
    "appointment_booked": APPOINTMENTS,
    "appointment_offer": BOOK,
    "access_changes_soon": APPOINTMENTS,  # a child near 12 or 16: every parent with access hears
}

UNKNOWN_EVENT = "unknown_event"  # a right no grant has: a kind missing above is heard by no one

# A parent has full access to a child under 12, limited access from 12 to 16 (§ 3-4).
PARENT_FULL_ACCESS_UNTIL_AGE = 12
PARENT_ACCESS_UNTIL_AGE = 16
PROXY_GIVER_MIN_AGE = 16
PROXY_HOLDER_MIN_AGE = 18
ACTING_FOR = "acting_for"  # session key: the person whose record the user chose to see
FORM_PATIENT_FIELD = "journal"  # a patient-record form's hidden field: whose record it was made for


@dataclass(frozen=True)
class Grant:
    """What one person may do in another's record (or their own) today, and why."""

    basis: str  # own, parent, proxy, guardian
    rights: frozenset[str]
    primary_care_only: bool = False  # a parent of a 12–16 year old: GP and municipal services only
    hides_guardian_items: bool = False  # parents and guardians do not see items hidden from guardians
    relation_id: int | None = None
    level: ProxyLevel | None = None

    @property
    def is_own(self) -> bool:
        return self.basis == "own"


@dataclass(frozen=True)
class _Facts:
    """What the rules need to know of a person."""

    id: int
    birth_date: date
    protected: bool
    objects_to_parents: bool = False


def _facts(person: Person) -> _Facts:
    return _Facts(person.id, person.birth_date, person.is_protected, person.objects_to_parents_at is not None)


def youth_login_age() -> int | None:
    """From what age a young person may log in themselves (None: not in this region)."""
    return current_app.config.get("YOUTH_OWN_ACCESS_FROM_AGE")


def own_grant(person: Person, today: date | None = None) -> Grant | None:
    """The patient's own access: everything from 16; from the region's youth age (12 at the
    earliest) a limited set; none younger (their parents act for them)."""
    age = person.age_on(today or clock.today_in_norway())
    if age >= PARENT_ACCESS_UNTIL_AGE:
        return Grant("own", ALL_RIGHTS)
    youth_from = youth_login_age()
    if youth_from is not None and age >= max(youth_from, PARENT_FULL_ACCESS_UNTIL_AGE):
        return Grant("own", YOUTH_RIGHTS)
    return None


def _relation_grant(
    relation_id: int,
    kind: RelationKind,
    level: ProxyLevel | None,
    holder: _Facts,
    subject: _Facts,
    today: date,
) -> Grant | None:
    """The rules for one relation that is in force (not revoked, not past its end date)."""
    if holder.id == subject.id or holder.protected or subject.protected:
        return None  # a confidential address can neither represent nor be represented
    subject_age = age_on(subject.birth_date, today)
    holder_age = age_on(holder.birth_date, today)
    if kind is RelationKind.PARENT:
        if subject_age < PARENT_FULL_ACCESS_UNTIL_AGE:
            return Grant("parent", ALL_RIGHTS, hides_guardian_items=True, relation_id=relation_id)
        if subject_age < PARENT_ACCESS_UNTIL_AGE and not subject.objects_to_parents:
            return Grant(
                "parent",
                PARENT_LIMITED_RIGHTS,
                primary_care_only=True,
                hides_guardian_items=True,
                relation_id=relation_id,
            )
        return None
    if level is None or holder_age < PROXY_HOLDER_MIN_AGE or subject_age < PROXY_GIVER_MIN_AGE:
        return None
    own = ALL_RIGHTS if subject_age >= PARENT_ACCESS_UNTIL_AGE else YOUTH_RIGHTS
    rights = LEVEL_RIGHTS[level] & own  # never more than the patient has
    if kind is RelationKind.PROXY:
        return Grant("proxy", rights, relation_id=relation_id, level=level)
    if kind is RelationKind.GUARDIAN:
        return Grant("guardian", rights, hides_guardian_items=True, relation_id=relation_id, level=level)
    return None


def _merged(grants: list[Grant]) -> Grant:
    """Two relations to the same person (a parent who is also a guardian): the rights of both."""
    if len(grants) == 1:
        return grants[0]
    best = max(grants, key=lambda g_: (len(g_.rights), g_.basis, g_.relation_id or 0))  # the same every time
    return Grant(
        best.basis,
        frozenset().union(*(g_.rights for g_ in grants)),
        primary_care_only=all(g_.primary_care_only for g_ in grants),
        # Hidden from guardians stays hidden when any of the relations is a guardian's: a Full
        # guardian who is also a proxy must not see more by having two relations.
        hides_guardian_items=any(g_.hides_guardian_items for g_ in grants),
        relation_id=best.relation_id,
        level=best.level,
    )


def in_force(today: date) -> ColumnElement[bool]:
    """The relations that hold today: not revoked, not past their last day."""
    return and_(Relation.revoked_at.is_(None), or_(Relation.valid_until.is_(None), Relation.valid_until >= today))


def _relation_grants(where: ColumnElement[bool], today: date) -> dict[tuple[int, int], Grant]:
    """{(holder, subject): grant} for the relations in force matching ``where``, in one query."""
    holder = aliased(Person)
    subject = aliased(Person)
    rows = db.session.execute(
        select(
            Relation.id,
            Relation.kind,
            Relation.level,
            holder.id,
            holder.birth_date,
            holder.address_protection,
            subject.id,
            subject.birth_date,
            subject.address_protection,
            subject.objects_to_parents_at,
        )
        .join(holder, holder.id == Relation.holder_id)
        .join(subject, subject.id == Relation.subject_id)
        .where(where, in_force(today))
    ).all()
    found: dict[tuple[int, int], list[Grant]] = {}
    for rid, kind, level, hid, hbirth, hprot, sid, sbirth, sprot, sobj in rows:
        grant = _relation_grant(
            rid,
            RelationKind(kind),
            ProxyLevel(level) if level else None,
            _Facts(hid, hbirth, hprot is not None),
            _Facts(sid, sbirth, sprot is not None, sobj is not None),
            today,
        )
        if grant is not None:
            found.setdefault((hid, sid), []).append(grant)
    return {pair: _merged(grants) for pair, grants in found.items()}


def grant_for(holder: Person | None, patient: Person, today: date | None = None) -> Grant | None:
    """What ``holder`` may do in ``patient``'s record today: their own, or through a relation in
    force. Asked on every request (so access ends by itself on a birthday, at an end date, or when
    revoked); remembered for the rest of the request."""
    if holder is None:
        return None
    today = today or clock.today_in_norway()
    cache = g.setdefault("_varde_grants", {}) if has_request_context() else {}
    key = (holder.id, patient.id, today)
    if key not in cache:
        if holder.id == patient.id:
            cache[key] = own_grant(patient, today)
        else:
            cache[key] = _relation_grants(
                and_(Relation.holder_id == holder.id, Relation.subject_id == patient.id), today
            ).get((holder.id, patient.id))
    return cache[key]


def grants_held(holder: Person, today: date | None = None) -> list[tuple[Person, Grant]]:
    """Everyone whose record ``holder`` may open through a relation today, youngest first."""
    today = today or clock.today_in_norway()
    grants = _relation_grants(Relation.holder_id == holder.id, today)
    if not grants:
        return []
    people = db.session.scalars(
        select(Person).where(Person.id.in_([s for _h, s in grants])).order_by(Person.birth_date.desc(), Person.id)
    ).all()
    return [(p, grants[(holder.id, p.id)]) for p in people]


def grants_over(subject_ids: Iterable[int], today: date | None = None) -> dict[tuple[int, int], Grant]:
    """{(holder, subject): grant} of everyone who may act for these people today."""
    ids = sorted(set(subject_ids))
    today = today or clock.today_in_norway()
    out: dict[tuple[int, int], Grant] = {}
    for i in range(0, len(ids), 500):
        out.update(_relation_grants(Relation.subject_id.in_(ids[i : i + 500]), today))
    return out


def may_hear(grant: Grant, event_kind: str, guardians_may_know: bool = True) -> bool:
    """May the holder of ``grant`` be told of an event of this kind in the record?"""
    if grant.hides_guardian_items and not guardians_may_know:
        return False
    return EVENT_RIGHTS.get(event_kind, UNKNOWN_EVENT) in grant.rights


def may_still_hear(viewer: User, person_id: int, event_kind: str) -> bool:
    """Does a notification of this kind about ``person_id`` still lead the viewer somewhere (a
    tap on it after a child turned 12 or 16, or after a proxy was revoked, does not)?"""
    person = db.session.get(Person, person_id)
    grant = grant_for(viewer.person, person) if person is not None else None
    return grant is not None and (grant.is_own or may_hear(grant, event_kind))


def relatives_allowed(
    rows: Iterable[tuple[int | None, int, str, str | None, int | None]], today: date | None = None
) -> set[tuple[int | None, int, str, str | None, int | None]]:
    """Which (holder, subject, event kind, object type, object id) of ``rows`` the holder may
    still hear of today (the push worker checks each batch again when it sends: a child who has
    turned 12 or 16, a proxy revoked, a relation ended since — and, for a parent of a 12–16 year
    old, only what is with the GP and municipal services). A few queries per batch."""
    wanted = [row for row in rows if row[0] is not None and row[0] != row[1]]
    if not wanted:
        return set()
    grants = grants_over({row[1] for row in wanted}, today)
    limited = [row for row in wanted if (grant := grants.get((row[0], row[1]))) is not None and grant.primary_care_only]
    beyond = _beyond_limited_parents([(s, k, ot, oid, True) for _h, s, k, ot, oid in limited]) if limited else set()
    allowed = set()
    for row in wanted:
        holder, subject, kind, object_type, object_id = row
        grant = grants.get((holder, subject))
        if grant is None or not may_hear(grant, kind):
            continue
        if grant.primary_care_only and (object_type is None or (object_type, object_id) in beyond):
            continue
        allowed.add(row)
    return allowed


def _record_items(grant: Grant) -> ColumnElement[bool]:
    """The record items a grant shows: released, not withheld, of the kinds its rights name."""
    kinds = [kind for kind, right in KIND_RIGHTS.items() if right in grant.rights]
    if not kinds:
        return false()
    clause = and_(patient_visible(), RecordItem.kind.in_(kinds))
    if grant.hides_guardian_items:
        clause = and_(clause, RecordItem.hidden_from_guardians.is_(False))
    return clause


def _item_allowed(grant: Grant, item: RecordItem) -> bool:
    if not item.is_visible_to_patient or KIND_RIGHTS.get(item.kind) not in grant.rights:
        return False
    return not (grant.hides_guardian_items and item.hidden_from_guardians)


def _patient_decision(grant: Grant) -> Decision:
    return Decision(
        grant.basis,
        None,
        _record_items(grant),
        grant.is_own,
        rights=grant.rights,
        primary_care_only=grant.primary_care_only,
    )


def _decide(viewer: User, patient: Person, item: RecordItem | None, right: str | None = None) -> Decision | None:
    if viewer.role is Role.PATIENT:
        grant = grant_for(viewer.person, patient)
        if grant is None or (right is not None and right not in grant.rights):
            return None
        if item is not None and not _item_allowed(grant, item):
            return None
        return _patient_decision(grant)
    if viewer.role is Role.CLINICIAN:
        org_ids = staff_organisation_ids(viewer)
        care_org = care_organisation(org_ids, patient)
        if care_org is None:
            return None
        if item is not None and item.organisation_id not in org_ids:
            return None
        return Decision("care_relation", org_ids, RecordItem.organisation_id.in_(org_ids), False, care_org)
    return None


# Checks for a change (booking, writing …) also guard the pages that only show its form.
_CHANGING_VERBS = frozenset({"book", "cancel", "change", "accept", "decline", "waitlist", "write", "reply", "send"})


def _as_audited(action: str) -> str:
    """The action as the audit log records it. A change's form that was only looked at (GET) is
    ``open-<action>``: the log, and what a patient reads of a relative's activity, must never say
    something was booked or written that was only opened."""
    if action.split("_", 1)[0] in _CHANGING_VERBS and has_request_context() and request.method in ("GET", "HEAD"):
        return f"open-{action}"
    return action


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
        _as_audited(action),
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
    right = CATEGORY_RIGHTS.get(category) if category is not None else None
    decision = None if mismatched else _decide(viewer, patient, item, right)
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


def not_found(viewer: User, patient: Person | None, action: str, object_type: str, object_id: int) -> NoReturn:
    """404 for an id that names nothing the viewer may reach: the attempt is still recorded
    against the record it was made in, if any (committed, as the error page rolls back)."""
    audit(
        action,
        actor_user_id=viewer.id,
        subject_person_id=patient.id if patient is not None else None,
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
    g_cache = g.setdefault("_varde_switchable", {}) if has_request_context() else {}
    if viewer.id not in g_cache:
        today = clock.today_in_norway()
        held = grants_held(viewer.person, today)
        if has_request_context():  # grant_for asks no more this request (switching, the banner)
            grants = g.setdefault("_varde_grants", {})
            for person, grant in held:
                grants.setdefault((viewer.person.id, person.id, today), grant)
        g_cache[viewer.id] = [viewer.person] + [p for p, _grant in held]
    return g_cache[viewer.id]


def switch_to(viewer: User, person_id: int) -> Person | None:
    """Choose whose record the patient pages show. None (and nothing changed) if not allowed.
    A change is audited (the caller's request commits it)."""
    person = next((p for p in switchable_people(viewer) if p.id == person_id), None)
    if person is None:
        return None
    grant = grant_for(viewer.person, person)
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
            basis=grant.basis if grant is not None else "own",
        )
    return person


def current_patient(viewer: User) -> Person:
    """Whose record the viewer is looking at in the patient pages: their own, or someone's chosen
    in the profile switcher while the viewer may still act for them (checked on every request, so
    access ends by itself on a birthday, at a proxy's end date or when it is revoked; the user is
    told once). Staff have none: 404."""
    if viewer.role is not Role.PATIENT or viewer.person is None:
        abort(404)
    acting_for = session.get(ACTING_FOR)
    if acting_for is None or acting_for == viewer.person_id:
        person = viewer.person
    elif g.get("_varde_acting_for") is not None:  # once a request: the route and the banner both ask
        person = g._varde_acting_for
    else:
        other = db.session.get(Person, acting_for)
        if other is None or grant_for(viewer.person, other) is None:
            session.pop(ACTING_FOR, None)
            session["access_ended"] = other.given_name if other is not None else ""
            person = viewer.person
        else:
            person = g._varde_acting_for = other
    _refuse_a_form_made_for_another(person)
    return person


def _refuse_a_form_made_for_another(person: Person) -> None:
    """A form sent for one record while the user now looks at another (switched in another tab,
    or the access ended since the form was shown) is refused, 409, before anything is done — it
    must never land in the record the user happens to see now."""
    if not has_request_context() or request.method in ("GET", "HEAD", "OPTIONS") or g.get("_varde_form_checked"):
        return
    g._varde_form_checked = True
    sent_for = request.form.get(FORM_PATIENT_FIELD)
    if sent_for is not None and sent_for != str(person.id):
        abort(409)


def acting_as(viewer: User | None, patient: Person) -> str | None:
    """What the viewer is to the patient when they act in the patient's record (booking,
    cancelling, writing): "parent", "proxy" or "guardian" — None for the patient themselves, staff
    and the system. Staff see it on the booking and the message."""
    if viewer is None or viewer.role is not Role.PATIENT or viewer.person_id == patient.id:
        return None
    grant = grant_for(viewer.person, patient)
    return grant.basis if grant is not None else None


def rights_here(viewer: User) -> frozenset[str]:
    """What the viewer may do in the record the patient pages show now (the menus and tabs show
    only what leads somewhere; every route still asks the policy itself)."""
    if viewer.role is not Role.PATIENT or viewer.person is None:
        return frozenset()
    grant = grant_for(viewer.person, current_patient(viewer))
    return grant.rights if grant is not None else frozenset()


# -- Appointments ---------------------------------------------------------------------------
# A patient and a parent of a child under 12 see and act on all of the child's times; clinicians
# and clerks see the times their organisations gave (the care relation, appointments included).
# The relatives issue narrows and widens this for 12–16 and adult proxies, here.


def _decide_appointments(viewer: User, patient: Person, right: str = APPOINTMENTS) -> Decision | None:
    if viewer.role is Role.PATIENT:
        grant = grant_for(viewer.person, patient)
        if grant is None or APPOINTMENTS not in grant.rights or right not in grant.rights:
            return None
        return _patient_decision(grant)
    if viewer.role in (Role.CLINICIAN, Role.CLERK):
        org_ids = staff_organisation_ids(viewer)
        care_org = care_organisation(org_ids, patient)
        if care_org is None:
            return None
        return Decision("care_relation", org_ids, RecordItem.organisation_id.in_(org_ids), False, care_org)
    return None


# What a parent of a 12–16 year old may still see: the GP office and the municipality's services.
# Not hospitals, and not health stations — the school health service and the youth health clinic
# are where a young person goes without their parents (contraception, mental health).
LIMITED_PARENT_KINDS = frozenset({OrganisationKind.GP_OFFICE, OrganisationKind.MUNICIPALITY})


def _primary_care_organisations() -> ColumnElement[bool]:
    return Organisation.kind.in_(sorted(LIMITED_PARENT_KINDS))


def appointment_scope(decision: Decision, now: datetime | None = None) -> ColumnElement[bool]:
    """The clause every query of a patient's appointments applies: staff see their organisations'
    times; a relative may see only upcoming ones, or only the GP's and municipal services'."""
    if decision.basis == "care_relation":
        return (
            true() if decision.organisation_ids is None else Appointment.organisation_id.in_(decision.organisation_ids)
        )
    if APPOINTMENTS not in decision.rights:
        return false()
    clause: ColumnElement[bool] = true()
    if PAST_APPOINTMENTS not in decision.rights:
        # Today's times stay in view all day; before that is history.
        clause = and_(clause, Appointment.start >= clock.start_of_today_utc())
    if decision.primary_care_only:
        clause = and_(
            clause, Appointment.organisation_id.in_(select(Organisation.id).where(_primary_care_organisations()))
        )
    return clause


_BOOKING_ACTIONS = frozenset({"book", "cancel", "change", "accept", "decline", "waitlist"})


def check_appointment(
    viewer: User, patient: Person, appointment: Appointment | None = None, *, action: str = "list"
) -> Decision:
    """Allow or 404 for the patient's appointments as a whole (``appointment`` None: the list,
    booking, the waiting list) or one of them; audited either way, like ``check``. Booking,
    cancelling, moving and answering offers need the right to book."""
    decision = _decide_appointments(viewer, patient, BOOK if action in _BOOKING_ACTIONS else APPOINTMENTS)
    if decision is not None and appointment is not None:
        mine = appointment.person_id == patient.id
        if decision.basis == "care_relation":
            in_scope = decision.organisation_ids is None or appointment.organisation_id in decision.organisation_ids
        else:
            in_scope = _appointment_in_scope(decision, appointment)
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


def sees_every_time(viewer: User, patient: Person) -> bool:
    """Does the viewer see all of the patient's times (staff, the patient, most relatives), or only
    some (a parent of a 12–16 year old: the GP's and municipal services')?"""
    if viewer.role is not Role.PATIENT:
        return True
    grant = grant_for(viewer.person, patient)
    return grant is not None and not grant.primary_care_only


def appointment_in_scope(decision: Decision, appointment: Appointment) -> bool:
    """Is this time one the patient-side decision shows (upcoming only for some proxies; the GP's
    and municipal services' only for a parent of a 12–16 year old)?"""
    return _appointment_in_scope(decision, appointment)


def _appointment_in_scope(decision: Decision, appointment: Appointment) -> bool:
    if PAST_APPOINTMENTS not in decision.rights and appointment.start < clock.start_of_today_utc():
        return False
    return not decision.primary_care_only or appointment.organisation.kind in LIMITED_PARENT_KINDS


def unit_in_scope(decision: Decision, unit: CareUnit) -> bool:
    """May a relative with this decision write to, or book with, this care unit (a parent of a
    12–16 year old: only the GP office and municipal services)?"""
    return not decision.primary_care_only or unit.organisation.kind in LIMITED_PARENT_KINDS


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


_WRITING_ACTIONS = frozenset({"write", "reply", "draft", "send"})


def _decide_messages(viewer: User, patient: Person | None, action: str = "read") -> Decision | None:
    if viewer.role is Role.PATIENT:
        if patient is None:
            return None
        grant = grant_for(viewer.person, patient)
        if grant is None or READ_MESSAGES not in grant.rights:
            return None
        if action in _WRITING_ACTIONS and WRITE_MESSAGES not in grant.rights:
            return None
        return _patient_decision(grant)
    if viewer.role in (Role.CLINICIAN, Role.CLERK):
        unit_ids = staff_unit_ids(viewer)
        if not unit_ids:
            return None
        return Decision("care_relation", None, patient_visible(), False, care_unit_ids=unit_ids)
    return None


def _conversation_allowed(
    decision: Decision | None, patient_id: int, unit_id: int, person: Person | None, organisation_id: int | None = None
) -> bool:
    if decision is None:
        return False
    if decision.care_unit_ids is not None:
        return unit_id in decision.care_unit_ids
    if person is None or patient_id != person.id:
        return False
    if decision.primary_care_only:
        organisation = db.session.get(Organisation, organisation_id) if organisation_id is not None else None
        return organisation is not None and organisation.kind in LIMITED_PARENT_KINDS
    return True


def conversation_scope(decision: Decision) -> ColumnElement[bool]:
    """The clause every query of a patient's conversations applies: staff see their units'; a
    parent of a 12–16 year old only those with the GP office and municipal services."""
    if decision.care_unit_ids is not None:
        return Conversation.care_unit_id.in_(decision.care_unit_ids)
    if decision.primary_care_only:
        return Conversation.organisation_id.in_(select(Organisation.id).where(_primary_care_organisations()))
    return true()


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
    decision = _decide_messages(viewer, patient, action)
    if decision is not None and conversation is None and viewer.role is not Role.PATIENT:
        decision = None
    if conversation is not None and not _conversation_allowed(
        decision, conversation.person_id, conversation.care_unit_id, patient, conversation.organisation_id
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
        select(
            Conversation.person_id, Conversation.care_unit_id, Conversation.revision, Conversation.organisation_id
        ).where(Conversation.id == conversation_id)
    ).first()
    decision = _decide_messages(viewer, patient)
    if row is None or not _conversation_allowed(decision, row[0], row[1], patient, row[3]):
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


# -- Copies of the record ---------------------------------------------------------------------
# A patient asks for a copy with the export right (``check(category="export")``); the staff of the
# organisation asked — clinicians and clerks (the archive often answers) — see and answer it.


def load_copy_request(viewer: User, request_id: int, action: str) -> CopyRequest:
    """A request for a copy made to one of the staff member's organisations; else 404, audited.
    The read (or answer) is an audit row against the patient's record."""
    found = db.session.get(CopyRequest, request_id) if viewer.role in (Role.CLINICIAN, Role.CLERK) else None
    if found is None or found.organisation_id not in staff_organisation_ids(viewer):
        not_found(viewer, found.person if found else None, f"{action}_copy_request", "copy_request", request_id)
    audit(
        f"{action}_copy_request",
        actor_user_id=viewer.id,
        subject_person_id=found.person_id,
        object_type="copy_request",
        object_id=found.id,
        outcome="ok",
        basis="care_relation",
        organisation_id=found.organisation_id,
    )
    g.audit_pending = True
    return found


def notification_recipients(
    changes: Iterable[tuple[int, str, str | None, int | None, bool]],
) -> list[list[tuple[int, bool]]]:
    """Who hears of each change ``(person id, event kind, object type, object id, guardians may
    know)``, as a list per change of (account id, is own): the person's own account (when they
    may log in) and every relative whose grant lets them know of such a thing — a parent of a
    12–16 year old only of times and messages with the GP and municipal services. A handful of
    queries for the whole batch."""
    changes = list(changes)
    ids = sorted({c[0] for c in changes})
    if not ids:
        return [[] for _ in changes]
    today = clock.today_in_norway()
    own: dict[int, list[int]] = {}
    for account_id, person_id in db.session.execute(
        select(User.id, User.person_id).where(User.person_id.in_(ids), User.role == Role.PATIENT, User.active.is_(True))
    ):
        own.setdefault(person_id, []).append(account_id)
    people = {p.id: p for p in db.session.scalars(select(Person).where(Person.id.in_(ids)))}
    grants = grants_over(ids, today)
    accounts: dict[int, list[int]] = {}
    if grants:
        holders = sorted({h for h, _s in grants})
        for account_id, person_id in db.session.execute(
            select(User.id, User.person_id)
            .where(User.person_id.in_(holders), User.role == Role.PATIENT, User.active.is_(True))
            .order_by(User.id)
        ):
            accounts.setdefault(person_id, []).append(account_id)
    by_subject: dict[int, list[tuple[int, Grant]]] = {}
    for (holder, subject), grant in sorted(grants.items()):
        by_subject.setdefault(subject, []).append((holder, grant))
    beyond_limited = _beyond_limited_parents(changes) if any(g_.primary_care_only for g_ in grants.values()) else set()
    out: list[list[tuple[int, bool]]] = []
    for person_id, kind, object_type, object_id, guardians_may_know in changes:
        rows: list[tuple[int, bool]] = []
        person = people.get(person_id)
        mine = own_grant(person, today) if person is not None else None
        if mine is not None and may_hear(mine, kind):  # a young person hears only of what they may open
            rows += [(a, True) for a in own.get(person_id, [])]
        for holder, grant in by_subject.get(person_id, []):
            if not may_hear(grant, kind, guardians_may_know):
                continue
            if grant.primary_care_only and (object_type is None or (object_type, object_id) in beyond_limited):
                continue
            rows += [(a, False) for a in accounts.get(holder, [])]
        out.append(rows)
    return out


def _beyond_limited_parents(
    changes: list[tuple[int, str, str | None, int | None, bool]],
) -> set[tuple[str, int | None]]:
    """Which of the changes' objects a parent of a 12–16 year old may not hear of: conversations
    and appointments outside the GP office and the municipality, and everything else."""
    found: set[tuple[str, int | None]] = set()
    for object_type, model in (("conversation", Conversation), ("appointment", Appointment)):
        ids = sorted({c[3] for c in changes if c[2] == object_type and c[3] is not None})
        if ids:
            found.update(
                (object_type, oid)
                for (oid,) in db.session.execute(
                    select(model.id)
                    .join(Organisation, Organisation.id == model.organisation_id)
                    .where(model.id.in_(ids), Organisation.kind.not_in(sorted(LIMITED_PARENT_KINDS)))
                )
            )
    # Anything else (a result, an offer) is not for a parent with limited access.
    # (The notice before a child's 12th or 16th birthday is for every parent with access.)
    found.update((c[2], c[3]) for c in changes if c[2] not in ("conversation", "appointment", "age_notice"))
    return found


def init_app(app: Flask) -> None:
    @app.after_request
    def commit_audit(response: Response) -> Response:
        """Audit rows of this request are committed with the response (denials included)."""
        if g.pop("audit_pending", False):
            db.session.commit()
        return response
