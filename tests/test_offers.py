"""Earlier-time offers: who is offered a freed slot and in what order, the round's expiry, exactly
one winner (also under 50 concurrent accepts on PostgreSQL), the chain a win starts, and
everything that must change nothing. Reminders are here too: they are the other timed events."""

from __future__ import annotations

import threading
from datetime import datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from app.appointments import offers, reminders
from app.appointments.models import (
    Appointment,
    AppointmentStatus,
    Offer,
    OfferState,
    ReminderSent,
    Slot,
    SlotState,
    WaitlistEntry,
)
from app.db import db
from app.notify.models import Event, Notification
from tests import factories
from tests.conftest import csrf_from


@pytest.fixture(autouse=True)
def _in_the_daytime(request):  # type: ignore[no-untyped-def]
    """Offers made at night wait for the morning (offers.answer_time_starts): the tests that move
    the clock run at 10:00 Norwegian time, whenever they are run."""
    if "frozen_clock" in request.fixturenames:
        request.getfixturevalue("frozen_clock").now = factories.norwegian_time(10)


@pytest.fixture
def hearing(app):
    return factories.clinic()


def waiting_patient(c, *, days: int = 30, hour: int = 10, priority: int = 0, since_days: int = 10, **kw):  # type: ignore[no-untyped-def]
    person = factories.PersonFactory()
    a = factories.booked(person, factories.slot(c, days=days, hour=hour))
    factories.waiting(a, priority=priority, since_days=since_days, **kw)
    return a


def cancel_to_free(c, frozen_clock, *, days: int = 5, hour: int = 9):  # type: ignore[no-untyped-def]
    """Someone cancels their time, as a patient would: returns the freed slot."""
    from app.appointments import services

    leaving = factories.booked(factories.PersonFactory(), factories.slot(c, days=days, hour=hour))
    services._release(leaving, frozen_clock.now, via=leaving.booked_via, viewer=None, reason=None)
    db.session.commit()
    return leaving.slot


def open_offers(slot) -> list[Offer]:  # type: ignore[no-untyped-def]
    return list(
        db.session.scalars(
            select(Offer).where(Offer.slot_id == slot.id, Offer.state == OfferState.OPEN).order_by(Offer.rank)
        )
    )


def test_a_cancellation_offers_the_slot_to_the_best_placed_three(hearing, frozen_clock):
    long_wait = waiting_patient(hearing, since_days=60)
    short_wait = waiting_patient(hearing, since_days=2)
    urgent = waiting_patient(hearing, priority=5, since_days=1)
    middle = waiting_patient(hearing, since_days=20)
    fourth = waiting_patient(hearing, since_days=1)
    slot = cancel_to_free(hearing, frozen_clock)
    made = open_offers(slot)
    assert [o.appointment_id for o in made] == [urgent.id, long_wait.id, middle.id]
    assert {o.appointment_id for o in made}.isdisjoint({short_wait.id, fourth.id})
    # The shorter of two hours and half the time left; the slot is held from self-booking meanwhile.
    assert made[0].expires_at == frozen_clock.now + timedelta(hours=2)
    assert db.session.get(Slot, slot.id).offered_until == made[0].expires_at
    events = db.session.scalars(select(Event).where(Event.kind == "appointment_offer")).all()
    assert sorted(e.person_id for e in events) == sorted(o.person_id for o in made)
    assert all(e.url == f"/timer/tilbud/{e.object_id}" for e in events)


def test_only_those_the_slot_fits_are_offered_it(hearing, frozen_clock):
    other_type = factories.clinic(factories.hospital("Orkdal sjukehus"), name="Trening i Pusterommet")
    slot_start_weekday = factories.local_time(5, 9).astimezone(factories.clock.NORWAY).weekday()
    not_that_day = waiting_patient(hearing, weekdays=0b1111111 & ~(1 << slot_start_weekday))
    too_short_notice = waiting_patient(hearing, notice_hours=24 * 7)
    already_earlier = waiting_patient(hearing, days=2)
    other_kind = waiting_patient(other_type)
    fits = waiting_patient(hearing)
    slot = cancel_to_free(hearing, frozen_clock)
    assert [o.appointment_id for o in open_offers(slot)] == [fits.id]
    assert not {not_that_day.id, too_short_notice.id, already_earlier.id, other_kind.id} & {
        o.appointment_id for o in open_offers(slot)
    }


def test_offers_respect_the_hours_they_can_come(hearing, frozen_clock):
    a = waiting_patient(hearing)
    entry = db.session.scalar(select(WaitlistEntry).where(WaitlistEntry.appointment_id == a.id))
    from datetime import time

    entry.earliest, entry.latest = time(10), time(15)
    db.session.commit()
    early = cancel_to_free(hearing, frozen_clock, hour=9)
    assert open_offers(early) == []
    assert db.session.get(Slot, early.id).offered_until is None  # nobody fits: free for anyone
    fitting = cancel_to_free(hearing, frozen_clock, days=6, hour=14)
    assert [o.appointment_id for o in open_offers(fitting)] == [a.id]


def offer_page_accept(client, offer) -> object:  # type: ignore[no-untyped-def]
    token = csrf_from(client, "/timer")
    return client.post(f"/timer/tilbud/{offer.id}/ja", data={"csrf_token": token})


def test_the_first_to_accept_gets_it_the_others_see_taken_and_keep_their_time(
    client, login_as, kari, per, hearing, frozen_clock
):
    kari_time = factories.booked(kari.person, factories.slot(hearing, days=30))
    factories.waiting(kari_time, since_days=40)
    per_time = factories.booked(per.person, factories.slot(hearing, days=31))
    factories.waiting(per_time, since_days=30)
    slot = cancel_to_free(hearing, frozen_clock)
    kari_offer, per_offer = open_offers(slot)
    login_as(kari)
    page = client.get(f"/timer/tilbud/{kari_offer.id}").get_data(as_text=True)
    assert "Svar innen kl." in page and "2 t 0 min igjen" in page
    response = offer_page_accept(client, kari_offer)
    assert response.status_code == 303
    db.session.expire_all()
    old = db.session.get(Appointment, kari_time.id)
    new = db.session.get(Appointment, old.replaced_by_id)
    assert old.status is AppointmentStatus.CANCELLED and new.slot_id == slot.id and new.start == slot.start
    assert db.session.get(Offer, per_offer.id).state is OfferState.TAKEN
    assert "Du har fått den tidligere timen" in client.get(response.headers["Location"]).get_data(as_text=True)
    # Per: sees "taken" at once; his own time is untouched.
    client.delete_cookie("__Host-varde")
    login_as(per)
    response = offer_page_accept(client, per_offer)
    assert response.status_code == 409
    assert "Noen andre takket ja først. Du beholder timen du har." in response.get_data(as_text=True)
    assert db.session.get(Appointment, per_time.id).status is AppointmentStatus.BOOKED
    # Kari's old slot is free now, and offered on: Per is the one waiting whom it fits.
    [chain] = open_offers(old.slot)
    assert chain.appointment_id == per_time.id


def test_accepting_twice_is_the_same_as_once(client, login_as, kari, hearing, frozen_clock):
    mine = factories.booked(kari.person, factories.slot(hearing, days=30))
    factories.waiting(mine)
    [offer] = open_offers(cancel_to_free(hearing, frozen_clock))
    login_as(kari)
    first = offer_page_accept(client, offer)
    second = offer_page_accept(client, offer)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert db.session.scalar(select(func.count()).where(Appointment.person_id == kari.person_id)) == 2  # old + new


def test_an_expired_or_someone_elses_offer_changes_nothing(client, login_as, kari, per, hearing, frozen_clock):
    mine = factories.booked(kari.person, factories.slot(hearing, days=30))
    factories.waiting(mine)
    theirs = factories.booked(per.person, factories.slot(hearing, days=31))
    factories.waiting(theirs, since_days=1)
    slot = cancel_to_free(hearing, frozen_clock)
    kari_offer, per_offer = open_offers(slot)
    login_as(kari)
    assert client.get(f"/timer/tilbud/{per_offer.id}").status_code == 404
    token = csrf_from(client, "/timer")
    assert client.post(f"/timer/tilbud/{per_offer.id}/ja", data={"csrf_token": token}).status_code == 404
    frozen_clock.advance(hours=2, seconds=1)
    login_as(kari)  # the idle session ended meanwhile
    response = offer_page_accept(client, kari_offer)
    assert response.status_code == 409 and "Tilbudet har gått ut" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Appointment, mine.id).status is AppointmentStatus.BOOKED
    assert db.session.get(Slot, slot.id).state is SlotState.FREE


def test_declining_keeps_the_time_and_when_the_round_is_over_the_next_are_offered(
    client, login_as, kari, hearing, frozen_clock, app
):
    app.config["APPOINTMENT_OFFER_BATCH"] = 1
    try:
        mine = factories.booked(kari.person, factories.slot(hearing, days=30))
        factories.waiting(mine, since_days=50)
        next_in_line = waiting_patient(hearing, since_days=5)
        slot = cancel_to_free(hearing, frozen_clock)
        [offer] = open_offers(slot)
        login_as(kari)
        token = csrf_from(client, f"/timer/tilbud/{offer.id}")
        response = client.post(f"/timer/tilbud/{offer.id}/nei", data={"csrf_token": token})
        assert response.status_code == 303
        assert "Du takket nei" in client.get(response.headers["Location"]).get_data(as_text=True)
        db.session.expire_all()
        assert db.session.get(Appointment, mine.id).status is AppointmentStatus.BOOKED
        [second] = open_offers(slot)
        assert second.appointment_id == next_in_line.id and second.round == 2
    finally:
        app.config["APPOINTMENT_OFFER_BATCH"] = 3


def test_expiry_moves_on_to_the_next_round_and_then_frees_the_slot(hearing, frozen_clock, app):
    app.config["APPOINTMENT_OFFER_BATCH"] = 2
    try:
        first = [waiting_patient(hearing, since_days=30 - i) for i in range(2)]
        third = waiting_patient(hearing, since_days=1)
        slot = cancel_to_free(hearing, frozen_clock, days=3)
        assert {o.appointment_id for o in open_offers(slot)} == {a.id for a in first}
        frozen_clock.advance(hours=2)
        assert offers.expire_due(frozen_clock.now) == 1
        db.session.commit()
        [second_round] = open_offers(slot)
        assert second_round.appointment_id == third.id and second_round.round == 2
        frozen_clock.advance(hours=2)
        offers.expire_due(frozen_clock.now)
        db.session.commit()
        assert open_offers(slot) == []
        assert db.session.get(Slot, slot.id).offered_until is None
        states = db.session.scalars(select(Offer.state).where(Offer.slot_id == slot.id)).all()
        assert sorted(states) == [OfferState.EXPIRED] * 3
        for a in [*first, third]:
            assert db.session.get(Appointment, a.id).status is AppointmentStatus.BOOKED
    finally:
        app.config["APPOINTMENT_OFFER_BATCH"] = 3


@pytest.mark.parametrize(
    ("hour", "expires"),
    [(23, (1, 9, 0)), (1, (0, 9, 0)), (6, (0, 9, 0)), (21, (0, 23, 0)), (7, (0, 9, 0))],
)
def test_an_offer_made_at_night_gives_its_answer_time_from_the_morning(hearing, frozen_clock, hour, expires):
    """Made at 23:00 or 01:00, it is open until 09:00 (two hours from 07:00), not until 01:00 or
    03:00 while everyone sleeps; made at 21:00 it has its two hours."""
    waiting_patient(hearing, days=30)
    frozen_clock.now = factories.norwegian_time(hour)
    slot = factories.slot(hearing, days=5, hour=9)
    [offer] = offers.offer_slot(slot, frozen_clock.now)
    days, h, m = expires
    day = frozen_clock.now.astimezone(factories.clock.NORWAY).date() + timedelta(days=days)
    assert offer.expires_at.astimezone(factories.clock.NORWAY).replace(tzinfo=None) == datetime.combine(day, time(h, m))


def test_an_offer_expires_after_half_the_time_left_when_that_is_shorter(hearing, frozen_clock):
    waiting_patient(hearing)
    slot = factories.slot(hearing, days=1, hour=20)  # offered 3 h before it
    frozen_clock.now = slot.start - timedelta(hours=3)
    [offer] = offers.offer_slot(slot, frozen_clock.now)
    assert offer.expires_at == frozen_clock.now + timedelta(hours=1, minutes=30)


def test_new_capacity_is_offered_first(client, login_as, dr_lund, hearing, frozen_clock):
    a = waiting_patient(hearing)
    factories.works_at(dr_lund, hearing.org)
    login_as(dr_lund)
    day = (factories.clock.today_in_norway() + timedelta(days=3)).isoformat()
    token = csrf_from(client, f"/ansatt/timer/kalendere/{hearing.schedule.id}")
    response = client.post(
        f"/ansatt/timer/kalendere/{hearing.schedule.id}",
        data={
            "csrf_token": token,
            "visit_type": hearing.visit_type.id,
            "first": day,
            "last": day,
            "days": [str(d) for d in range(7)],
            "start": "09:00",
            "end": "10:00",
            "minutes": "30",
            "mode": "in_person",
        },
    )
    assert response.status_code == 303
    new = db.session.scalars(
        select(Slot).where(Slot.start >= factories.local_time(3, 9), Slot.start < factories.local_time(3, 10))
    ).all()
    assert len(new) == 2
    assert {o.appointment_id for s in new for o in open_offers(s)} == {a.id}


# --- exactly one winner ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def race_app(tmp_path_factory, database_url):  # type: ignore[no-untyped-def]
    """The same database, with a connection for each of 50 accepting requests at once (as 50
    gunicorn workers would have), so nobody waits for the pool instead of for the database."""
    from app import create_app
    from app.config import TestConfig

    class Config(TestConfig):
        INSTANCE_PATH = str(tmp_path_factory.mktemp("race"))
        SQLALCHEMY_DATABASE_URI = database_url
        SQLALCHEMY_ENGINE_OPTIONS = {"pool_size": 52, "max_overflow": 0, "pool_pre_ping": False}

    racing = create_app(Config)
    yield racing
    with racing.app_context():
        db.engine.dispose()


def race(app, offer_ids: list[int], user_ids: list[int], now) -> list[str]:  # type: ignore[no-untyped-def]
    """Every offer accepted at the same moment, each in a thread of its own with its own connection."""
    from app.appointments.services import Refused
    from app.auth.models import User

    start = threading.Barrier(len(offer_ids))
    results: list[str] = [""] * len(offer_ids)

    def accept(i: int) -> None:
        with app.app_context():
            try:
                offer = db.session.get(Offer, offer_ids[i])
                viewer = db.session.get(User, user_ids[i])
                start.wait(timeout=30)
                offers.accept(viewer, offer, now)
                db.session.commit()
                results[i] = "won"
            except Refused as refused:
                db.session.rollback()
                results[i] = "refused: " + refused.message
            except Exception as exc:
                db.session.rollback()
                results[i] = f"error: {type(exc).__name__}: {exc}"
            finally:
                db.session.remove()

    threads = [threading.Thread(target=accept, args=(i,)) for i in range(len(offer_ids))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.mark.parametrize("run", range(20))
def test_fifty_concurrent_accepts_give_exactly_one_booking(app, race_app, hearing, frozen_clock, run):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("concurrency is PostgreSQL's to prove (SQLite has one writer at a time)")
    app.config["APPOINTMENT_OFFER_BATCH"] = 50
    try:
        waiting_people = []
        for i in range(50):
            user = factories.patient("Vent", f"Nr{i}", age=40, username=f"vent{run}-{i}", with_totp=False)
            a = factories.booked(user.person, factories.slot(hearing, days=30, hour=6 + i // 4, minute=(i % 4) * 15))
            factories.waiting(a, since_days=60 - i)
            waiting_people.append(user)
        slot = cancel_to_free(hearing, frozen_clock)
        made = open_offers(slot)
        assert len(made) == 50
        by_person = {u.person_id: u.id for u in waiting_people}
        results = race(race_app, [o.id for o in made], [by_person[o.person_id] for o in made], frozen_clock.now)
        db.session.expire_all()
        assert [r for r in results if r.startswith("error")] == []
        assert results.count("won") == 1
        assert all(r == "won" or "Noen andre takket ja først" in r for r in results)
        booked = db.session.scalars(
            select(Appointment).where(Appointment.slot_id == slot.id, Appointment.status == AppointmentStatus.BOOKED)
        ).all()
        assert len(booked) == 1
        winner = booked[0].person_id
        # Everyone else still has their own time; the winner's old one is released.
        for user in waiting_people:
            mine = db.session.scalars(
                select(Appointment).where(
                    Appointment.person_id == user.person_id, Appointment.status == AppointmentStatus.BOOKED
                )
            ).all()
            assert len(mine) == 1
            assert (mine[0].slot_id == slot.id) == (user.person_id == winner)
        states = db.session.scalars(select(Offer.state).where(Offer.slot_id == slot.id)).all()
        assert states.count(OfferState.ACCEPTED) == 1 and states.count(OfferState.TAKEN) == 49
    finally:
        app.config["APPOINTMENT_OFFER_BATCH"] = 3


def test_a_double_tap_under_concurrency_books_once(race_app, kari, hearing, frozen_clock):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("concurrency is PostgreSQL's to prove")
    mine = factories.booked(kari.person, factories.slot(hearing, days=30))
    factories.waiting(mine)
    [offer] = open_offers(cancel_to_free(hearing, frozen_clock))
    results = race(race_app, [offer.id] * 5, [kari.id] * 5, frozen_clock.now)
    assert results == ["won"] * 5
    db.session.expire_all()
    assert (
        db.session.scalar(
            select(func.count()).where(Appointment.person_id == kari.person_id, Appointment.status == "booked")
        )
        == 1
    )


# --- reminders ---------------------------------------------------------------------------------------


def test_reminders_three_days_and_one_day_before_each_once(kari, hearing, frozen_clock):
    a = factories.booked(kari.person, factories.slot(hearing, days=10))
    frozen_clock.now = a.start - timedelta(hours=73)
    assert reminders.write_due(frozen_clock.now) == 0
    frozen_clock.now = a.start - timedelta(hours=71)
    assert reminders.write_due(frozen_clock.now) == 1
    assert reminders.write_due(frozen_clock.now) == 0
    db.session.commit()
    frozen_clock.now = a.start - timedelta(hours=23)
    assert reminders.write_due(frozen_clock.now) == 1
    db.session.commit()
    frozen_clock.now = a.start - timedelta(hours=1)
    assert reminders.write_due(frozen_clock.now) == 0
    events = db.session.scalars(select(Event).where(Event.kind == "appointment_reminder")).all()
    assert len(events) == 2 and all(e.url == f"/timer/{a.id}" for e in events)
    assert db.session.scalar(select(func.count()).select_from(Notification)) == 2


def test_a_worker_that_was_away_sends_only_the_nearest_reminder(kari, hearing, frozen_clock):
    a = factories.booked(kari.person, factories.slot(hearing, days=10))
    frozen_clock.now = a.start - timedelta(hours=5)
    assert reminders.write_due(frozen_clock.now) == 1
    db.session.commit()
    assert db.session.scalars(select(ReminderSent.hours_before)).all() == [24]


def test_no_reminder_for_a_time_booked_inside_the_window(kari, hearing, frozen_clock):
    a = factories.booked(kari.person, factories.slot(hearing, days=1), created_days_ago=0)
    frozen_clock.now = a.start - timedelta(hours=20)
    a.created_at = frozen_clock.now - timedelta(hours=1)
    db.session.commit()
    assert reminders.write_due(frozen_clock.now) == 0
    assert db.session.scalar(select(func.count()).select_from(Event)) == 0


def test_cancelled_times_get_no_reminder(kari, hearing, frozen_clock):
    a = factories.booked(kari.person, factories.slot(hearing, days=2))
    a.status = AppointmentStatus.CANCELLED
    db.session.commit()
    frozen_clock.now = a.start - timedelta(hours=20)
    assert reminders.write_due(frozen_clock.now) == 0
