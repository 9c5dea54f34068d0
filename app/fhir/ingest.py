"""FHIR R4 ingest: a transaction or batch Bundle from one source system, all or nothing.

1. JSON and the bundle's shape (``validate.check_bundle``), every resource validated
   (``validate.validate_entries``) — one invalid resource refuses the whole bundle.
2. Patients matched by national id (fødselsnummer or D-number) or by an identifier Varde already
   knows for them; an unknown patient refuses the bundle.
3. Resources Varde keeps become record items (``mapping``), keyed on source system + resource type
   + id: a resource seen before with the same content changes nothing, a newer version updates the
   item in place, an older one is ignored.
4. Release rules decide what the patient sees now; every release writes an event row — all in one
   transaction, committed together or not at all.
5. Appointment (and Schedule) resources become the patient's times instead (``appointments``), in
   the same transaction and under the same rules: checked before anything is written, keyed on
   source system + id, news announced by an event.
6. A Patient's ``generalPractitioner`` sets their GP office, and a ServiceRequest (a referral) to
   one of Varde's care units adds or ends a referral relation (``relations``): whom they may write to.
   A RelatedPerson with parental responsibility adds or ends a parent relation (``relations``).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

import psycopg
from flask import current_app
from sqlalchemy import insert, select, update
from sqlalchemy.exc import DataError, IntegrityError

from app import clock
from app.access.services import audit
from app.db import UTCDateTime, db
from app.fhir import appointments, mapping, relations
from app.fhir.validate import BundleRefused, Issue, check_bundle, parse_json, validate_entries
from app.notify import events
from app.people.models import Person, PersonIdentifier
from app.people.nin import parse_nin
from app.record.models import FhirClient, ItemKind, RecordContent, RecordItem, ReleasePolicy, ReleaseState
from app.record.release import RuleBook, initial_state, released_change

CHUNK = 500


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    released: int = 0
    resources: int = 0
    not_kept: Counter = field(default_factory=Counter)
    warnings: list[Issue] = field(default_factory=list)

    def issues(self) -> list[Issue]:
        summary = (
            f"{self.resources} ressurser lest: {self.created} nye, {self.updated} oppdatert, "
            f"{self.unchanged} uendret, {self.stale} eldre versjoner oversett, {self.released} frigitt."
        )
        out = [Issue("information", "informational", summary)]
        if self.not_kept:
            kinds = ", ".join(f"{k} ({n})" for k, n in sorted(self.not_kept.items()))
            out.append(Issue("information", "informational", f"Gyldige, men ikke lagret i journalen: {kinds}."))
        return out + self.warnings


def _canonical(resource: dict[str, Any]) -> tuple[str, str]:
    """The resource as canonical JSON, and its SHA-256 (what 'unchanged' means)."""
    text = json.dumps(resource, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text, hashlib.sha256(text.encode()).hexdigest()


def source_patient_system(client: FhirClient) -> str:
    """The identifier system under which Varde remembers a source system's own Patient ids."""
    return f"urn:varde:source:{client.source_system}:Patient"


def _find_by_identifiers(identifiers: list[dict[str, Any]], demo: bool, label: str) -> int | None:
    """The one person these identifiers name, or None. The national id decides; any identifier
    naming someone else refuses the bundle (409) rather than risk filing data on the wrong person."""
    by_nin: set[int] = set()
    by_other: set[int] = set()
    for ident in identifiers:
        system, value = ident.get("system"), (ident.get("value") or "").strip()
        if not value:
            continue
        if system in mapping.NIN_SYSTEMS:
            try:
                nin = parse_nin(value, allow_synthetic=demo).value
            except ValueError:
                continue
            person_id = db.session.scalar(select(Person.id).where(Person.national_id == nin))
            if person_id is not None:
                by_nin.add(person_id)
        else:
            person_id = db.session.scalar(
                select(PersonIdentifier.person_id).where(
                    PersonIdentifier.system == system, PersonIdentifier.value == value
                )
            )
            if person_id is not None:
                by_other.add(person_id)
    found = by_nin | by_other
    if len(found) > 1:
        raise BundleRefused(
            409,
            [
                Issue(
                    "error",
                    "conflict",
                    f"{label}: identifikatorene peker på ulike personer i Varde. Ingenting ble lagret; "
                    "rett identifikatorene i kildesystemet.",
                    ["Patient.identifier"],
                )
            ],
        )
    return next(iter(found), None)


def match_patients(resources: list[dict[str, Any]], full_urls: list[str | None], client: FhirClient) -> dict[str, int]:
    """Reference ("Patient/85" or a fullUrl) -> person id for every Patient in the bundle.

    Raises BundleRefused (422) for a Patient that matches nobody in Varde.
    """
    demo = bool(current_app.config["DEMO_MODE"])
    own_system = source_patient_system(client)
    refs: dict[str, int] = {}
    unknown: list[Issue] = []
    for resource, full_url in zip(resources, full_urls, strict=True):
        if resource["resourceType"] != "Patient":
            continue
        rid = resource.get("id")
        identifiers = list(resource.get("identifier") or [])
        if rid:
            identifiers.append({"system": own_system, "value": rid})
        person_id = _find_by_identifiers(identifiers, demo, f"Patient/{rid}")
        if person_id is None:
            unknown.append(
                Issue(
                    "error",
                    "not-found",
                    f"Patient/{rid}: ukjent pasient. Varde fant ingen person med dette fødselsnummeret, "
                    "D-nummeret eller kildesystemets identifikator.",
                    ["Patient.identifier"],
                )
            )
            continue
        if rid:
            refs[f"Patient/{rid}"] = person_id
            _remember(own_system, rid, person_id)
        if full_url:
            refs[full_url] = person_id
    if unknown:
        raise BundleRefused(422, unknown)
    return refs


def _remember(system: str, value: str, person_id: int) -> None:
    """Remember the source's Patient id, so later bundles may refer to it without the Patient."""
    known = db.session.scalar(
        select(PersonIdentifier.person_id).where(PersonIdentifier.system == system, PersonIdentifier.value == value)
    )
    if known is None:
        db.session.add(PersonIdentifier(person_id=person_id, system=system, value=value))
    elif known != person_id:
        raise BundleRefused(
            409,
            [Issue("error", "conflict", f"Patient/{value} er allerede koblet til en annen person i Varde.")],
        )


def _resolve_patient(ref: str | None, patients: dict[str, int], client: FhirClient) -> int | None:
    if not ref:
        return None
    if ref in patients:
        return patients[ref]
    if ref.startswith("Patient/"):
        person_id = db.session.scalar(
            select(PersonIdentifier.person_id).where(
                PersonIdentifier.system == source_patient_system(client),
                PersonIdentifier.value == ref.split("/", 1)[1],
            )
        )
        if person_id is not None:
            patients[ref] = person_id
        return person_id
    return None


def _version_key(resource: dict[str, Any]) -> tuple[str | None, Any]:
    meta = resource.get("meta") or {}
    return meta.get("versionId"), mapping.parse_datetime(meta.get("lastUpdated"))


def _is_older(version: str | None, updated: Any, old_version: str | None, old_updated: Any) -> bool:
    if version and old_version and version.isdigit() and old_version.isdigit():
        return int(version) < int(old_version)
    return bool(updated and old_updated and updated < old_updated)


def import_bundle(raw: bytes | str | dict[str, Any], client: FhirClient) -> ImportResult:
    """Import one bundle for ``client`` and commit. Raises BundleRefused with nothing stored."""
    config = current_app.config
    bundle = parse_json(raw) if isinstance(raw, bytes | str) else raw
    entries = check_bundle(bundle, config["FHIR_MAX_ENTRIES"])
    resources, warnings = validate_entries(entries)
    full_urls = [e.get("fullUrl") for e in entries]
    result = ImportResult(resources=len(resources), warnings=warnings)
    try:
        _store(resources, full_urls, client, result)
        audit(
            "fhir_import",
            actor_user_id=None,
            object_type="fhir_client",
            object_id=client.id,
            outcome="ok",
        )
        db.session.execute(update(FhirClient).where(FhirClient.id == client.id).values(last_used_at=clock.utcnow()))
        db.session.commit()
    except (IntegrityError, psycopg.IntegrityError):
        # Another bundle from the same source stored one of these resources a moment ago (the
        # PostgreSQL fast path raises psycopg's own error, not SQLAlchemy's).
        db.session.rollback()
        raise BundleRefused(
            409, [Issue("error", "conflict", "En annen bundel endret de samme ressursene samtidig. Send på nytt.")]
        ) from None
    except (DataError, psycopg.DataError) as exc:
        db.session.rollback()
        raise BundleRefused(
            422, [Issue("error", "too-long", f"En verdi passer ikke i Varde: {str(exc).splitlines()[0][:200]}")]
        ) from None
    except BaseException:
        db.session.rollback()
        raise
    return result


def _store(
    resources: list[dict[str, Any]], full_urls: list[str | None], client: FhirClient, result: ImportResult
) -> None:
    now = clock.utcnow()
    config = current_app.config
    patients = match_patients(resources, full_urls, client)
    resolver = mapping.Resolver(resources, full_urls)
    rules = RuleBook.load()
    event_horizon = now - timedelta(days=config["RELEASE_EVENT_MAX_AGE_DAYS"])

    # fullUrl -> "Type/id", so references by either name find the same item.
    canonical: dict[str, str] = {}
    mapped: list[tuple[mapping.Mapped, dict[str, Any], int]] = []
    calendar: list[dict[str, Any]] = []  # Appointment, Schedule, Slot: see app/fhir/appointments.py
    errors: list[Issue] = []
    seen: set[str] = set()
    for resource, full_url in zip(resources, full_urls, strict=True):
        key = f"{resource['resourceType']}/{resource.get('id')}"
        if full_url:
            canonical[full_url] = key
        if resource.get("id") and key in seen:
            errors.append(Issue("error", "duplicate", f"{key} står flere ganger i bundelen.", [key]))
            continue
        seen.add(key)
        if resource["resourceType"] in appointments.RESOURCE_TYPES:
            calendar.append(resource)
            continue
        m = mapping.map_resource(resource, resolver)
        if m is None:
            if resource["resourceType"] != "Patient":
                result.not_kept[resource["resourceType"]] += 1
            continue
        if not resource.get("id"):
            errors.append(Issue("error", "required", f"{key}: ressursen mangler id.", [resource["resourceType"]]))
            continue
        person_id = _resolve_patient(m.patient_ref, patients, client)
        if person_id is None:
            errors.append(
                Issue(
                    "error",
                    "not-found",
                    f"{key}: pasienten {m.patient_ref or '(mangler)'} er ukjent for Varde.",
                    [f"{resource['resourceType']}.subject"],
                )
            )
            continue
        mapped.append((m, resource, person_id))
    booking = appointments.prepare(
        calendar, resolver, lambda ref: _resolve_patient(ref, patients, client), client, now, result, errors
    )
    gp_offices = relations.prepare(resources, patients, resolver, result.warnings)
    referrals = relations.prepare_referrals(
        resources, lambda ref: _resolve_patient(ref, patients, client), resolver, client, result.warnings
    )
    parents = relations.prepare_parents(
        resources,
        lambda ref: _resolve_patient(ref, patients, client),
        result.warnings,
        from_register=client.population_register,
    )
    if errors:
        raise BundleRefused(422, errors)

    person_of = {f"{m.source_type}/{m.source_id}": p for m, _r, p in mapped}
    report_of: dict[str, str] = {}  # result -> the report it was reported in
    for m, _r, person_id in mapped:
        key = f"{m.source_type}/{m.source_id}"
        for ref in [m.encounter_ref, *m.result_refs]:
            target = canonical.get(ref, ref) if ref else None
            if target in person_of and person_of[target] != person_id:
                errors.append(
                    Issue("error", "conflict", f"{key} viser til {target}, som gjelder en annen pasient.", [key])
                )
        if m.kind is ItemKind.REPORT:
            for ref in m.result_refs:
                report_of[canonical.get(ref, ref)] = key
    if errors:
        raise BundleRefused(422, errors)
    policies = {
        f"{m.source_type}/{m.source_id}": rules.match(
            client.organisation_id, m.kind.value, m.columns.get("category"), m.columns.get("code")
        )
        for m, _r, _p in mapped
    }
    for result_key, report_key in report_of.items():
        # A result is held at least as long as the report it belongs to.
        if result_key in policies and report_key in policies:
            policies[result_key] = stricter(policies[result_key], policies[report_key])

    existing = _existing(client.source_system, [(m.source_type, m.source_id) for m, _r, _p in mapped], for_update=True)
    new_rows: list[dict[str, Any]] = []
    new_content: list[dict[str, Any]] = []
    changed_rows: list[dict[str, Any]] = []
    changed_content: list[dict[str, Any]] = []
    ids: dict[str, int] = {}
    to_emit: list[tuple[str, int, ItemKind, bool]] = []  # (key, person, kind, hidden from guardians) released now

    for m, resource, person_id in mapped:
        key = f"{m.source_type}/{m.source_id}"
        resource_json, digest = _canonical(resource)
        version, updated = _version_key(resource)
        old = existing.get((m.source_type, m.source_id))
        policy, hold_days = policies[key]
        content = {
            "text": m.text,
            "content_type": m.content_type,
            "binary": m.binary,
            "resource": resource,
            "resource_json": resource_json,
        }
        if old is not None:
            ids[key] = old.id
            if old.person_id != person_id:
                raise BundleRefused(
                    409, [Issue("error", "conflict", f"{key} tilhører en annen pasient i Varde og kan ikke flyttes.")]
                )
            if old.content_hash == digest:
                result.unchanged += 1
                continue
            if _is_older(version, updated, old.source_version, old.source_updated_at):
                result.stale += 1
                continue
            state, due, released_at = old.release_state, old.release_due_at, old.released_at
            announced = old.announced
            if m.withdrawn:
                state, due = ReleaseState.ENTERED_IN_ERROR, None
            elif old.release_state not in (ReleaseState.RELEASED, ReleaseState.HELD):
                state, due, released_at = initial_state(policy, hold_days, final=m.final, withdrawn=False, now=now)
                if state is ReleaseState.RELEASED:
                    result.released += 1
                    if old.withheld_at is None:  # a withheld item is released quietly
                        to_emit.append((key, person_id, m.kind, old.hidden_from_guardians))
                        announced = True
            row = {"id": old.id, **_row(m, now, version, updated, digest, policy, state, due, released_at, announced)}
            row["section"] = "in_report" if old.report_id and m.kind is ItemKind.RESULT else _section(m.kind)
            # Release columns are written only when this version changes them, so a release by a
            # clinician or the worker in the meantime is never undone.
            for column, before in (
                ("release_state", old.release_state),
                ("release_due_at", old.release_due_at),
                ("released_at", old.released_at),
                ("announced", old.announced),
            ):
                if row[column] == before:
                    del row[column]
            changed_rows.append(row)
            changed_content.append({"item_id": old.id, **{k: v for k, v in content.items() if k != "resource_json"}})
            result.updated += 1
            continue
        state, due, released_at = initial_state(policy, hold_days, final=m.final, withdrawn=m.withdrawn, now=now)
        result.released += state is ReleaseState.RELEASED
        announced = state is ReleaseState.RELEASED and (
            m.columns.get("effective_at") is None or m.columns["effective_at"] >= event_horizon
        )
        if announced:
            to_emit.append((key, person_id, m.kind, False))
        new_rows.append(
            {
                "person_id": person_id,
                "organisation_id": client.organisation_id,
                "source_system": client.source_system,
                "source_type": m.source_type,
                "source_id": m.source_id,
                "section": _section(m.kind),
                **_row(m, now, version, updated, digest, policy, state, due, released_at, announced),
                "hidden_from_guardians": False,
                "created_at": now,
            }
        )
        new_content.append(content)
        result.created += 1

    _insert_new(new_rows, new_content, mapped, report_of, canonical, ids)
    if changed_rows:
        changed_rows.sort(key=lambda r: r["id"])  # one lock order for every writer
        changed_content.sort(key=lambda r: r["item_id"])
        db.session.execute(update(RecordItem), changed_rows)
        db.session.execute(update(RecordContent), changed_content)

    in_announced_report = _link(
        mapped, canonical, ids, client.source_system, {k for k, _p, _k, _h in to_emit}, person_of
    )
    if in_announced_report:
        # The report is the news; its results released with it are listed under it.
        db.session.execute(
            update(RecordItem)
            .where(RecordItem.id.in_(sorted(in_announced_report)))
            .values(announced=False)
            .execution_options(synchronize_session=False)
        )
    # One event per piece of news: a result released with its report is covered by the report's.
    events.emit_many(
        [
            released_change(ids[key], person_id, kind, hidden_from_guardians=hidden)
            for key, person_id, kind, hidden in to_emit
            if ids[key] not in in_announced_report
        ]
    )
    appointments.apply(booking, client, now, event_horizon, result)
    relations.apply(gp_offices, referrals)
    relations.apply_parents(parents, now)


def _insert_new(
    rows: list[dict[str, Any]],
    contents: list[dict[str, Any]],
    mapped: list[tuple[mapping.Mapped, dict[str, Any], int]],
    report_of: dict[str, str],
    canonical: dict[str, str],
    ids: dict[str, int],
) -> None:
    """Insert new items visits first, then reports, then the rest, so each row is inserted with
    its visit and report already linked (no second pass over thousands of rows)."""
    by_key = {f"{m.source_type}/{m.source_id}": m for m, _r, _p in mapped}
    order = {ItemKind.ENCOUNTER: 0, ItemKind.REPORT: 1}
    pending = sorted(zip(rows, contents, strict=True), key=lambda rc: order.get(rc[0]["kind"], 2))
    for stage in (0, 1, 2):
        batch = [(row, content) for row, content in pending if order.get(row["kind"], 2) == stage]
        for row, _content in batch:
            key = f"{row['source_type']}/{row['source_id']}"
            m = by_key[key]
            encounter = canonical.get(m.encounter_ref, m.encounter_ref) if m.encounter_ref else None
            row["encounter_id"] = ids.get(encounter) if encounter else None
            report = report_of.get(key)
            row["report_id"] = ids.get(report) if report else None
            if row["report_id"] is not None and row["kind"] is ItemKind.RESULT:
                row["section"] = "in_report"
        for start in range(0, len(batch), CHUNK):
            chunk = batch[start : start + CHUNK]
            inserted = _insert_items([row for row, _c in chunk])
            for (row, content), item_id in zip(chunk, inserted, strict=True):
                ids[f"{row['source_type']}/{row['source_id']}"] = item_id
                content["item_id"] = item_id
    _insert_contents(contents)


def _insert_items(rows: list[dict[str, Any]]) -> list[int]:
    """Insert item rows (all with the same keys) and return their ids in order.

    On PostgreSQL through psycopg's pipelined executemany with one short, prepared statement:
    SQLAlchemy's multi-row VALUES statement is fast on the server, but psycopg parses its
    thousands of placeholders in Python, which cost more than the whole insert. Values are
    converted here as the column types would (enums to text, UTC datetimes to naive UTC, JSON).
    """
    if not rows:
        return []
    conn = db.session.connection()
    if conn.dialect.name != "postgresql":
        return list(
            db.session.execute(
                insert(RecordItem).returning(RecordItem.id, sort_by_parameter_order=True), rows
            ).scalars()
        )
    columns = list(rows[0])
    placeholders = ", ".join("%s::json" if c == "data" else "%s" for c in columns)
    # The column names are our own row keys (built above from the model), never input.
    sql = f"INSERT INTO record_item ({', '.join(columns)}) VALUES ({placeholders}) RETURNING id"  # noqa: S608
    values = [tuple(_pg_value(row[c]) for c in columns) for row in rows]
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.executemany(sql, values, returning=True)
        ids: list[int] = []
        while True:
            ids.append(cursor.fetchone()[0])
            if not cursor.nextset():
                break
        return ids
    finally:
        cursor.close()


_UTC_COLUMN = UTCDateTime()


def _pg_value(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return _UTC_COLUMN.process_bind_param(value, None)  # the column type's own conversion
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def _insert_contents(contents: list[dict[str, Any]]) -> None:
    """The driver's own executemany (psycopg pipelines it): one short statement, parsed once,
    with the resource JSON already serialised for its hash."""
    if not contents:
        return
    conn = db.session.connection()
    if conn.dialect.name == "postgresql":
        sql = (
            'INSERT INTO record_content (item_id, text, content_type, "binary", resource) '
            "VALUES (%s, %s, %s, %s, %s::json)"
        )
    else:
        sql = 'INSERT INTO record_content (item_id, text, content_type, "binary", resource) VALUES (?, ?, ?, ?, ?)'
    conn.exec_driver_sql(
        sql,
        [(c["item_id"], c["text"], c["content_type"], c["binary"], c["resource_json"]) for c in contents],
    )


def _section(kind: ItemKind) -> str:
    return "results" if kind in (ItemKind.RESULT, ItemKind.REPORT) else kind.value


STRICTNESS = {ReleasePolicy.IMMEDIATE: 0, ReleasePolicy.HELD: 1, ReleasePolicy.CLINICIAN: 2, ReleasePolicy.NEVER: 3}


def stricter(a: tuple[ReleasePolicy, int], b: tuple[ReleasePolicy, int]) -> tuple[ReleasePolicy, int]:
    """The stricter of two (policy, hold days); two holds wait for the longer."""
    if a[0] is b[0]:
        return a[0], max(a[1], b[1])
    return a if STRICTNESS[a[0]] > STRICTNESS[b[0]] else b


def _row(
    m: mapping.Mapped,
    now: datetime,
    version: str | None,
    updated: datetime | None,
    digest: str,
    policy: Any,
    state: ReleaseState,
    due: datetime | None,
    released_at: datetime | None,
    announced: bool,
) -> dict[str, Any]:
    """What a new and a changed version of an item both write."""
    return {
        "kind": m.kind,
        "source_version": version,
        "source_updated_at": updated,
        "content_hash": digest,
        **_columns(m, now),
        "data": m.data,
        "release_policy": policy,
        "release_state": state,
        "release_due_at": due,
        "released_at": released_at,
        "announced": announced,
        "updated_at": now,
    }


def _columns(m: mapping.Mapped, now: Any) -> dict[str, Any]:
    c = m.columns
    if c.get("effective_at") is None:
        m.data["date_unknown"] = True  # listed by arrival time; the page says the date is unknown
    return {
        "code_system": (c.get("code_system") or None) and c["code_system"][:200],
        "code": (c.get("code") or None) and c["code"][:64],
        "category": (c.get("category") or None) and c["category"][:64],
        "title": (c.get("title") or "")[:300],
        "status": c["status"],
        "effective_at": c.get("effective_at") or now,
        "care_unit_name": (c.get("care_unit_name") or None) and c["care_unit_name"][:200],
        "author_name": (c.get("author_name") or None) and c["author_name"][:200],
    }


def _existing(
    source_system: str, keys: list[tuple[str, str]], *, for_update: bool = False
) -> dict[tuple[str, str], Any]:
    """The items already stored for these (type, id) keys of one source, by key.

    Looked up by id only (the unique index leads with source system and id) and matched on type
    here: a row-value IN list of hundreds of pairs costs PostgreSQL more to plan than to run.
    With ``for_update`` PostgreSQL locks the rows until the bundle commits, so a concurrent
    bundle waits instead of writing over this one (SQLite has a single writer anyway).
    """
    wanted = set(keys)
    ids = sorted({source_id for _type, source_id in keys})
    found: dict[tuple[str, str], Any] = {}
    for start in range(0, len(ids), CHUNK):
        query = select(
            RecordItem.id,
            RecordItem.person_id,
            RecordItem.source_type,
            RecordItem.source_id,
            RecordItem.content_hash,
            RecordItem.source_version,
            RecordItem.source_updated_at,
            RecordItem.release_state,
            RecordItem.release_due_at,
            RecordItem.released_at,
            RecordItem.announced,
            RecordItem.withheld_at,
            RecordItem.hidden_from_guardians,
            RecordItem.report_id,
        ).where(RecordItem.source_system == source_system, RecordItem.source_id.in_(ids[start : start + CHUNK]))
        if for_update:
            query = query.order_by(RecordItem.id).with_for_update()
        for row in db.session.execute(query).all():
            if (row.source_type, row.source_id) in wanted:
                found[(row.source_type, row.source_id)] = row
    return found


def _link(
    mapped: list[tuple[mapping.Mapped, dict[str, Any], int]],
    canonical: dict[str, str],
    ids: dict[str, int],
    source_system: str,
    announced_now: set[str],
    person_of: dict[str, int],
) -> set[int]:
    """Set each item's visit (encounter_id) and each result's report (report_id), also when the
    other end came in an earlier bundle from the same source. A reference to another patient's
    item refuses the bundle.

    Returns the ids of results announced now whose report is announced now too.
    """
    refs: list[tuple[str, str, str]] = []  # (item key, "encounter" or "report_of", target key)
    for m, _resource, _person in mapped:
        key = f"{m.source_type}/{m.source_id}"
        if m.encounter_ref:
            refs.append((key, "encounter", canonical.get(m.encounter_ref, m.encounter_ref)))
        for ref in m.result_refs:
            refs.append((key, "report_of", canonical.get(ref, ref)))
    # Items stored by earlier bundles from the same source, looked up once.
    missing = {t for _k, _c, t in refs if t not in ids and "/" in t}
    if missing:
        found = _existing(source_system, [tuple(k.split("/", 1)) for k in missing])  # type: ignore[misc]
        for (rtype, rid), row in found.items():
            ids[f"{rtype}/{rid}"] = row.id
            person_of[f"{rtype}/{rid}"] = row.person_id
    wanted: dict[int, dict[str, Any]] = {}
    together: set[int] = set()
    errors: list[Issue] = []
    for key, what, target in refs:
        if target not in ids:
            continue
        if person_of.get(target) != person_of[key]:
            errors.append(Issue("error", "conflict", f"{key} viser til {target}, som gjelder en annen pasient.", [key]))
            continue
        if what == "encounter":
            wanted.setdefault(ids[key], {})["encounter_id"] = ids[target]
        else:  # key is a report listing target among its results
            wanted.setdefault(ids[target], {}).update(report_id=ids[key], section="in_report")
            if target in announced_now and key in announced_now:
                together.add(ids[target])
    if errors:
        raise BundleRefused(422, errors)
    # Only what changes: a repeated bundle must not touch a single row.
    wanted_ids = sorted(wanted)
    for start in range(0, len(wanted_ids), CHUNK):
        for row in db.session.execute(
            select(RecordItem.id, RecordItem.encounter_id, RecordItem.report_id).where(
                RecordItem.id.in_(wanted_ids[start : start + CHUNK])
            )
        ):
            values = wanted[row.id]
            if (
                values.get("encounter_id", row.encounter_id) == row.encounter_id
                and values.get("report_id", row.report_id) == row.report_id
            ):
                del wanted[row.id]
    if wanted:
        db.session.execute(
            update(RecordItem), [{"id": item_id, **values} for item_id, values in sorted(wanted.items())]
        )
    return together
