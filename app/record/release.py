"""Release rules: when a patient gets to see an item (HelsaMi's four kinds).

(a) immediate: shown as soon as it is final; (b) held: for the clinician first, released
automatically after ``hold_days`` (14 by default); (c) clinician: released only by a clinician;
(d) never: not shown digitally. Every release writes an event row in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from app import clock
from app.db import db
from app.notify import events
from app.notify.events import Change
from app.record.models import ItemKind, RecordItem, ReleasePolicy, ReleaseRule, ReleaseState

EVENT_KINDS = {
    ItemKind.RESULT: "result_released",
    ItemKind.REPORT: "result_released",
    ItemKind.NOTE: "note_released",
    ItemKind.DOCUMENT: "document_released",
    ItemKind.MEDICATION: "medication_changed",
    ItemKind.IMMUNIZATION: "immunization_added",
    ItemKind.ENCOUNTER: "visit_added",
}


@dataclass(frozen=True)
class Rule:
    organisation_id: int | None
    kind: str | None
    category: str | None
    code: str | None
    policy: ReleasePolicy
    hold_days: int | None
    specificity: int


class RuleBook:
    """All release rules, read once per import (the table is small) and matched in memory."""

    def __init__(self, rules: list[ReleaseRule], default_hold_days: int) -> None:
        self.rules = sorted(
            (Rule(r.organisation_id, r.kind, r.category, r.code, r.policy, r.hold_days, r.specificity) for r in rules),
            key=lambda r: -r.specificity,
        )
        self.default_hold_days = default_hold_days

    @classmethod
    def load(cls) -> RuleBook:
        return cls(list(db.session.scalars(select(ReleaseRule))), current_app.config["RELEASE_HOLD_DAYS"])

    def match(
        self, organisation_id: int, kind: str, category: str | None, code: str | None
    ) -> tuple[ReleasePolicy, int]:
        for r in self.rules:
            if (
                (r.organisation_id is None or r.organisation_id == organisation_id)
                and (r.kind is None or r.kind == kind)
                and (r.category is None or r.category == category)
                and (r.code is None or r.code == code)
            ):
                return r.policy, r.hold_days or self.default_hold_days
        return ReleasePolicy.IMMEDIATE, self.default_hold_days


def initial_state(
    policy: ReleasePolicy, hold_days: int, *, final: bool, withdrawn: bool, now: datetime
) -> tuple[ReleaseState, datetime | None, datetime | None]:
    """(state, release_due_at, released_at) for an item arriving (or changing) now."""
    if withdrawn:
        return ReleaseState.ENTERED_IN_ERROR, None, None
    if policy is ReleasePolicy.NEVER:
        return ReleaseState.NEVER, None, None
    if not final:
        return ReleaseState.PENDING, None, None
    if policy is ReleasePolicy.IMMEDIATE:
        return ReleaseState.RELEASED, None, now
    if policy is ReleasePolicy.HELD:
        return ReleaseState.HELD, now + timedelta(days=hold_days), None
    return ReleaseState.HELD, None, None  # clinician only


def item_url(item_id: int, kind: ItemKind | str) -> str:
    """Where a tap on the item's notification leads (path only; no detail about the item)."""
    section = {
        ItemKind.RESULT: "prover",
        ItemKind.REPORT: "rapporter",
        ItemKind.NOTE: "notater",
        ItemKind.DOCUMENT: "dokumenter",
        ItemKind.MEDICATION: "legemidler",
        ItemKind.IMMUNIZATION: "vaksiner",
        ItemKind.ENCOUNTER: "besok",
    }[ItemKind(kind)]
    return f"/journal/{section}/{item_id}"


def released_change(item_id: int, person_id: int, kind: ItemKind | str, *, hidden_from_guardians: bool) -> Change:
    """The event of an item's release: its kind and where a tap leads, nothing about its content."""
    return Change(
        person_id,
        EVENT_KINDS[ItemKind(kind)],
        object_type="record_item",
        object_id=item_id,
        url=item_url(item_id, kind),
        guardians_may_know=not hidden_from_guardians,
    )


def emit_released(item_id: int, person_id: int, kind: ItemKind | str, *, hidden_from_guardians: bool) -> None:
    events.emit_many([released_change(item_id, person_id, kind, hidden_from_guardians=hidden_from_guardians)])


def release(item: RecordItem, *, by_user_id: int | None, comment: str | None = None) -> bool:
    """Release one held item now. Returns False (and changes nothing) when it was not held, or
    when it is withheld from the patient (lift the withholding first).

    A conditional UPDATE, so two clinicians (or a clinician and the timer) cannot both release
    it. Releasing a report releases the held results in it too; the report's event covers them.
    """
    now = clock.utcnow()
    values = {
        "release_state": ReleaseState.RELEASED,
        "released_at": now,
        "released_by_id": by_user_id,
        "release_due_at": None,
        "updated_at": now,
    }
    result = db.session.execute(
        update(RecordItem)
        .where(
            RecordItem.id == item.id,
            RecordItem.release_state == ReleaseState.HELD,
            RecordItem.withheld_at.is_(None),
        )
        .values(**values, release_comment=comment or None, announced=True)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    if item.kind is ItemKind.REPORT:
        db.session.execute(
            update(RecordItem)
            .where(
                RecordItem.report_id == item.id,
                RecordItem.person_id == item.person_id,
                RecordItem.release_state == ReleaseState.HELD,
            )
            .values(**values, announced=False)
            .execution_options(synchronize_session=False)
        )
    emit_released(item.id, item.person_id, item.kind, hidden_from_guardians=item.hidden_from_guardians)
    db.session.expire(item)
    return True


def release_due(now: datetime | None = None, batch: int = 500) -> int:
    """Release every held item whose time has come (the worker runs this every minute).

    One conditional UPDATE … RETURNING per batch: only rows still held are released (so several
    workers, or a clinician releasing at the same moment, never release one twice), and each
    gets its event in the same transaction. A withheld item is released quietly: no news, no event.
    """
    now = now or clock.utcnow()
    released = 0
    while True:
        due = (
            select(RecordItem.id)
            .where(RecordItem.release_state == ReleaseState.HELD, RecordItem.release_due_at <= now)
            .order_by(RecordItem.release_due_at, RecordItem.id)
            .limit(batch)
        )
        rows = db.session.execute(
            update(RecordItem)
            .where(RecordItem.id.in_(due.scalar_subquery()), RecordItem.release_state == ReleaseState.HELD)
            .values(
                release_state=ReleaseState.RELEASED,
                released_at=now,
                release_due_at=None,
                announced=RecordItem.withheld_at.is_(None),
                updated_at=now,
            )
            .returning(
                RecordItem.id,
                RecordItem.person_id,
                RecordItem.kind,
                RecordItem.withheld_at,
                RecordItem.hidden_from_guardians,
                RecordItem.report_id,
            )
            .execution_options(synchronize_session=False)
        ).all()
        released_now = [row.id for row in rows]
        released_set = set(released_now)
        # One event per piece of news: a report released with its results covers them.
        events.emit_many(
            [
                released_change(row.id, row.person_id, row.kind, hidden_from_guardians=row.hidden_from_guardians)
                for row in rows
                if row.withheld_at is None and row.report_id not in released_set
            ]
        )
        if released_now:
            # A report released with its results is the news; the results are listed under it.
            db.session.execute(
                update(RecordItem)
                .where(RecordItem.id.in_(released_now), RecordItem.report_id.in_(released_now))
                .values(announced=False)
                .execution_options(synchronize_session=False)
            )
        db.session.commit()
        released += len(rows)
        if len(rows) < batch:
            return released
