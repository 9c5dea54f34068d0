"""Reading the record for pages. Every function takes the access Decision the policy gave, and applies
its ``items`` clause: nothing here decides who may see what. Lists cost what they show (keyset pages
over an index), not what the patient has.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, or_, select, update

from app import clock
from app.access.policy import Decision
from app.db import db, keyset_position, keyset_token
from app.people.models import Organisation, Person
from app.record.models import ItemKind, RecordContent, RecordItem

PAGE_SIZE = 20  # a phone screen or three; lists cost what they show
CURRENT_MEDICATION = ("active", "on-hold", "draft", "unknown")


@dataclass
class Page:
    items: list[RecordItem]
    next_cursor: str | None


def _after(cursor: tuple[datetime, int] | None):  # type: ignore[no-untyped-def]
    """Keyset condition for 'older than the cursor' in (effective_at desc, id desc) order."""
    if cursor is None:
        return None
    stamp, item_id = cursor
    return or_(RecordItem.effective_at < stamp, (RecordItem.effective_at == stamp) & (RecordItem.id < item_id))


def page_of(query, cursor: str | None, size: int = PAGE_SIZE) -> Page:  # type: ignore[no-untyped-def]
    """One newest-first page of ``query`` (which must already carry the policy's clause)."""
    condition = _after(keyset_position(cursor))
    if condition is not None:
        query = query.where(condition)
    rows = list(
        db.session.scalars(query.order_by(RecordItem.effective_at.desc(), RecordItem.id.desc()).limit(size + 1))
    )
    more = len(rows) > size
    rows = rows[:size]
    return Page(rows, keyset_token(rows[-1].effective_at, rows[-1].id) if more and rows else None)


def _base(decision: Decision, patient: Person, kind: ItemKind):  # type: ignore[no-untyped-def]
    """One kind's list: the section index gives it newest first."""
    return select(RecordItem).where(
        RecordItem.person_id == patient.id, RecordItem.section == kind.value, decision.items
    )


def _of_kind(decision: Decision, patient: Person, kind: ItemKind):  # type: ignore[no-untyped-def]
    return select(RecordItem).where(RecordItem.person_id == patient.id, RecordItem.kind == kind, decision.items)


NEWS_KINDS = (ItemKind.RESULT, ItemKind.REPORT, ItemKind.NOTE, ItemKind.DOCUMENT)


def _news(decision: Decision, patient: Person):  # type: ignore[no-untyped-def]
    """Announced results, reports, notes and documents: not history that arrived in bulk, and not
    results released together with their report (the report is the news)."""
    return select(RecordItem).where(
        RecordItem.person_id == patient.id,
        RecordItem.announced.is_(True),
        RecordItem.kind.in_(NEWS_KINDS),
        decision.items,
    )


def whats_new(decision: Decision, patient: Person, limit: int = 8) -> tuple[list[RecordItem], int]:
    """The latest news, newest release first, and how much of the news is unread."""
    news = _news(decision, patient)
    items = list(db.session.scalars(news.order_by(RecordItem.released_at.desc(), RecordItem.id.desc()).limit(limit)))
    unread = db.session.scalar(
        news.where(RecordItem.read_at.is_(None)).with_only_columns(func.count(RecordItem.id)).order_by(None)
    )
    return items, unread or 0


def organisations_with_items(decision: Decision, patient: Person) -> list[Organisation]:
    """Organisations the patient has something from (one index probe per organisation in the region)."""
    has = exists().where(
        RecordItem.person_id == patient.id, RecordItem.organisation_id == Organisation.id, decision.items
    )
    return list(db.session.scalars(select(Organisation).where(has).order_by(Organisation.name)))


def results(
    decision: Decision,
    patient: Person,
    *,
    organisation_id: int | None = None,
    category: str | None = None,
    search: str | None = None,
    cursor: str | None = None,
) -> tuple[Page, dict[int, list[RecordItem]]]:
    """Results by date, grouped under their report. With a search: matching results, flat."""
    if search:
        q = _of_kind(decision, patient, ItemKind.RESULT).where(
            func.lower(RecordItem.title).like(f"%{_like(search.lower())}%", escape="\\")
        )
    else:
        q = select(RecordItem).where(
            RecordItem.person_id == patient.id, RecordItem.section == "results", decision.items
        )
    if organisation_id:
        q = q.where(RecordItem.organisation_id == organisation_id)
    if category:
        q = q.where(RecordItem.category == category)
    page = page_of(q, cursor)
    members: dict[int, list[RecordItem]] = {}
    report_ids = [i.id for i in page.items if i.kind is ItemKind.REPORT]
    if report_ids and not search:
        for child in db.session.scalars(
            select(RecordItem)
            .where(RecordItem.report_id.in_(report_ids), RecordItem.person_id == patient.id, decision.items)
            .order_by(RecordItem.id)
        ):
            members.setdefault(child.report_id, []).append(child)  # type: ignore[arg-type]
    return page, members


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def trend(decision: Decision, patient: Person, item: RecordItem, limit: int = 60) -> list[RecordItem]:
    """Earlier and later values of the same test (same code), oldest first, for the trend chart."""
    if not item.code or item.data.get("value") is None:
        return []
    rows = list(
        db.session.scalars(
            _of_kind(decision, patient, ItemKind.RESULT)
            .where(RecordItem.code == item.code, RecordItem.code_system == item.code_system)
            .order_by(RecordItem.effective_at.desc(), RecordItem.id.desc())
            .limit(limit)
        )
    )
    unit = item.data.get("unit")
    rows = [
        r
        for r in rows
        if r.data.get("value") is not None and not r.data.get("date_unknown") and r.data.get("unit") == unit
    ]
    return list(reversed(rows)) if len(rows) > 1 else []


def parent_report(decision: Decision, patient: Person, item: RecordItem) -> RecordItem | None:
    """The report a result was reported in, when the viewer may see it too."""
    if not item.report_id:
        return None
    return db.session.scalar(
        select(RecordItem).where(RecordItem.id == item.report_id, RecordItem.person_id == patient.id, decision.items)
    )


def report_members(decision: Decision, patient: Person, report: RecordItem) -> list[RecordItem]:
    return list(
        db.session.scalars(
            _of_kind(decision, patient, ItemKind.RESULT)
            .where(RecordItem.report_id == report.id)
            .order_by(RecordItem.id)
        )
    )


def notes(decision: Decision, patient: Person, *, summaries_only: bool, cursor: str | None) -> Page:
    q = _base(decision, patient, ItemKind.NOTE)
    if summaries_only:
        q = q.where(RecordItem.data["visit_summary"].as_boolean().is_(True))
    return page_of(q, cursor)


def visits(decision: Decision, patient: Person, cursor: str | None) -> Page:
    return page_of(_base(decision, patient, ItemKind.ENCOUNTER), cursor)


def visit_items(decision: Decision, patient: Person, visit: RecordItem) -> list[RecordItem]:
    return list(
        db.session.scalars(
            select(RecordItem)
            .where(RecordItem.person_id == patient.id, decision.items, RecordItem.encounter_id == visit.id)
            .order_by(RecordItem.kind, RecordItem.effective_at)
            .limit(200)
        )
    )


def medications(decision: Decision, patient: Person) -> tuple[list[RecordItem], list[RecordItem]]:
    """(current, ended), newest first."""
    rows = list(
        db.session.scalars(
            _base(decision, patient, ItemKind.MEDICATION)
            .order_by(RecordItem.effective_at.desc(), RecordItem.id.desc())
            .limit(500)
        )
    )
    current = [r for r in rows if r.status in CURRENT_MEDICATION]
    return current, [r for r in rows if r.status not in CURRENT_MEDICATION]


def immunizations(decision: Decision, patient: Person) -> list[RecordItem]:
    return list(
        db.session.scalars(
            _base(decision, patient, ItemKind.IMMUNIZATION)
            .order_by(RecordItem.effective_at.desc(), RecordItem.id.desc())
            .limit(500)
        )
    )


def documents(decision: Decision, patient: Person, cursor: str | None) -> Page:
    return page_of(_base(decision, patient, ItemKind.DOCUMENT), cursor)


def content_of(item: RecordItem) -> RecordContent | None:
    return db.session.get(RecordContent, item.id)


def mark_read(decision: Decision, item: RecordItem) -> None:
    """The patient opened it: no longer unread (only the patient's own reads count). Opening a
    report reads the results shown on it too."""
    if decision.is_patient and item.read_at is None:
        db.session.execute(
            update(RecordItem)
            .where(
                or_(RecordItem.id == item.id, RecordItem.report_id == item.id),
                RecordItem.person_id == item.person_id,
                RecordItem.read_at.is_(None),
                decision.items,
            )
            .values(read_at=clock.utcnow())
            .execution_options(synchronize_session=False)
        )
        # Committed with the request's audit row (access.policy commits after the response is built).


def everything(decision: Decision, patient: Person) -> dict[ItemKind, list[RecordItem]]:
    """Every item the viewer may see, by kind (export and the printable record)."""
    out: dict[ItemKind, list[RecordItem]] = {k: [] for k in ItemKind}
    for item in db.session.scalars(
        select(RecordItem)
        .where(RecordItem.person_id == patient.id, decision.items)
        .order_by(RecordItem.effective_at.desc(), RecordItem.id.desc())
    ):
        out[item.kind].append(item)
    return out


def contents(item_ids: list[int]) -> dict[int, RecordContent]:
    out: dict[int, RecordContent] = {}
    for start in range(0, len(item_ids), 500):
        for c in db.session.scalars(
            select(RecordContent).where(RecordContent.item_id.in_(item_ids[start : start + 500]))
        ):
            out[c.item_id] = c
    return out
