"""The patient's times: the list from every organisation, one time in full, calendar file, cancel
(and its cut-off), move, self-booking with its age rules, and bad input that changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import func, select

from app.access.models import AuditEvent
from app.appointments.models import Appointment, AppointmentStatus, Slot, SlotState
from app.db import db
from app.notify.models import Event
from app.people.models import OrganisationKind
from tests import factories


@pytest.fixture
def hearing(app):
    return factories.clinic()


def count(model) -> int:  # type: ignore[no-untyped-def]
    return db.session.scalar(select(func.count()).select_from(model))


def post(client, path: str, data: dict | None = None, csrf_path: str = "/timer"):  # type: ignore[no-untyped-def]
    from tests.conftest import csrf_from

    return client.post(path, data={"csrf_token": csrf_from(client, csrf_path), **(data or {})})


def test_the_list_shows_times_from_every_organisation_soonest_first(client, login_as, kari, hearing):
    gp = factories.clinic(factories.hospital("Lade legesenter", OrganisationKind.GP_OFFICE), name="Time hos fastlege")
    later = factories.booked(kari.person, factories.slot(hearing, days=20))
    sooner = factories.booked(kari.person, factories.slot(gp, days=3, hour=9))
    gone = factories.booked(kari.person, factories.slot(hearing, days=-40))
    login_as(kari)
    page = client.get("/timer").get_data(as_text=True)
    assert page.index("Time hos fastlege") < page.index("Service på høreapparat")
    assert "Lade legesenter" in page and "St. Olavs hospital" in page
    assert f"/timer/{sooner.id}" in page and f"/timer/{later.id}" in page
    assert "Tidligere og avbestilte timer" in page and f"/timer/{gone.id}" in page
    assert "Gjennomført" not in page  # the past one is listed, not marked by anyone


def test_one_time_in_full(client, login_as, kari, hearing):
    a = factories.booked(kari.person, factories.slot(hearing, days=10, hour=13, minute=30))
    login_as(kari)
    page = client.get(f"/timer/{a.id}").get_data(as_text=True)
    for text in (
        "Service på høreapparat",
        "kl. 13:30",
        "30 minutter",
        "Oppmøte",
        "St. Olavs hospital, Medisinsk poliklinikk",
        "Audiograf Siri Moe",
        "Prinsesse Kristinas gate 3, 7030 Trondheim",
        "Inngang B, 2. etasje",
        "openstreetmap.org/?mlat=63.42130&amp;mlon=10.38790",
        "Ta med høreapparatet og laderen.",
        "Gratis",
        'href="tel:73860000"',
        "Legg til i kalenderen",
        "Avbestill timen",
        "Flytt timen",
        "Jeg vil ha en tidligere time",
    ):
        assert text in page, text
    assert db.session.scalar(
        select(func.count()).where(AuditEvent.action == "read_appointment", AuditEvent.object_id == str(a.id))
    )
    # A past time no longer says how to prepare for it.
    past = factories.booked(kari.person, factories.slot(hearing, days=-3, hour=9))
    assert "Ta med høreapparatet" not in client.get(f"/timer/{past.id}").get_data(as_text=True)


def test_another_patients_time_is_not_found_and_the_attempt_is_recorded(client, login_as, kari, per, hearing):
    theirs = factories.booked(per.person, factories.slot(hearing))
    login_as(kari)
    for path in (
        f"/timer/{theirs.id}",
        f"/timer/{theirs.id}/kalender.ics",
        f"/timer/{theirs.id}/avbestill",
        "/timer/999999",
    ):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/timer/{theirs.id}/avbestill", data={"csrf_token": "x"}).status_code in (400, 404)
    denied = db.session.scalars(select(AuditEvent).where(AuditEvent.outcome == "denied")).all()
    assert {d.object_id for d in denied} >= {str(theirs.id), "999999"}
    assert db.session.get(Appointment, theirs.id).status is AppointmentStatus.BOOKED


def test_calendar_file(client, login_as, kari, hearing):
    a = factories.booked(kari.person, factories.slot(hearing, days=5, hour=8, minute=15))
    login_as(kari)
    response = client.get(f"/timer/{a.id}/kalender.ics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/calendar")
    assert "attachment" in response.headers["Content-Disposition"]
    [event] = Calendar.from_ical(response.data).walk("VEVENT")
    assert str(event["summary"]) == "Service på høreapparat"
    assert event.decoded("dtstart") == a.start and event.decoded("dtend") == a.start + timedelta(minutes=30)
    assert "Prinsesse Kristinas gate 3" in str(event["location"])
    assert str(event["uid"]).startswith(f"appointment-{a.id}@")
    assert str(event["status"]) == "CONFIRMED"


@pytest.mark.parametrize(("mode", "said"), [("video", "Videotime – du får lenke fra"), ("phone", "Telefontime –")])
def test_a_video_or_phone_time_in_the_calendar_sends_nobody_to_the_address(client, login_as, kari, hearing, mode, said):
    from app.appointments.models import Mode

    a = factories.booked(kari.person, factories.slot(hearing, days=5, hour=9))
    a.mode = Mode(mode)
    db.session.commit()
    assert a.location is not None  # the unit's place is still on it (its phone number)
    login_as(kari)
    [event] = Calendar.from_ical(client.get(f"/timer/{a.id}/kalender.ics").data).walk("VEVENT")
    assert str(event["location"]).startswith(said)
    assert "Prinsesse Kristinas gate" not in str(event["location"])
    assert str(event["description"]).startswith(said.split(" –")[0])


def test_cancel_frees_the_slot(client, login_as, kari, hearing):
    s = factories.slot(hearing, days=3)
    a = factories.booked(kari.person, s)
    login_as(kari)
    page = client.get(f"/timer/{a.id}/avbestill").get_data(as_text=True)
    assert "Timen blir ledig for andre som venter" in page
    response = post(client, f"/timer/{a.id}/avbestill", csrf_path=f"/timer/{a.id}/avbestill")
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(Appointment, a.id).status is AppointmentStatus.CANCELLED
    assert db.session.get(Slot, s.id).state is SlotState.FREE
    assert "Timen er avbestilt." in client.get(response.headers["Location"]).get_data(as_text=True)


def test_after_the_cut_off_the_page_says_whom_to_call_and_nothing_changes(
    client, login_as, kari, hearing, frozen_clock
):
    a = factories.booked(kari.person, factories.slot(hearing, days=2, hour=10))
    frozen_clock.now = a.start - timedelta(hours=23)
    login_as(kari)
    detail = client.get(f"/timer/{a.id}").get_data(as_text=True)
    assert "Det er for sent å endre timen her. Må du avbestille, ring 73 86 00 00." in detail
    assert "Avbestill timen</a>" not in detail
    response = post(client, f"/timer/{a.id}/avbestill", csrf_path=f"/timer/{a.id}")
    assert response.status_code == 409
    assert "mindre enn 24 timer" in response.get_data(as_text=True) and "Ring 73 86 00 00" in response.get_data(
        as_text=True
    )
    db.session.expire_all()
    assert db.session.get(Appointment, a.id).status is AppointmentStatus.BOOKED


def test_a_visit_type_can_set_its_own_cut_off(client, login_as, kari, app):
    c = factories.clinic(cutoff_hours=2)
    a = factories.booked(kari.person, factories.slot(c, days=1, hour=12))
    login_as(kari)
    with app.test_request_context():
        from app.appointments import services

        assert services.patient_may_change(a, a.start - timedelta(hours=3))
        assert not services.patient_may_change(a, a.start - timedelta(hours=1))


def test_move_to_another_free_slot(client, login_as, kari, hearing):
    old_slot = factories.slot(hearing, days=14)
    a = factories.booked(kari.person, old_slot)
    new_slot = factories.slot(hearing, days=4, hour=11)
    login_as(kari)
    page = client.get(f"/timer/{a.id}/flytt").get_data(as_text=True)
    assert f'value="{new_slot.id}"' in page
    response = post(client, f"/timer/{a.id}/flytt", {"slot": new_slot.id}, csrf_path=f"/timer/{a.id}/flytt")
    assert response.status_code == 303
    db.session.expire_all()
    old = db.session.get(Appointment, a.id)
    moved = db.session.get(Appointment, old.replaced_by_id)
    assert old.status is AppointmentStatus.CANCELLED and moved.status is AppointmentStatus.BOOKED
    assert moved.slot_id == new_slot.id and moved.start == new_slot.start
    assert db.session.get(Slot, old_slot.id).state is SlotState.FREE
    assert db.session.get(Slot, new_slot.id).state is SlotState.BOOKED
    assert "Timen er flyttet" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_moving_to_another_kind_of_slot_is_refused(client, login_as, kari, hearing):
    a = factories.booked(kari.person, factories.slot(hearing, days=14))
    other = factories.clinic(name="Trening i Pusterommet")
    elsewhere = factories.slot(other, days=3)
    login_as(kari)
    response = post(client, f"/timer/{a.id}/flytt", {"slot": elsewhere.id}, csrf_path=f"/timer/{a.id}/flytt")
    assert response.status_code == 409
    assert "samme slag" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Appointment, a.id).status is AppointmentStatus.BOOKED
    assert db.session.get(Slot, elsewhere.id).state is SlotState.FREE


# --- self-booking ----------------------------------------------------------------------------------


def test_booking_shows_the_next_free_times_first_and_books(client, login_as, kari, hearing):
    later = factories.slot(hearing, days=9)
    first = factories.slot(hearing, days=2, hour=9)
    factories.booked(factories.PersonFactory(), factories.slot(hearing, days=1, hour=12))  # taken
    login_as(kari)
    types = client.get("/timer/bestill").get_data(as_text=True)
    assert "Service på høreapparat" in types
    times = client.get(f"/timer/bestill/{hearing.visit_type.id}").get_data(as_text=True)
    assert times.index(f"/timer/bestill/tid/{first.id}") < times.index(f"/timer/bestill/tid/{later.id}")
    confirm = client.get(f"/timer/bestill/tid/{first.id}").get_data(as_text=True)
    assert "Bekreft timen" in confirm and "Gratis" in confirm
    response = post(
        client, f"/timer/bestill/tid/{first.id}", {"slot": first.id}, csrf_path=f"/timer/bestill/tid/{first.id}"
    )
    assert response.status_code == 303
    mine = db.session.scalar(select(Appointment).where(Appointment.person_id == kari.person_id))
    assert mine.slot_id == first.id and mine.status is AppointmentStatus.BOOKED and mine.booked_by_user_id == kari.id
    assert "Timen er bestilt" in client.get(response.headers["Location"]).get_data(as_text=True)
    # Back to the confirmation and "Bestill timen" again: hers already, not "someone else got it".
    again = post(client, f"/timer/bestill/tid/{first.id}", {"slot": first.id}, csrf_path="/timer/bestill")
    assert again.status_code == 409
    assert "allerede bestilt til deg" in again.get_data(as_text=True) and "Noen andre" not in again.get_data(
        as_text=True
    )
    event = db.session.scalar(select(Event).where(Event.kind == "appointment_booked"))
    assert event.person_id == kari.person_id and event.object_id == mine.id


def test_age_rules(client, login_as, kari, ingrid, app):
    youth = factories.clinic(name="Helsestasjon for ungdom", min_age=12, max_age=25)
    s = factories.slot(youth, days=3)
    login_as(ingrid)
    assert "Helsestasjon for ungdom" in client.get("/timer/bestill").get_data(as_text=True)
    client.delete_cookie("__Host-varde")
    login_as(kari)
    assert "Helsestasjon for ungdom" not in client.get("/timer/bestill").get_data(as_text=True)
    page = client.get(f"/timer/bestill/{youth.visit_type.id}").get_data(as_text=True)
    assert "For deg som er 12–25 år." in page and f"/timer/bestill/tid/{s.id}" not in page
    response = post(client, f"/timer/bestill/tid/{s.id}", {"slot": s.id}, csrf_path="/timer/bestill")
    assert response.status_code == 409 and "12–25 år" in response.get_data(as_text=True)
    assert count(Appointment) == 0


def bad_booking(client, slot_id, expected: str) -> None:  # type: ignore[no-untyped-def]
    before = count(Appointment), count(Event)
    response = post(client, f"/timer/bestill/tid/{slot_id}", {"slot": slot_id}, csrf_path="/timer/bestill")
    assert response.status_code == 409
    assert expected in response.get_data(as_text=True)
    assert (count(Appointment), count(Event)) == before


def test_bad_bookings_say_why_and_change_nothing(client, login_as, kari, hearing, frozen_clock):
    referral = factories.clinic(name="Poliklinisk time, hjertemedisin", self_bookable=False, requires_referral=True)
    login_as(kari)
    bad_booking(client, factories.slot(referral, days=5).id, "kan du ikke bestille selv")
    taken = factories.slot(hearing, days=5)
    factories.booked(factories.PersonFactory(), taken)
    bad_booking(client, taken.id, "Noen andre har nettopp fått den timen")
    bad_booking(client, factories.slot(hearing, days=-1).id, "har allerede vært")
    bad_booking(client, factories.slot(hearing, days=5, hour=23).id, "utenfor åpningstiden")  # open 06–22
    bad_booking(client, factories.slot(hearing, days=6, hour=21, minute=45).id, "utenfor åpningstiden")  # ends 22:15
    bad_booking(client, 987654, "finner ikke den timen")
    mine = factories.booked(kari.person, factories.slot(hearing, days=8, hour=10))
    clash = factories.slot(factories.clinic(name="Trening i Pusterommet"), days=8, hour=10, minute=15)
    bad_booking(client, clash.id, "allerede en time på det tidspunktet")
    assert db.session.get(Appointment, mine.id).status is AppointmentStatus.BOOKED


def test_booking_without_csrf_is_refused(client, login_as, kari, hearing):
    s = factories.slot(hearing)
    login_as(kari)
    response = client.post(f"/timer/bestill/tid/{s.id}", data={"slot": s.id})
    assert response.status_code == 400
    assert count(Appointment) == 0


def test_a_parent_books_and_sees_a_young_childs_times(client, login_as, kari, ola, hearing):
    factories.parent_of(kari, ola)
    s = factories.slot(hearing, days=4)
    login_as(kari)
    post(client, "/profil", {"person": ola.id}, csrf_path="/")
    assert "Timene til Ola" in client.get("/timer").get_data(as_text=True)
    response = post(client, f"/timer/bestill/tid/{s.id}", {"slot": s.id}, csrf_path="/timer/bestill")
    assert response.status_code == 303
    a = db.session.scalar(select(Appointment))
    assert a.person_id == ola.id and a.booked_by_user_id == kari.id
    assert client.get(f"/timer/{a.id}").status_code == 200


def test_a_parent_cannot_see_a_teenagers_times(client, login_as, kari, ingrid, hearing):
    factories.parent_of(kari, ingrid.person)
    theirs = factories.booked(ingrid.person, factories.slot(hearing))
    login_as(kari)
    assert client.get(f"/timer/{theirs.id}").status_code == 404


def test_the_appointments_pages_need_a_login(client, hearing):
    assert client.get("/timer").status_code in (302, 303)
    assert client.get("/timer/bestill").status_code in (302, 303)


def test_the_overview_shows_the_next_times(client, login_as, kari, hearing):
    a = factories.booked(kari.person, factories.slot(hearing, days=2))
    factories.booked(kari.person, factories.slot(hearing, days=-2))
    login_as(kari)
    page = client.get("/").get_data(as_text=True)
    assert "Neste timer" in page and f"/timer/{a.id}" in page and "Ingen kommende timer" not in page
    assert page.count('href="/timer/') == 1 + page.count('href="/timer/bestill')  # the past one is not there


def test_the_booker_is_told_quietly_and_the_other_parent_as_usual(app, kari, ola, per, hearing):
    """Booking is an event; the parent who booked does not get a push or an unread mark for what
    they just did, while the child's other parent hears of it."""
    from app.appointments import services
    from app.notify.models import Notification, PushDelivery, PushSubscription

    factories.parent_of(kari, ola)
    factories.parent_of(per, ola)
    for user in (kari, per):
        db.session.add(
            PushSubscription(
                account_id=user.id,
                endpoint=f"https://fcm.googleapis.com/fcm/send/{user.id}",
                p256dh="BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
                auth="tBHItJI5svbpez7KI4CCXg",
                label="Chrome · Android",
            )
        )
    db.session.commit()
    s = factories.slot(hearing, days=4)
    with app.test_request_context():
        a = services.book(kari, ola, s.id, factories.clock.utcnow())
        db.session.commit()
    notes = {n.account_id: n for n in db.session.scalars(select(Notification).where(Notification.object_id == a.id))}
    assert notes[kari.id].read_at is not None and notes[per.id].read_at is None
    pushed_to = {d.notification.account_id for d in db.session.scalars(select(PushDelivery))}
    assert pushed_to == {per.id}


def test_a_parent_of_a_teenager_books_only_with_the_gp_and_the_municipality(client, login_as, kari, ingrid, hearing):
    """From 12 to 16 a parent sees and books only the GP's and municipal services' times: the
    hospital's visit types are not offered, a forged hospital slot is a 404 and books nothing, and
    a clash with a hidden hospital time is not told as one."""
    from app.people.models import OrganisationKind

    factories.parent_of(kari, ingrid.person)
    gp_office = factories.clinic(
        factories.hospital("Lade legesenter", OrganisationKind.GP_OFFICE), name="Legetime, 20 minutter"
    )
    hospital_slot = factories.slot(hearing, days=5, hour=10)
    hidden = factories.booked(ingrid.person, factories.slot(hearing, days=6, hour=10))
    gp_slot = factories.slot(gp_office, days=6, hour=10)  # at the same time as the hidden hospital time
    login_as(kari)
    post(client, "/profil", {"person": ingrid.person_id}, csrf_path="/")
    choices = client.get("/timer/bestill").get_data(as_text=True)
    assert "Legetime, 20 minutter" in choices and hearing.visit_type.name not in choices
    assert client.get(f"/timer/bestill/{hearing.visit_type.id}").status_code == 404
    assert client.get(f"/timer/bestill/tid/{hospital_slot.id}").status_code == 404
    before = count(Appointment)
    forged = post(client, f"/timer/bestill/tid/{gp_slot.id}", {"slot": hospital_slot.id}, csrf_path="/timer/bestill")
    assert forged.status_code == 404 and count(Appointment) == before
    clash = post(client, f"/timer/bestill/tid/{gp_slot.id}", {"slot": gp_slot.id}, csrf_path="/timer/bestill")
    assert clash.status_code == 409 and count(Appointment) == before
    page = clash.get_data(as_text=True)
    assert "Den tiden kan ikke bestilles" in page and "Du har allerede en time" not in page
    assert f"/timer/{hidden.id}" not in client.get("/timer").get_data(as_text=True)


def test_children_under_16_are_shown_that_the_egenandel_is_free(client, login_as, kari, ingrid):
    gp = factories.clinic(name="Time hos fastlege")
    gp.visit_type.price_nok = 175
    gp.visit_type.price_note = "Egenandel på dagtid. Gratis for barn under 16 år."
    db.session.commit()
    s = factories.slot(gp, days=3)
    login_as(ingrid)  # 14
    for path in ("/timer/bestill", f"/timer/bestill/tid/{s.id}"):
        page = client.get(path).get_data(as_text=True)
        assert "Gratis for barn under 16 år" in page and "175 kr" not in page, path
    client.delete_cookie("__Host-varde")
    login_as(kari)  # 41
    assert "175 kr (Egenandel på dagtid." in client.get(f"/timer/bestill/tid/{s.id}").get_data(as_text=True)


def test_a_wish_for_an_earlier_time_needs_room_for_the_time_and_real_days(client, login_as, kari, hearing):
    from app.appointments.models import WaitlistEntry

    a = factories.booked(kari.person, factories.slot(hearing, days=20, hour=10))  # 30 minutes
    login_as(kari)
    path = f"/timer/{a.id}/tidligere"
    wish = {"days": ["0", "2"], "earliest": "10:00", "latest": "10:05", "notice_hours": "24"}
    too_short = post(client, path, wish, csrf_path=path)
    assert too_short.status_code == 409
    assert "Tidsrommet må være minst 30 minutter" in too_short.get_data(as_text=True)
    forged = post(client, path, {**wish, "latest": "12:00", "days": ["9", "x"]}, csrf_path=path)
    assert forged.status_code == 400
    page = forged.get_data(as_text=True)
    assert "Velg bare blant dagene i listen." in page and "not a valid" not in page
    assert count(WaitlistEntry) == 0
    assert post(client, path, {**wish, "latest": "10:30"}, csrf_path=path).status_code == 303
    assert count(WaitlistEntry) == 1
