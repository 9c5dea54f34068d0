"""The scheduling console: the day's list (audited per patient), attended / no-show, cancelling for
the patient (who hears of it, and the slot goes to those waiting), schedules and slots made from a
pattern (refused whole when any time is outside the opening hours), waiting-list priority, and a
slot's offer log. Staff see their own units only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.access.models import AuditEvent
from app.appointments.models import Appointment, AppointmentStatus, Offer, Schedule, Slot, WaitlistEntry
from app.auth.models import Role
from app.db import db
from app.notify.models import Event
from tests import factories
from tests.conftest import csrf_from


@pytest.fixture
def hearing(app):
    return factories.clinic()


@pytest.fixture
def clerk(app, hearing):
    user = factories.staff("merkantil.strand", "Tove Strand", Role.CLERK)
    factories.works_at(user, hearing.org)
    return user


def test_the_days_list_of_the_unit_with_an_audit_row_per_patient(client, login_as, clerk, kari, per, hearing):
    today_ten = factories.slot(hearing, days=0, hour=10)
    factories.booked(kari.person, today_ten)
    factories.booked(per.person, factories.slot(hearing, days=0, hour=11))
    factories.booked(factories.PersonFactory(given_name="Ikke", family_name="Idag"), factories.slot(hearing, days=1))
    login_as(clerk)
    page = client.get("/ansatt/timer").get_data(as_text=True)
    assert page.index("Kari Nordmann") < page.index("Per Hansen")
    assert "Ikke Idag" not in page
    audited = db.session.scalars(select(AuditEvent.subject_person_id).where(AuditEvent.action == "list_day")).all()
    assert sorted(audited) == sorted([kari.person_id, per.person_id])
    tomorrow = client.get(f"/ansatt/timer?dato={(factories.clock.today_in_norway() + timedelta(days=1)).isoformat()}")
    assert "Ikke Idag" in tomorrow.get_data(as_text=True)
    # Any day is one choice away (a date field), not a click per day.
    assert 'type="date" id="dato" name="dato"' in page


def test_staff_of_another_unit_see_nothing(client, login_as, kari, hearing, dr_berg):
    a = factories.booked(kari.person, factories.slot(hearing, days=2))
    factories.works_at(dr_berg, factories.hospital("Orkdal sjukehus"))
    login_as(dr_berg)
    assert "Kari Nordmann" not in client.get("/ansatt/timer").get_data(as_text=True)
    assert client.get(f"/ansatt/timer/{a.id}/avbestill").status_code == 404
    assert client.get(f"/ansatt/timer/kalendere/{hearing.schedule.id}").status_code == 404
    assert client.get(f"/ansatt/timer/tid/{a.slot_id}/tilbud").status_code == 404


def test_patients_cannot_reach_the_console(client, login_as, kari, hearing):
    login_as(kari)
    assert client.get("/ansatt/timer").status_code == 404


def test_attended_and_no_show_only_once_the_time_has_begun(client, login_as, clerk, kari, hearing, frozen_clock):
    a = factories.booked(kari.person, factories.slot(hearing, days=1, hour=10))
    login_as(clerk)
    token = csrf_from(client, "/ansatt/timer")
    early = client.post(f"/ansatt/timer/{a.id}/oppmote", data={"csrf_token": token, "utfall": "mott"})
    assert "for-tidlig" in early.headers["Location"]
    assert db.session.get(Appointment, a.id).status is AppointmentStatus.BOOKED
    frozen_clock.now = a.start + timedelta(minutes=5)
    login_as(clerk)
    token = csrf_from(client, "/ansatt/timer")
    client.post(f"/ansatt/timer/{a.id}/oppmote", data={"csrf_token": token, "utfall": "ikke-mott"})
    db.session.expire_all()
    assert db.session.get(Appointment, a.id).status is AppointmentStatus.NO_SHOW
    client.post(f"/ansatt/timer/{a.id}/oppmote", data={"csrf_token": token, "utfall": "mott"})
    db.session.expire_all()
    assert db.session.get(Appointment, a.id).status is AppointmentStatus.ATTENDED
    assert client.post(f"/ansatt/timer/{a.id}/oppmote", data={"csrf_token": token, "utfall": "x"}).status_code == 400


def test_cancelling_for_the_patient_tells_them_and_offers_the_slot(client, login_as, clerk, kari, hearing):
    a = factories.booked(kari.person, factories.slot(hearing, days=3))
    waiting = factories.booked(factories.PersonFactory(), factories.slot(hearing, days=30))
    factories.waiting(waiting)
    login_as(clerk)
    token = csrf_from(client, f"/ansatt/timer/{a.id}/avbestill")
    empty = client.post(f"/ansatt/timer/{a.id}/avbestill", data={"csrf_token": token, "reason": "  "})
    assert empty.status_code in (400, 409) and "Skriv hvorfor timen avbestilles" in empty.get_data(as_text=True)
    assert db.session.get(Appointment, a.id).status is AppointmentStatus.BOOKED
    done = client.post(f"/ansatt/timer/{a.id}/avbestill", data={"csrf_token": token, "reason": "Audiografen er syk"})
    assert done.status_code == 303
    db.session.expire_all()
    cancelled = db.session.get(Appointment, a.id)
    assert cancelled.status is AppointmentStatus.CANCELLED and cancelled.cancel_reason == "Audiografen er syk"
    assert cancelled.cancelled_by_user_id == clerk.id
    changed = db.session.scalar(select(Event).where(Event.kind == "appointment_changed"))
    assert changed.person_id == kari.person_id and changed.url == f"/timer/{a.id}"
    [offer] = db.session.scalars(select(Offer)).all()
    assert offer.slot_id == a.slot_id and offer.appointment_id == waiting.id
    log = client.get(f"/ansatt/timer/tid/{a.slot_id}/tilbud").get_data(as_text=True)
    assert "venter på svar" in log and "1.1" in log
    # Cancelled now: its cancel page says so instead of asking for a reason again.
    page = client.get(f"/ansatt/timer/{a.id}/avbestill").get_data(as_text=True)
    assert "Timen er allerede avbestilt eller over." in page and 'name="reason"' not in page


def test_a_schedule_and_its_slots(client, login_as, clerk, hearing):
    login_as(clerk)
    token = csrf_from(client, "/ansatt/timer/kalendere")

    def calendar(name: str, practitioner: str):  # type: ignore[no-untyped-def]
        """A calendar open Monday and Wednesday 08–12 at the clinic's place."""
        data = {
            "csrf_token": token,
            "name": name,
            "practitioner": practitioner,
            "location": str(hearing.location.id),
            "days": ["0", "2"],
            "opens": "08:00",
            "closes": "12:00",
        }
        return client.post("/ansatt/timer/kalendere", data=data)

    response = calendar("Audiograf 2", "Audiograf Per Li")
    assert response.status_code == 303
    schedule = db.session.scalar(select(Schedule).where(Schedule.name == "Audiograf 2"))
    assert [(h.weekday, str(h.opens), str(h.closes)) for h in schedule.hours] == [
        (0, "08:00:00", "12:00:00"),
        (2, "08:00:00", "12:00:00"),
    ]
    today = factories.clock.today_in_norway()
    monday = today + timedelta(days=7 - today.weekday())

    def make(**fields: str):  # type: ignore[no-untyped-def]
        data = {
            "csrf_token": token,
            "visit_type": str(hearing.visit_type.id),
            "first": monday.isoformat(),
            "last": (monday + timedelta(days=6)).isoformat(),
            "days": ["0", "2"],
            "start": "08:00",
            "end": "10:00",
            "minutes": "30",
            "mode": "in_person",
            **fields,
        }
        return client.post(f"/ansatt/timer/kalendere/{schedule.id}", data=data)

    outside = make(end="12:30")
    assert outside.status_code == 409 and "utenfor åpningstiden" in outside.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Slot).where(Slot.schedule_id == schedule.id)) == 0
    tuesday = make(days=["1"])
    assert tuesday.status_code == 409 and "utenfor åpningstiden" in tuesday.get_data(as_text=True)
    wrong_mode = make(mode="phone")
    assert wrong_mode.status_code == 409 and "kan ikke være telefon" in wrong_mode.get_data(as_text=True)
    for first, last in (("9999-12-31", "9999-12-31"), (monday.isoformat(), (today + timedelta(days=800)).isoformat())):
        too_far = make(first=first, last=last)
        assert too_far.status_code == 409 and "høyst to år fram i tid" in too_far.get_data(as_text=True)
    schedule.location_id = None  # "Ingen fast adresse (video/telefon)"
    db.session.commit()
    nowhere = make()
    assert nowhere.status_code == 409 and "Kalenderen har ingen adresse" in nowhere.get_data(as_text=True)
    schedule.location_id = hearing.location.id
    db.session.commit()
    bad_form = make(minutes="0", start="25:00")
    assert bad_form.status_code == 400 and "Skriv inn et klokkeslett" in bad_form.get_data(as_text=True)
    made = make()
    assert made.status_code == 303
    assert db.session.scalar(select(func.count()).select_from(Slot).where(Slot.schedule_id == schedule.id)) == 8
    again = make()
    assert again.status_code == 409 and "overlapper" in again.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Slot).where(Slot.schedule_id == schedule.id)) == 8
    page = client.get(made.headers["Location"]).get_data(as_text=True)
    assert "8 nye tider er laget" in page

    # A second calendar for the same practitioner cannot give them two patients at once.
    calendar("Audiograf 2 – ekstra", " Audiograf per Li ")
    second = db.session.scalar(select(Schedule).where(Schedule.name == "Audiograf 2 – ekstra"))
    schedule_id = schedule.id
    schedule = second
    clash = make()
    assert clash.status_code == 409 and "har Audiograf per Li allerede en tid i en annen kalender" in clash.get_data(
        as_text=True
    )
    assert db.session.scalar(select(func.count()).select_from(Slot).where(Slot.schedule_id == second.id)) == 0
    assert make(start="10:00", end="12:00").status_code == 303  # after the other calendar's times: fine
    assert db.session.scalar(select(func.count()).select_from(Slot).where(Slot.schedule_id == schedule_id)) == 8


def test_waiting_list_priority(client, login_as, clerk, kari, per, hearing):
    a = factories.booked(kari.person, factories.slot(hearing, days=30))
    first = factories.waiting(a, since_days=40)
    b = factories.booked(per.person, factories.slot(hearing, days=31))
    second = factories.waiting(b, since_days=5)
    login_as(clerk)
    page = client.get("/ansatt/timer/venteliste").get_data(as_text=True)
    assert page.index("Kari Nordmann") < page.index("Per Hansen")
    token = csrf_from(client, "/ansatt/timer/venteliste")
    client.post("/ansatt/timer/venteliste", data={"csrf_token": token, "entry": second.id, "priority": "3"})
    page = client.get("/ansatt/timer/venteliste").get_data(as_text=True)
    assert page.index("Per Hansen") < page.index("Kari Nordmann")
    bad = client.post("/ansatt/timer/venteliste", data={"csrf_token": token, "entry": first.id, "priority": "99"})
    assert "ugyldig" in bad.headers["Location"]
    assert db.session.get(WaitlistEntry, first.id).priority == 0
    assert (
        client.post(
            "/ansatt/timer/venteliste", data={"csrf_token": token, "entry": 424242, "priority": "1"}
        ).status_code
        == 404
    )


def test_a_free_time_is_taken_out_of_use_but_not_a_booked_or_offered_one(client, login_as, clerk, kari, per, hearing):
    from app.access.models import AuditEvent
    from app.appointments.models import SlotState

    free = factories.slot(hearing, days=4, hour=9)
    booked = factories.booked(per.person, factories.slot(hearing, days=4, hour=10)).slot
    offered = factories.slot(hearing, days=4, hour=11)
    offered.offered_until = factories.clock.utcnow() + timedelta(hours=1)
    db.session.commit()
    login_as(clerk)
    path = f"/ansatt/timer/kalendere/{hearing.schedule.id}"
    page = client.get(path).get_data(as_text=True)
    assert page.count("Ta ut av bruk") == 1 and f"/ansatt/timer/tid/{free.id}/ta-ut" in page
    token = csrf_from(client, path)
    response = client.post(f"/ansatt/timer/tid/{free.id}/ta-ut", data={"csrf_token": token})
    assert "ok=tatt-ut" in response.headers["Location"]
    assert "Tiden er tatt ut av bruk" in client.get(response.headers["Location"]).get_data(as_text=True)
    for slot in (booked, offered):
        refused = client.post(f"/ansatt/timer/tid/{slot.id}/ta-ut", data={"csrf_token": token})
        assert "ok=ikke-tatt-ut" in refused.headers["Location"]
    db.session.expire_all()
    states = [db.session.get(Slot, s.id).state for s in (free, booked, offered)]
    assert states == [SlotState.BLOCKED, SlotState.BOOKED, SlotState.FREE]
    assert db.session.scalar(select(func.count()).where(AuditEvent.action == "block_slot")) == 3
    # Patients no longer see it, nor can they book it.
    client.delete_cookie("__Host-varde")
    login_as(kari)
    times = client.get(f"/timer/bestill/{hearing.visit_type.id}").get_data(as_text=True)
    assert f"/timer/bestill/tid/{free.id}" not in times
    # Another unit's staff reach nothing.
    other = factories.staff("dr.annen", "Dr. Annen")
    client.delete_cookie("__Host-varde")
    login_as(other)
    assert (
        client.post(f"/ansatt/timer/tid/{free.id}/ta-ut", data={"csrf_token": csrf_from(client, "/")}).status_code
        == 404
    )
