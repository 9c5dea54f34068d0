"""What staff do to the record. Callers have already passed the access policy."""

from __future__ import annotations

import hashlib
import uuid

from flask import abort, request
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import joinedload

from app import clock
from app.access import policy
from app.auth.models import User
from app.db import db
from app.notify import events
from app.people.models import CareUnit, Person
from app.people.nin import InvalidNin, parse_nin
from app.record.models import ItemKind, RecordContent, RecordItem, ReleasePolicy, ReleaseState
from app.record.release import emit_released
from app.web.numbers import db_int

VISIT_SUMMARY_CODE = ("http://loinc.org", "34133-9")


def find_patients(org_ids: tuple[int, ...], query: str, allow_synthetic: bool, limit: int = 20) -> list[Person]:
    """Patients with a care relation to one of ``org_ids``, by national id or name."""
    if not org_ids:
        return []
    related = policy.in_care_of(org_ids)
    compact = "".join(query.split())
    if compact.isdigit():
        try:
            nin = parse_nin(compact, allow_synthetic=allow_synthetic).value
        except InvalidNin:
            return []
        condition = Person.national_id == nin
    else:
        words = [w.lower() for w in query.split() if w]
        full = func.lower(Person.given_name + " " + Person.family_name)
        condition = or_(*[full.contains(w, autoescape=True) for w in words[:1]])
        for w in words[1:]:
            condition = condition & full.contains(w, autoescape=True)
    return list(
        db.session.scalars(
            select(Person).where(condition, related).order_by(Person.family_name, Person.given_name).limit(limit)
        )
    )


def withhold(item: RecordItem, *, reason: str, scope: str, by: User) -> None:
    """Withhold from the patient (pbrl. § 5-1) or hide from guardians, with the reason recorded."""
    now = clock.utcnow()
    if scope == "guardians":
        values = {"hidden_from_guardians": True, "guardian_hidden_reason": reason}
    else:
        values = {"withheld_reason": reason, "withheld_at": now, "withheld_by_id": by.id}
    db.session.execute(
        update(RecordItem)
        .where(RecordItem.id == item.id)
        .values(**values, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    # Whoever may no longer see it is no longer told about it (pushes not yet sent are not sent).
    events.withdraw("record_item", item.id, guardians_only=scope == "guardians")
    db.session.commit()


def lift_withholding(item: RecordItem) -> None:
    db.session.execute(
        update(RecordItem)
        .where(RecordItem.id == item.id)
        .values(
            withheld_reason=None,
            withheld_at=None,
            withheld_by_id=None,
            hidden_from_guardians=False,
            guardian_hidden_reason=None,
            updated_at=clock.utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def sign_visit_summary(*, author: User, patient: Person, unit: CareUnit, title: str, text: str) -> RecordItem:
    """Write and sign a visit summary. Signed means shared with the patient: released now, with its event."""
    now = clock.utcnow()
    source_id = str(uuid.uuid4())
    item = RecordItem(
        person_id=patient.id,
        kind=ItemKind.NOTE,
        section=ItemKind.NOTE.value,
        organisation_id=unit.organisation_id,
        source_system="varde",
        source_type="DocumentReference",
        source_id=source_id,
        content_hash=hashlib.sha256(text.encode()).hexdigest(),
        code_system=VISIT_SUMMARY_CODE[0],
        code=VISIT_SUMMARY_CODE[1],
        category="clinical-note",
        title=title,
        status="current",
        effective_at=now,
        care_unit_name=unit.name,
        author_name=author.display_name,
        data={"visit_summary": True, "signed_by": author.display_name},
        release_policy=ReleasePolicy.IMMEDIATE,
        release_state=ReleaseState.RELEASED,
        released_at=now,
        released_by_id=author.id,
        announced=True,
    )
    item.content = RecordContent(text=text, content_type="text/plain")
    db.session.add(item)
    db.session.flush()
    emit_released(item.id, patient.id, ItemKind.NOTE, hidden_from_guardians=False)
    db.session.commit()
    return item


def my_units(user: User) -> list[CareUnit]:
    """The care units a staff account works in (the access policy's list), with their
    organisations, by name: what the unit consoles (times, messages) let one choose from."""
    ids = policy.staff_unit_ids(user)
    if not ids:
        return []
    return list(
        db.session.scalars(
            select(CareUnit)
            .options(joinedload(CareUnit.organisation))
            .where(CareUnit.id.in_(ids))
            .order_by(CareUnit.name)
        )
    )


def chosen_unit(units: list[CareUnit]) -> CareUnit:
    """The unit the request names (``enhet``), or the first; 404 for one that is not the user's."""
    chosen = request.values.get("enhet", type=db_int)
    for unit in units:
        if chosen is None or unit.id == chosen:
            return unit
    abort(404)
