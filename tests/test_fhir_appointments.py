"""FHIR Appointment in: a hospital system's times become the patient's times in Varde, all or
nothing per bundle, idempotent, and the patient hears of a new or changed time (never of history)."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from app import clock
from app.appointments.models import Appointment, AppointmentStatus, Channel, Location, Mode, Schedule, Slot
from app.db import db
from app.fhir.ingest import import_bundle
from app.fhir.validate import BundleRefused
from app.notify.models import Event
from app.people.models import PersonIdentifier
from app.people.nin import SYSTEM_FNR
from app.record.models import RecordItem
from tests import factories

OSLO = ZoneInfo("Europe/Oslo")


def _when(days: float, hour: int = 9) -> datetime:
    """A whole minute, ``days`` from now, in Norwegian wall time (as a source system writes it)."""
    moment = (clock.utcnow() + timedelta(days=days)).astimezone(OSLO)
    return moment.replace(hour=hour, minute=30, second=0, microsecond=0)


def _patient(person, pid: str = "pas-1") -> dict:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": SYSTEM_FNR, "value": person.national_id}],
        "name": [{"family": person.family_name, "given": [person.given_name]}],
    }


def _practitioner() -> dict:
    return {
        "resourceType": "Practitioner",
        "id": "lege-7",
        "name": [{"prefix": ["Dr."], "given": ["Marte"], "family": "Lund"}],
    }


def _location(name: str = "Gastrosenteret", street: str = "Prinsesse Kristinas gate 1") -> dict:
    return {
        "resourceType": "Location",
        "id": "sted-" + name.lower().replace(" ", "-"),
        "name": name,
        "address": {"line": [street], "postalCode": "7030", "city": "Trondheim"},
        "telecom": [{"system": "phone", "value": "72 57 30 00"}],
        "position": {"latitude": 63.4217, "longitude": 10.3894},
    }


def _appointment(
    aid: str = "time-1",
    start: datetime | None = None,
    minutes: int = 45,
    status: str = "booked",
    patient: str = "Patient/pas-1",
    location: str | None = "Location/sted-gastrosenteret",
    **extra,
) -> dict:
    start = start or _when(7)
    resource = {
        "resourceType": "Appointment",
        "id": aid,
        "meta": {"versionId": "1"},
        "status": status,
        "serviceType": [{"text": "Kontroll hos gastrolege"}],
        "appointmentType": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0276", "code": "FOLLOWUP"}]
        },
        "description": "Oppfølging etter koloskopi",
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=minutes)).isoformat(),
        "patientInstruction": "Ta med medisinlisten din. Møt 15 minutter før.",
        "participant": [
            {"actor": {"reference": patient}, "status": "accepted"},
            {"actor": {"reference": "Practitioner/lege-7"}, "status": "accepted"},
            {
                "actor": {"reference": "HealthcareService/medpol", "display": "Medisinsk poliklinikk"},
                "status": "accepted",
            },
        ],
    }
    if location:
        resource["participant"].append({"actor": {"reference": location}, "status": "accepted"})
    resource.update(extra)
    return resource


def _bundle(*resources: dict) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{r['resourceType'].lower()}-{r['id']}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ],
    }


def _full(person, *appointments: dict) -> dict:
    """A bundle as a source sends it: the patient, the doctor, the place and the times."""
    return _bundle(_patient(person), _practitioner(), _location(), *appointments)


def _import(bundle: dict, source):  # type: ignore[no-untyped-def]
    return import_bundle(copy.deepcopy(bundle), source)


def _post(client, token, body):  # type: ignore[no-untyped-def]
    return client.post(
        "/fhir",
        data=json.dumps(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
    )


def _only() -> Appointment:
    db.session.expire_all()
    return db.session.scalars(select(Appointment)).one()


def _events(kind: str | None = None) -> list[Event]:
    query = select(Event).order_by(Event.id)
    if kind:
        query = query.where(Event.kind == kind)
    return list(db.session.scalars(query))


def _count(model) -> int:  # type: ignore[no-untyped-def]
    return db.session.scalar(select(func.count()).select_from(model))


def test_a_new_appointment_is_stored_with_all_its_fields_and_the_patient_hears_of_it(
    client, login_as, kari, org, source_token
):
    source, token = source_token
    start = _when(7)
    response = _post(client, token, _full(kari.person, _appointment(start=start)))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "1 nye" in response.get_json()["issue"][0]["diagnostics"]

    appointment = _only()
    assert appointment.person_id == kari.person.id
    assert appointment.organisation_id == org.id
    assert appointment.care_unit_id == org.care_units[0].id  # "Medisinsk poliklinikk", by name
    assert appointment.title == "Kontroll hos gastrolege"
    assert appointment.start == start and appointment.minutes == 45
    assert appointment.mode is Mode.IN_PERSON
    assert appointment.practitioner == "Dr. Marte Lund"
    assert appointment.preparation == "Ta med medisinlisten din. Møt 15 minutter før."
    assert appointment.status is AppointmentStatus.BOOKED
    assert appointment.booked_via is Channel.SOURCE
    assert (appointment.source_system, appointment.source_id) == (source.source_system, "time-1")
    assert appointment.slot_id is None and appointment.visit_type_id is None and appointment.cancelled_at is None
    place = appointment.location
    assert (place.organisation_id, place.name, place.address, place.postal_code, place.city) == (
        org.id,
        "Gastrosenteret",
        "Prinsesse Kristinas gate 1",
        "7030",
        "Trondheim",
    )
    assert place.phone == "72 57 30 00" and round(place.latitude, 4) == 63.4217
    # Times are not record items.
    assert _count(RecordItem) == 0

    (event,) = _events()
    assert (event.person_id, event.kind, event.object_type, event.object_id, event.url) == (
        kari.person.id,
        "appointment_booked",
        "appointment",
        appointment.id,
        f"/timer/{appointment.id}",
    )
    # Where the notification leads: the patient's own page of the time.
    login_as(kari)
    page = client.get(f"/timer/{appointment.id}")
    assert page.status_code == 200
    assert "Kontroll hos gastrolege" in page.get_data(as_text=True)


def test_resending_the_same_bundle_changes_nothing(kari, source):
    bundle = _full(kari.person, _appointment("time-1"), _appointment("time-2", start=_when(9)))
    first = _import(bundle, source)
    before = db.session.execute(select(Appointment.__table__).order_by(Appointment.id)).all()
    events = len(_events())
    second = _import(bundle, source)
    assert (first.created, second.created, second.updated, second.unchanged) == (2, 0, 0, 2)
    db.session.expire_all()
    assert db.session.execute(select(Appointment.__table__).order_by(Appointment.id)).all() == before
    assert _count(Location) == 1  # the place is found again, not made twice
    assert len(_events()) == events == 2


def test_a_newer_version_moves_the_time_and_the_patient_is_told(kari, source):
    first = _appointment()
    _import(_full(kari.person, first), source)
    appointment_id = _only().id

    moved = _appointment(start=_when(10, hour=13), minutes=30, meta={"versionId": "2"})
    moved["participant"][-1] = {"actor": {"reference": "Location/sted-st.-olavs-hovedinngang"}, "status": "accepted"}
    result = _import(
        _bundle(
            _patient(kari.person), _practitioner(), _location("St. Olavs hovedinngang", "Olav Kyrres gate 17"), moved
        ),
        source,
    )
    assert (result.created, result.updated) == (0, 1)
    appointment = _only()
    assert appointment.id == appointment_id
    assert appointment.start == _when(10, hour=13) and appointment.minutes == 30
    assert appointment.location.name == "St. Olavs hovedinngang"
    assert appointment.status is AppointmentStatus.BOOKED
    changed = _events("appointment_changed")
    assert [(e.person_id, e.object_id, e.url) for e in changed] == [
        (kari.person.id, appointment_id, f"/timer/{appointment_id}")
    ]


def test_a_new_version_that_only_names_its_place_keeps_the_place(kari, source):
    _import(_full(kari.person, _appointment()), source)
    place = _only().location_id
    # The next version refers to the same Location without sending it again.
    result = _import(
        _bundle(_patient(kari.person), _practitioner(), _appointment(patientInstruction="Faste fra midnatt.")), source
    )
    assert result.updated == 1
    appointment = _only()
    assert appointment.location_id == place and appointment.preparation == "Faste fra midnatt."
    assert _events("appointment_changed") == []  # a new instruction is not a new time


def test_a_cancellation_from_the_source(kari, source):
    _import(_full(kari.person, _appointment()), source)
    cancelled = _appointment(status="cancelled", cancelationReason={"text": "Legen er syk"}, meta={"versionId": "2"})
    result = _import(_full(kari.person, cancelled), source)
    assert result.updated == 1
    appointment = _only()
    assert appointment.status is AppointmentStatus.CANCELLED
    assert appointment.cancelled_via is Channel.SOURCE and appointment.cancelled_at is not None
    assert appointment.cancel_reason == "Legen er syk"
    assert [e.object_id for e in _events("appointment_changed")] == [appointment.id]

    # The booked version arriving late is older, and does not bring the time back.
    late = _import(_full(kari.person, _appointment()), source)
    assert (late.stale, late.updated, late.warnings) == (1, 0, [])
    assert _only().status is AppointmentStatus.CANCELLED
    assert len(_events("appointment_changed")) == 1


@pytest.mark.parametrize("meta", [{"versionId": "3"}, None], ids=["newer-version", "no-version"])
def test_the_source_never_makes_a_cancelled_time_booked_again(kari, source, meta):
    # Versions alone would not stop it: a newer version, or one from a source that sends none.
    cancelled = _appointment(status="cancelled", meta={"versionId": "2"})
    booked = _appointment(meta=meta) if meta else _appointment()
    if meta is None:
        del cancelled["meta"], booked["meta"]
    _import(_full(kari.person, cancelled), source)
    result = _import(_full(kari.person, booked), source)
    assert (result.stale, result.updated) == (1, 0)
    assert any("avlyst i Varde" in w.diagnostics for w in result.warnings)
    appointment = _only()
    assert appointment.status is AppointmentStatus.CANCELLED
    assert appointment.source_version == cancelled.get("meta", {}).get("versionId")
    assert _events() == []


def test_a_time_the_patient_cancelled_in_varde_stays_cancelled(kari, source):
    from app.appointments.services import cancel_by_patient

    _import(_full(kari.person, _appointment()), source)
    cancel_by_patient(kari, _only(), clock.utcnow())
    db.session.commit()
    # The source never hears of it, so its next version still says booked.
    result = _import(_full(kari.person, _appointment(meta={"versionId": "2"})), source)
    assert (result.stale, result.updated) == (1, 0)
    assert any("avlyst i Varde" in w.diagnostics for w in result.warnings)
    appointment = _only()
    assert appointment.status is AppointmentStatus.CANCELLED and appointment.cancelled_via is Channel.PATIENT


def test_an_older_version_after_a_newer_one_changes_nothing(kari, source):
    _import(_full(kari.person, _appointment()), source)
    _import(_full(kari.person, _appointment(start=_when(10), meta={"versionId": "3"})), source)
    db.session.expire_all()
    before = db.session.execute(select(Appointment.__table__)).all()
    events = [(e.kind, e.object_id) for e in _events()]
    places = _count(Location)
    assert [kind for kind, _id in events] == ["appointment_booked", "appointment_changed"]

    # Version 2 arrives late: another time, another place, then a cancellation. None of it counts.
    moved = _appointment(start=_when(12, hour=13), location="Location/sted-annet-sted", meta={"versionId": "2"})
    cancelled = _appointment(status="cancelled", cancelationReason={"text": "Flyttet"}, meta={"versionId": "2"})
    for late in (
        _bundle(_patient(kari.person), _practitioner(), _location("Annet sted", "Elgeseter gate 10"), moved),
        _full(kari.person, cancelled),
    ):
        result = _import(late, source)
        assert (result.stale, result.created, result.updated, result.unchanged) == (1, 0, 0, 0)
        assert result.warnings == []
        db.session.expire_all()
        assert db.session.execute(select(Appointment.__table__)).all() == before
        assert [(e.kind, e.object_id) for e in _events()] == events
        assert _count(Location) == places  # not even the older version's place is made
    appointment = _only()
    assert (appointment.source_version, appointment.start) == ("3", _when(10))


def test_the_same_version_sent_again_is_unchanged(kari, source):
    updated = (clock.utcnow() - timedelta(hours=1)).replace(microsecond=0)
    meta = {"versionId": "4", "lastUpdated": updated.astimezone(OSLO).isoformat()}
    _import(_full(kari.person, _appointment(meta=meta)), source)
    appointment = _only()
    assert (appointment.source_version, appointment.source_updated_at) == ("4", updated)
    db.session.expire_all()
    before = db.session.execute(select(Appointment.__table__)).all()
    again = _import(_full(kari.person, _appointment(meta=dict(meta))), source)
    assert (again.unchanged, again.updated, again.stale) == (1, 0, 0)
    db.session.expire_all()
    assert db.session.execute(select(Appointment.__table__)).all() == before
    assert [e.kind for e in _events()] == ["appointment_booked"]


def test_without_a_version_id_the_last_updated_time_decides(kari, source):
    now = clock.utcnow().replace(microsecond=0)
    first, second, between = (now - timedelta(hours=h) for h in (2, 1, 1.5))

    _import(_full(kari.person, _appointment(meta={"lastUpdated": first.isoformat()})), source)
    appointment_id = _only().id
    newer = _import(_full(kari.person, _appointment(start=_when(9), meta={"lastUpdated": second.isoformat()})), source)
    assert (newer.updated, newer.stale) == (1, 0)
    appointment = _only()
    assert (appointment.start, appointment.source_version, appointment.source_updated_at) == (_when(9), None, second)
    assert [e.object_id for e in _events("appointment_changed")] == [appointment_id]

    # One updated before the stored one is older, and changes nothing.
    older_version = _appointment(start=_when(11), meta={"lastUpdated": between.isoformat()})
    older = _import(_full(kari.person, older_version), source)
    assert (older.stale, older.updated) == (1, 0)
    assert (_only().start, _only().source_updated_at) == (_when(9), second)
    assert len(_events("appointment_changed")) == 1


def test_a_newer_version_with_the_same_values_records_its_version(kari, source):
    _import(_full(kari.person, _appointment()), source)
    result = _import(_full(kari.person, _appointment(meta={"versionId": "5"})), source)
    assert result.updated == 1 and _only().source_version == "5"
    assert [e.kind for e in _events()] == ["appointment_booked"]
    # So version 3, sent after it, is older.
    late = _import(_full(kari.person, _appointment(start=_when(12), meta={"versionId": "3"})), source)
    assert late.stale == 1 and _only().start == _when(7)


def test_a_cancellation_without_a_time_cancels_the_stored_time(kari, source):
    _import(_full(kari.person, _appointment()), source)
    start = _only().start
    cancelled = _appointment(status="cancelled", meta={"versionId": "2"})
    del cancelled["start"], cancelled["end"]
    _import(_full(kari.person, cancelled), source)
    appointment = _only()
    assert appointment.status is AppointmentStatus.CANCELLED and appointment.start == start
    # Of a time Varde never had, there is nothing to keep.
    other = copy.deepcopy(cancelled)
    other["id"] = "time-never-seen"
    result = _import(_full(kari.person, other), source)
    assert result.not_kept["Appointment"] == 1 and _count(Appointment) == 1


def test_an_appointment_entered_in_error_is_withdrawn_quietly(kari, source):
    _import(_full(kari.person, _appointment()), source)
    _import(_full(kari.person, _appointment(status="entered-in-error", meta={"versionId": "2"})), source)
    appointment = _only()
    assert appointment.status is AppointmentStatus.ENTERED_IN_ERROR
    assert appointment.cancelled_at is None
    assert [e.kind for e in _events()] == ["appointment_booked"]


@pytest.mark.parametrize(
    ("status", "days", "extra", "expected"),
    [
        ("fulfilled", -30, {}, AppointmentStatus.ATTENDED),
        ("booked", -400, {}, AppointmentStatus.BOOKED),
        ("noshow", -2, {}, AppointmentStatus.NO_SHOW),
        # Ahead, but made long ago: the patient has known of it for a year (a history import).
        ("booked", 20, {"created": "2020-01-15T10:00:00+01:00"}, AppointmentStatus.BOOKED),
        ("booked", 20, {"meta": {"versionId": "3", "lastUpdated": "2021-06-01T08:00:00Z"}}, AppointmentStatus.BOOKED),
    ],
)
def test_a_past_appointment_or_old_news_creates_no_event(kari, source, status, days, extra, expected):
    result = _import(_full(kari.person, _appointment(start=_when(days), status=status, **extra)), source)
    assert result.created == 1
    appointment = _only()
    assert appointment.status is expected
    assert (appointment.marked_at is not None) == (expected in (AppointmentStatus.ATTENDED, AppointmentStatus.NO_SHOW))
    assert _events() == []


def test_references_by_full_url_find_the_patient_and_the_place(kari, source):
    appointment = _appointment(patient="urn:uuid:patient-pas-1", location="urn:uuid:location-sted-gastrosenteret")
    _import(_full(kari.person, appointment), source)
    stored = _only()
    assert stored.person_id == kari.person.id and stored.location.name == "Gastrosenteret"


def test_a_past_appointment_that_moves_is_not_news_either(kari, source):
    _import(_full(kari.person, _appointment(start=_when(-10))), source)
    _import(_full(kari.person, _appointment(start=_when(-9), meta={"versionId": "2"})), source)
    assert _only().start == _when(-9)
    assert _events() == []


def _missing_start(b: dict) -> None:
    del b["entry"][-1]["resource"]["start"]


def _missing_end(b: dict) -> None:
    del b["entry"][-1]["resource"]["end"]


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (_missing_start, "mangler starttidspunkt"),
        (_missing_end, "mangler sluttidspunkt"),
        (lambda b: b["entry"][-1]["resource"].__setitem__("start", "2026-13-01T09:00:00Z"), "gyldig dato"),
        (lambda b: b["entry"][-1]["resource"].__setitem__("start", "2026-02-30T09:00:00+01:00"), "gyldig dato"),
        (lambda b: b["entry"][-1]["resource"].__setitem__("start", 1767225600), "ikke et gyldig tidspunkt"),
        (lambda b: b["entry"][-1]["resource"].__setitem__("end", b["entry"][-1]["resource"]["start"]), "slutter"),
        (lambda b: b["entry"][-1]["resource"]["participant"][0]["actor"].update(reference="Patient/ukjent"), "ukjent"),
        (lambda b: b["entry"][-1]["resource"]["participant"].pop(0), "(mangler)"),
        (lambda b: b["entry"][-1]["resource"].__setitem__("status", "avtalt"), "gyldig kode"),
    ],
)
def test_bad_input_refuses_the_whole_bundle_and_writes_nothing(client, kari, source_token, mutate, words):
    _source, token = source_token
    bundle = _full(kari.person, _appointment("time-ok"), _appointment("time-bad", start=_when(8)))
    mutate(bundle)
    response = _post(client, token, bundle)
    assert response.status_code == 422, response.get_data(as_text=True)
    diagnostics = " ".join(i["diagnostics"] for i in response.get_json()["issue"])
    assert words in diagnostics and "time-bad" in diagnostics
    assert _count(Appointment) == _count(Location) == _count(Event) == _count(PersonIdentifier) == 0


def test_a_time_that_belongs_to_another_patient_is_not_moved(kari, per, source):
    _import(_full(kari.person, _appointment()), source)
    with pytest.raises(BundleRefused) as refused:
        _import(_bundle(_patient(per.person, "pas-2"), _appointment(patient="Patient/pas-2")), source)
    assert refused.value.status == 409 and "annen pasient" in refused.value.issues[0].diagnostics
    assert _only().person_id == kari.person.id


@pytest.mark.parametrize(
    ("extra", "mode"),
    [
        ({"serviceCategory": [{"coding": [{"code": "VR"}]}]}, Mode.VIDEO),
        ({"serviceType": [{"text": "Videokonsultasjon"}]}, Mode.VIDEO),
        ({"serviceType": [{"text": "Telefonkonsultasjon"}]}, Mode.PHONE),
        ({"serviceType": [{"coding": [{"code": "S0208", "display": "Ortopedisk kirurgi"}]}]}, Mode.IN_PERSON),
    ],
)
def test_the_mode_follows_the_kind_of_time(kari, source, extra, mode):
    _import(_full(kari.person, _appointment(**extra)), source)
    assert _only().mode is mode


def test_the_title_and_length_fall_back_sensibly(kari, source):
    plain = _appointment(minutesDuration=20)
    del plain["serviceType"], plain["end"]
    _import(_full(kari.person, plain), source)
    appointment = _only()
    # The appointment type is only a code, so the description is the title.
    assert appointment.title == "Oppfølging etter koloskopi" and appointment.minutes == 20
    bare = _appointment("time-2", location=None)
    del bare["serviceType"], bare["description"]
    bare["participant"] = bare["participant"][:1]
    _import(_full(kari.person, bare), source)
    appointment = db.session.scalar(select(Appointment).where(Appointment.source_id == "time-2"))
    assert (appointment.title, appointment.location_id, appointment.care_unit_id, appointment.practitioner) == (
        "Time",
        None,
        None,
        None,
    )


def test_proposed_waitlist_slots_and_unknown_schedules_are_not_kept(kari, org, source):
    schedule = {
        "resourceType": "Schedule",
        "id": "bok-1",
        "actor": [
            {"reference": "HealthcareService/medpol", "display": "Medisinsk poliklinikk"},
            {"reference": "Practitioner/lege-7"},
        ],
        "serviceType": [{"text": "Gastroskopi"}],
    }
    elsewhere = {"resourceType": "Schedule", "id": "bok-2", "actor": [{"display": "Øre-nese-hals"}]}
    slot = {
        "resourceType": "Slot",
        "id": "luke-1",
        "schedule": {"reference": "Schedule/bok-1"},
        "status": "free",
        "start": _when(3).isoformat(),
        "end": _when(3, hour=10).isoformat(),
    }
    bundle = _full(
        kari.person,
        _appointment("time-p", status="proposed"),
        _appointment("time-w", status="waitlist"),
        schedule,
        elsewhere,
        slot,
    )
    result = _import(bundle, source)
    assert dict(result.not_kept) == {"Appointment": 2, "Schedule": 1, "Slot": 1, "Practitioner": 1, "Location": 1}
    assert _count(Appointment) == 0 and _count(Slot) == 0
    kept = db.session.scalars(select(Schedule)).one()
    assert (kept.care_unit_id, kept.name, kept.practitioner, kept.source_id) == (
        org.care_units[0].id,
        "Gastroskopi",
        "Dr. Marte Lund",
        "bok-1",
    )
    assert _import(bundle, source).unchanged == 1 and _count(Schedule) == 1


def test_the_cli_imports_times_too(app, tmp_path, kari, source):
    (tmp_path / "timer.json").write_text(json.dumps(_full(kari.person, _appointment())))
    result = app.test_cli_runner().invoke(args=["fhir", "import", str(tmp_path), "--source", source.source_system])
    assert result.exit_code == 0, result.output
    assert "1 nye" in result.output
    assert _only().title == "Kontroll hos gastrolege"


def test_a_second_source_keeps_its_own_times(kari, org, source):
    other, _token = factories.fhir_client(org, "stolav-timebok")
    _import(_full(kari.person, _appointment()), source)
    _import(_full(kari.person, _appointment()), other)  # the same id in another system: another time
    assert _count(Appointment) == 2
