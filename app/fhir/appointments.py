"""FHIR R4 Appointment (and Schedule, Slot) in: a source system's times become appointment rows.

Called by ``ingest._store`` in two steps, so that a bundle is refused before anything is written:
``prepare`` maps and checks every resource (problems go into the bundle's list of errors) and
locks the rows stored before; ``apply`` writes, in the bundle's transaction, with its events.

What Varde keeps:

- Appointment → ``Appointment``, keyed on source system + id. Status: pending, booked, arrived,
  checked-in, fulfilled → booked (arrived, checked-in and fulfilled once the start has passed →
  attended); cancelled → cancelled (by the source, reason from cancelationReason); noshow → no-show;
  entered-in-error → entered in error. Proposed and waitlist times are not kept (counted as not
  kept), nor is a time for several patients (with a warning). A cancelled time without a start is
  kept only as a cancellation of a time stored before.
- Title: serviceType, else appointmentType (their text or display), else description, else "Time".
- Mode: video when a code of serviceCategory, serviceType, appointmentType or an extension is
  ``VR`` or a word of them says video/virtual/virtuell; phone when one says telefon/phone;
  otherwise in person.
- Place: a participant Location found in the bundle becomes (or reuses, by name and address) a
  ``Location`` of the organisation. A Location only referred to keeps the place stored before.
- Care unit: the name of a participant HealthcareService (or Location) that is exactly the name of
  one of the organisation's care units; otherwise none.
- Schedule → ``Schedule`` only when its HealthcareService or Location actor names one of the
  organisation's care units (a schedule must belong to one); otherwise not kept.
- Slot: never kept. A slot Varde stores can be booked in Varde, and Varde cannot tell the source
  system about such a booking, so the hospital would never learn of it.

Versions, as for record items (``ingest._version_key`` and ``ingest._is_older``): a time keeps the
meta.versionId and meta.lastUpdated of the version stored. A version older than that (by versionId
when both are numbers, else by lastUpdated) is counted as an older one and changes nothing: no
value, no place, no event. A version that cannot be ordered (no meta) applies, as a newer one does.
"Unchanged" means the values Varde keeps and the version are the same; a newer version with the
same values records its version (counted as updated, with no event), so a version between the two
that arrives after it is older.

One more guard: a time that is no longer booked (cancelled, attended, no-show, entered in error)
is never made booked again by the source; that version is counted as an older one and named in a
warning. Versions do not make this redundant: a source that sends no meta cannot be ordered, and a
time cancelled or marked in Varde (by the patient or staff) was changed after the source's
latest version, which the source never hears of, so its next version still says booked.

Events (in the same transaction): a new booked time that has not started and is not old news →
``appointment_booked``. Old news, as for record items (RELEASE_EVENT_MAX_AGE_DAYS): the source made
the time (``created``, else ``meta.lastUpdated``) longer ago than that, so the patient has long known
of it (a history import). A stored booked time that moves (start or length) or is cancelled while
it is still ahead → ``appointment_changed``. Nothing for a time entered in error, a new place or a
new instruction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from app.appointments.models import Appointment, AppointmentStatus, Channel, Location, Mode, Schedule
from app.db import db
from app.fhir import mapping
from app.fhir.validate import BundleRefused, Issue
from app.notify import events
from app.people.models import CareUnit
from app.record.models import FhirClient

RESOURCE_TYPES = {"Appointment", "Schedule", "Slot"}
CHUNK = 500  # ids per lookup, as in ingest
DEFAULT_TITLE = "Time"
NOT_KEPT_STATUSES = {"proposed", "waitlist"}
ATTENDED_WHEN_PAST = {"arrived", "checked-in", "fulfilled"}
STATUS_WORDS = {
    AppointmentStatus.CANCELLED: "avlyst",
    AppointmentStatus.ATTENDED: "gjennomført",
    AppointmentStatus.NO_SHOW: "registrert som ikke møtt",
    AppointmentStatus.ENTERED_IN_ERROR: "feilregistrert",
}
VIDEO_CODES = {"vr", "video", "virtual", "virtuell"}
VIDEO_WORDS = ("video", "virtual", "virtuell")
PHONE_CODES = {"phone", "telephone", "telefon", "tel"}
PHONE_WORDS = ("telefon", "phone")


@dataclass
class PlannedAppointment:
    key: str
    source_id: str
    person_id: int
    values: dict[str, Any]  # the columns the source decides
    start_given: bool  # False: a cancellation of a stored time that came without a start
    news_at: datetime | None  # when the source made it (created, else meta.lastUpdated), if it says
    version: str | None  # meta.versionId
    updated: datetime | None  # meta.lastUpdated
    location: dict[str, Any] | None  # the Location resource found in the bundle
    location_referred: bool  # a Location participant was named (found in the bundle or not)
    cancel_reason: str | None
    existing: Appointment | None = None


@dataclass
class PlannedSchedule:
    key: str
    source_id: str
    values: dict[str, Any]
    location: dict[str, Any] | None
    location_referred: bool
    existing: Schedule | None = None


@dataclass
class Plan:
    appointments: list[PlannedAppointment] = field(default_factory=list)
    schedules: list[PlannedSchedule] = field(default_factory=list)


# -- Mapping (no writes) ---------------------------------------------------------------------


def _label(concept: dict[str, Any] | None) -> str | None:
    """A concept's text or display, never a bare code (a title like "FOLLOWUP" helps nobody)."""
    if not concept:
        return None
    if concept.get("text"):
        return concept["text"]
    return next((c["display"] for c in concept.get("coding") or [] if c.get("display")), None)


def _instant(value: Any) -> datetime | None:
    return mapping.parse_datetime(value) if isinstance(value, str) else None


def _actor_type(actor: dict[str, Any], res: mapping.Resolver) -> str | None:
    target = res.get(actor)
    if target is not None:
        return target["resourceType"]
    if actor.get("type"):
        return actor["type"]
    parts = (actor.get("reference") or "").split("/")
    return parts[-2] if len(parts) >= 2 else None


def _actors(resource: dict[str, Any], res: mapping.Resolver) -> list[tuple[str | None, dict[str, Any]]]:
    """(type, reference) of an Appointment's participants or a Schedule's actors."""
    if resource["resourceType"] == "Schedule":
        refs = list(resource.get("actor") or [])
    else:
        refs = [p["actor"] for p in resource.get("participant") or [] if p.get("actor")]
    return [(_actor_type(ref, res), ref) for ref in refs]


def mode_of(resource: dict[str, Any]) -> Mode:
    """Video or phone when a code or a word of the resource's kinds (or an extension) says so."""
    concepts = [
        *(resource.get("serviceCategory") or []),
        *(resource.get("serviceType") or []),
        resource.get("appointmentType") or {},
    ]
    codes: list[str] = []
    words: list[str] = []
    for concept in concepts:
        words.append(concept.get("text") or "")
        for coding in concept.get("coding") or []:
            codes.append(coding.get("code") or "")
            words.append(coding.get("display") or "")
    for ext in resource.get("extension") or []:
        codes.append(str(ext.get("valueCode") or (ext.get("valueCoding") or {}).get("code") or ""))
        words.append(str(ext.get("valueString") or (ext.get("valueCoding") or {}).get("display") or ""))
        concept = ext.get("valueCodeableConcept")
        if concept:
            words.append(concept.get("text") or "")
            codes.extend(c.get("code") or "" for c in concept.get("coding") or [])
    codes = [c.casefold() for c in codes]
    text = " ".join(words).casefold()
    if any(c in VIDEO_CODES for c in codes) or any(w in text for w in VIDEO_WORDS):
        return Mode.VIDEO
    if any(c in PHONE_CODES for c in codes) or any(w in text for w in PHONE_WORDS):
        return Mode.PHONE
    return Mode.IN_PERSON


def status_of(fhir_status: str, start: datetime | None, now: datetime) -> AppointmentStatus | None:
    """Varde's status for a FHIR Appointment.status; None for times Varde does not keep."""
    if fhir_status in NOT_KEPT_STATUSES:
        return None
    if fhir_status == "cancelled":
        return AppointmentStatus.CANCELLED
    if fhir_status == "noshow":
        return AppointmentStatus.NO_SHOW
    if fhir_status == "entered-in-error":
        return AppointmentStatus.ENTERED_IN_ERROR
    if fhir_status in ATTENDED_WHEN_PAST and start is not None and start <= now:
        return AppointmentStatus.ATTENDED
    return AppointmentStatus.BOOKED


class _CareUnits:
    """The organisation's care units by name (a name two units share names neither)."""

    def __init__(self, organisation_id: int) -> None:
        self.by_name: dict[str, int | None] = {}
        for unit_id, name in db.session.execute(
            select(CareUnit.id, CareUnit.name).where(CareUnit.organisation_id == organisation_id)
        ):
            key = name.strip().casefold()
            self.by_name[key] = None if key in self.by_name else unit_id

    def find(self, actors: list[tuple[str | None, dict[str, Any]]], res: mapping.Resolver) -> int | None:
        for wanted in ("HealthcareService", "Location"):
            for rtype, ref in actors:
                if rtype != wanted:
                    continue
                name = res.display(ref)
                unit_id = self.by_name.get(name.strip().casefold()) if name else None
                if unit_id is not None:
                    return unit_id
        return None


def _place(actors: list[tuple[str | None, dict[str, Any]]], res: mapping.Resolver) -> tuple[dict | None, bool]:
    """(the participant Location resource if it is in the bundle, whether a Location was named)."""
    referred = False
    for rtype, ref in actors:
        if rtype == "Location":
            referred = True
            target = res.get(ref)
            if target is not None:
                return target, True
    return None, referred


def _practitioner(actors: list[tuple[str | None, dict[str, Any]]], res: mapping.Resolver) -> str | None:
    for rtype, ref in actors:
        if rtype in ("Practitioner", "PractitionerRole"):
            name = res.display(ref)
            if name:
                return name[:200]
    return None


def _appointment(
    r: dict[str, Any],
    res: mapping.Resolver,
    resolve_patient: Callable[[str | None], int | None],
    units: _CareUnits,
    now: datetime,
    result: Any,
    errors: list[Issue],
) -> PlannedAppointment | None:
    key = f"Appointment/{r.get('id')}"
    start = _instant(r.get("start"))
    status = status_of(r["status"], start, now)
    if status is None:
        result.not_kept["Appointment"] += 1
        return None
    if not r.get("id"):
        errors.append(Issue("error", "required", f"{key}: ressursen mangler id.", ["Appointment"]))
        return None
    actors = _actors(r, res)
    patient_refs = {ref.get("reference") for rtype, ref in actors if rtype == "Patient"}
    if len(patient_refs) > 1:
        result.not_kept["Appointment"] += 1
        result.warnings.append(
            Issue(
                "warning",
                "not-supported",
                f"{key}: timen gjelder flere pasienter. Varde lagrer bare timer for én pasient, "
                "så denne ble ikke lagret.",
                ["Appointment.participant"],
            )
        )
        return None
    patient_ref = next(iter(patient_refs), None)
    person_id = resolve_patient(patient_ref)
    if person_id is None:
        errors.append(
            Issue(
                "error",
                "not-found",
                f"{key}: pasienten {patient_ref or '(mangler)'} er ukjent for Varde.",
                ["Appointment.participant.actor"],
            )
        )
        return None

    problems: list[Issue] = []
    start_given = True
    minutes = 0
    if r.get("start") is None:
        if status is AppointmentStatus.CANCELLED:
            start_given = False  # a cancellation: kept only for a time stored before (see apply)
        else:
            problems.append(
                Issue(
                    "error",
                    "required",
                    f"{key}: timen mangler starttidspunkt (Appointment.start). "
                    "Bare foreslåtte, avlyste timer og timer på venteliste kan mangle tid.",
                    ["Appointment.start"],
                )
            )
    elif start is None:
        problems.append(
            Issue(
                "error",
                "invalid",
                f"{key}: starttidspunktet {str(r['start'])[:60]!r} er ikke et gyldig tidspunkt.",
                ["Appointment.start"],
            )
        )
    if start is not None:
        end = _instant(r.get("end"))
        if r.get("end") is not None and end is None:
            problems.append(
                Issue(
                    "error",
                    "invalid",
                    f"{key}: sluttidspunktet {str(r['end'])[:60]!r} er ikke et gyldig tidspunkt.",
                    ["Appointment.end"],
                )
            )
        elif end is not None:
            seconds = (end - start).total_seconds()
            if seconds <= 0:
                problems.append(
                    Issue(
                        "error",
                        "invalid",
                        f"{key}: timen slutter ({r['end']}) før den begynner ({r['start']}).",
                        ["Appointment.end"],
                    )
                )
            minutes = max(1, round(seconds / 60))
        elif isinstance(r.get("minutesDuration"), int) and r["minutesDuration"] > 0:
            minutes = r["minutesDuration"]
        else:
            problems.append(
                Issue(
                    "error",
                    "required",
                    f"{key}: timen mangler sluttidspunkt (Appointment.end) eller varighet (minutesDuration).",
                    ["Appointment.end"],
                )
            )
    if problems:
        errors.extend(problems)
        return None

    service_types = r.get("serviceType") or []
    title = (
        next((t for t in (_label(c) for c in service_types) if t), None)
        or _label(r.get("appointmentType"))
        or (r.get("description") or "").strip()
        or DEFAULT_TITLE
    )
    location, location_referred = _place(actors, res)
    values: dict[str, Any] = {
        "care_unit_id": units.find(actors, res),
        "title": title[:200],
        "mode": mode_of(r),
        "practitioner": _practitioner(actors, res),
        "preparation": (r.get("patientInstruction") or "").strip() or None,
        "status": status,
    }
    if start_given:
        values["start"] = start
        values["minutes"] = minutes
    from app.fhir.ingest import _version_key  # ingest imports this module

    version, updated = _version_key(r)
    values["source_version"], values["source_updated_at"] = version, updated
    made = _instant(r.get("created")) or updated
    reason = mapping.concept_text(r.get("cancelationReason")) if status is AppointmentStatus.CANCELLED else None
    return PlannedAppointment(
        key=key,
        source_id=r["id"],
        person_id=person_id,
        values=values,
        start_given=start_given,
        news_at=made,
        version=version,
        updated=updated,
        location=location,
        location_referred=location_referred,
        cancel_reason=(reason or "").strip()[:300] or None,
    )


def _schedule(
    r: dict[str, Any], res: mapping.Resolver, units: _CareUnits, result: Any, errors: list[Issue], org_name: str
) -> PlannedSchedule | None:
    key = f"Schedule/{r.get('id')}"
    actors = _actors(r, res)
    unit_id = units.find(actors, res)
    if unit_id is None:
        result.not_kept["Schedule"] += 1
        result.warnings.append(
            Issue(
                "information",
                "informational",
                f"{key}: ingen av aktørene er navnet på en enhet i {org_name}, så timeboken ble ikke lagret.",
                ["Schedule.actor"],
            )
        )
        return None
    if not r.get("id"):
        errors.append(Issue("error", "required", f"{key}: ressursen mangler id.", ["Schedule"]))
        return None
    unit_name = next(
        (res.display(ref) for rtype, ref in actors if rtype in ("HealthcareService", "Location") and res.display(ref)),
        None,
    )
    name = (
        next((t for t in (_label(c) for c in r.get("serviceType") or []) if t), None)
        or next((t for t in (_label(c) for c in r.get("specialty") or []) if t), None)
        or unit_name
        or (r.get("comment") or "").strip()
        or "Timebok"
    )
    location, location_referred = _place(actors, res)
    return PlannedSchedule(
        key=key,
        source_id=r["id"],
        values={
            "care_unit_id": unit_id,
            "name": name[:200],
            "practitioner": _practitioner(actors, res),
            "active": r.get("active") is not False,
        },
        location=location,
        location_referred=location_referred,
    )


def _stored(model: type[Appointment] | type[Schedule], source_system: str, ids: set[str]) -> dict:
    """The rows this source sent before under these ids, locked until the bundle commits, by id
    (Schedule has no unique key: the first one)."""
    found: dict = {}
    wanted = sorted(ids)
    for at in range(0, len(wanted), CHUNK):
        for row in db.session.scalars(
            select(model)
            .where(model.source_system == source_system, model.source_id.in_(wanted[at : at + CHUNK]))
            .order_by(model.id)
            .with_for_update()
        ):
            found.setdefault(row.source_id, row)
    return found


def prepare(
    resources: list[dict[str, Any]],
    res: mapping.Resolver,
    resolve_patient: Callable[[str | None], int | None],
    client: FhirClient,
    now: datetime,
    result: Any,
    errors: list[Issue],
) -> Plan:
    """Map and check the bundle's Appointment, Schedule and Slot resources, writing nothing.

    Problems go into ``errors`` (the caller refuses the bundle with all of them); a stored time
    that belongs to another patient refuses it at once (409). Rows stored before are locked.
    """
    plan = Plan()
    if not resources:
        return plan
    units = _CareUnits(client.organisation_id)
    for r in resources:
        rtype = r["resourceType"]
        if rtype == "Appointment":
            planned = _appointment(r, res, resolve_patient, units, now, result, errors)
            if planned is not None:
                plan.appointments.append(planned)
        elif rtype == "Schedule":
            schedule = _schedule(r, res, units, result, errors, client.organisation.name)
            if schedule is not None:
                plan.schedules.append(schedule)
        else:  # Slot: see the module's docstring
            result.not_kept[rtype] += 1
    if errors:
        return plan

    if plan.appointments:
        stored = _stored(Appointment, client.source_system, {p.source_id for p in plan.appointments})
        for p in plan.appointments:
            p.existing = stored.get(p.source_id)
            if p.existing is not None and p.existing.person_id != p.person_id:
                raise BundleRefused(
                    409,
                    [Issue("error", "conflict", f"{p.key} tilhører en annen pasient i Varde og kan ikke flyttes.")],
                )
            if p.existing is None and not p.start_given:
                # A cancellation of a time Varde never had, and no time to show: nothing to keep.
                result.not_kept["Appointment"] += 1
        plan.appointments = [p for p in plan.appointments if p.existing is not None or p.start_given]
    if plan.schedules:
        stored_schedules = _stored(Schedule, client.source_system, {p.source_id for p in plan.schedules})
        for ps in plan.schedules:
            ps.existing = stored_schedules.get(ps.source_id)
    return plan


# -- Writing ---------------------------------------------------------------------------------


class _Places:
    """Locations of one organisation found (or made) by name and address, once per bundle."""

    def __init__(self, organisation_id: int) -> None:
        self.organisation_id = organisation_id
        self.known: dict[tuple[str, str | None], int] = {}

    def id_for(self, loc: dict[str, Any]) -> int | None:
        address = loc.get("address") or {}
        street = ", ".join(line for line in address.get("line") or [] if line).strip() or None
        if street is None and address.get("text"):
            street = address["text"].strip() or None
        name = ((loc.get("name") or "").strip() or street or "")[:200]
        if not name:
            return None
        street = street[:200] if street else None
        key = (name, street)
        if key in self.known:
            return self.known[key]
        query = select(Location.id).where(Location.organisation_id == self.organisation_id, Location.name == name)
        query = query.where(Location.address == street if street else Location.address.is_(None))
        location_id = db.session.scalar(query.order_by(Location.id).limit(1))
        if location_id is None:
            position = loc.get("position") or {}
            phone = next((t.get("value") for t in loc.get("telecom") or [] if t.get("system") == "phone"), None)
            location = Location(
                organisation_id=self.organisation_id,
                name=name,
                address=street,
                postal_code=(address.get("postalCode") or None) and address["postalCode"][:10],
                city=(address.get("city") or None) and address["city"][:100],
                latitude=float(position["latitude"]) if position.get("latitude") is not None else None,
                longitude=float(position["longitude"]) if position.get("longitude") is not None else None,
                phone=phone[:30] if phone else None,
            )
            db.session.add(location)
            db.session.flush()
            location_id = location.id
        self.known[key] = location_id
        return location_id


def _location_id(places: _Places, location: dict | None, referred: bool, stored: int | None) -> int | None:
    """The place: the bundle's Location; the stored one when the Location is named but not sent."""
    if location is not None:
        found = places.id_for(location)
        if found is not None:
            return found
    return stored if referred else None


def apply(plan: Plan, client: FhirClient, now: datetime, news_horizon: datetime, result: Any) -> None:
    """Write the planned rows and their events, in the caller's transaction."""
    if not plan.appointments and not plan.schedules:
        return
    from app.fhir.ingest import _is_older  # ingest imports this module

    places = _Places(client.organisation_id)
    _apply_schedules(plan.schedules, places, client, result)
    changes: list[events.Change] = []
    created: list[Appointment] = []
    for p in plan.appointments:
        old = p.existing
        if old is not None and _is_older(p.version, p.updated, old.source_version, old.source_updated_at):
            result.stale += 1  # before the place: an older version makes no Location either
            continue
        values = dict(p.values)
        values["location_id"] = _location_id(
            places, p.location, p.location_referred, old.location_id if old is not None else None
        )
        if p.cancel_reason is not None:
            values["cancel_reason"] = p.cancel_reason
        status = values["status"]
        if old is None:
            appointment = Appointment(
                person_id=p.person_id,
                organisation_id=client.organisation_id,
                booked_via=Channel.SOURCE,
                source_system=client.source_system,
                source_id=p.source_id,
                created_at=now,
                updated_at=now,
                **values,
            )
            if status is AppointmentStatus.CANCELLED:
                appointment.cancelled_at, appointment.cancelled_via = now, Channel.SOURCE
            if status in (AppointmentStatus.ATTENDED, AppointmentStatus.NO_SHOW):
                appointment.marked_at = now
            db.session.add(appointment)
            result.created += 1
            if (
                status is AppointmentStatus.BOOKED
                and appointment.start > now
                and (p.news_at is None or p.news_at >= news_horizon)
            ):
                created.append(appointment)
            continue
        if old.status is not AppointmentStatus.BOOKED and status is AppointmentStatus.BOOKED:
            result.stale += 1
            result.warnings.append(
                Issue(
                    "warning",
                    "business-rule",
                    f"{p.key}: timen er {STATUS_WORDS[old.status]} i Varde og gjøres ikke om til en bestilt "
                    "time igjen (en eldre versjon, eller endret i Varde?). Send en ny time med ny id om den "
                    "skal gjelde.",
                    [p.key],
                )
            )
            continue
        changed = {k: v for k, v in values.items() if getattr(old, k) != v}
        if not changed:
            result.unchanged += 1
            continue
        was_booked, old_start, old_minutes = old.status is AppointmentStatus.BOOKED, old.start, old.minutes
        for column, value in changed.items():
            setattr(old, column, value)
        if "status" in changed:
            if status is AppointmentStatus.CANCELLED:
                old.cancelled_at, old.cancelled_via, old.cancelled_by_user_id = now, Channel.SOURCE, None
            if status in (AppointmentStatus.ATTENDED, AppointmentStatus.NO_SHOW):
                old.marked_at = now
            if was_booked:
                from app.appointments import offers

                offers.end_waiting_for(old, now)  # its waiting-list entry and offers end with it
        result.updated += 1
        moved = old.start != old_start or old.minutes != old_minutes
        if was_booked and (
            (status is AppointmentStatus.CANCELLED and old_start > now)
            or (status is AppointmentStatus.BOOKED and moved and max(old.start, old_start) > now)
        ):
            changes.append(_change(old, "appointment_changed"))
    if created:
        db.session.flush()  # their ids, for the events
        changes = [_change(a, "appointment_booked") for a in created] + changes
    if changes:
        events.emit_many(changes)


def _change(appointment: Appointment, kind: str) -> events.Change:
    return events.Change(
        appointment.person_id,
        kind,
        object_type="appointment",
        object_id=appointment.id,
        url=f"/timer/{appointment.id}",
    )


def _apply_schedules(planned: list[PlannedSchedule], places: _Places, client: FhirClient, result: Any) -> None:
    for ps in planned:
        old = ps.existing
        values = dict(ps.values)
        values["location_id"] = _location_id(
            places, ps.location, ps.location_referred, old.location_id if old is not None else None
        )
        if old is None:
            db.session.add(Schedule(source_system=client.source_system, source_id=ps.source_id, **values))
            result.created += 1
            continue
        changed = {k: v for k, v in values.items() if getattr(old, k) != v}
        if not changed:
            result.unchanged += 1
            continue
        for column, value in changed.items():
            setattr(old, column, value)
        result.updated += 1
