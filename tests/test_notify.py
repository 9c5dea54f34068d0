"""Notifications without a push service: events become notification rows and push deliveries in
the same transaction, by preference and quiet hours; parents hear of young children; the
notification centre, the bell, opening a notification, devices and preferences."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, time, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import delete, func, select

from app.db import db
from app.notify import events
from app.notify.events import in_quiet_hours, next_allowed
from app.notify.models import DeliveryState, Event, Notification, NotificationSettings, PushDelivery, PushSubscription
from app.record.models import ItemKind, RecordItem, ReleaseState
from app.record.release import release
from tests import factories
from tests.conftest import csrf_from


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def device_keys() -> dict[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return {"p256dh": b64(point), "auth": b64(b"0123456789abcdef")}


def add_device(user, endpoint: str = "https://fcm.googleapis.com/fcm/send/abc") -> PushSubscription:
    keys = device_keys()
    sub = PushSubscription(account_id=user.id, endpoint=endpoint, p256dh=keys["p256dh"], auth=keys["auth"], label="t")
    db.session.add(sub)
    db.session.commit()
    return sub


def notifications_of(user) -> list[Notification]:
    return list(db.session.scalars(select(Notification).where(Notification.account_id == user.id)))


def deliveries() -> list[PushDelivery]:
    return list(db.session.scalars(select(PushDelivery).order_by(PushDelivery.id)))


def announce_released_result(person_id: int) -> RecordItem:
    """A released result of the person's (their record was imported first), announced again."""
    item = db.session.scalars(
        select(RecordItem).where(
            RecordItem.person_id == person_id,
            RecordItem.kind == ItemKind.RESULT,
            RecordItem.release_state == ReleaseState.RELEASED,
        )
    ).first()
    events.emit(
        person_id, "result_released", object_type="record_item", object_id=item.id, url=f"/journal/prover/{item.id}"
    )
    return item


# -- Events become notifications in the same transaction -------------------------------------


def test_event_writes_notification_and_delivery_in_the_same_transaction(kari):
    add_device(kari)
    events.emit(kari.person_id, "result_released", object_type="record_item", object_id=7, url="/journal/prover/7")
    db.session.rollback()  # the change did not commit: neither did its notifications
    assert db.session.scalar(select(func.count(Event.id))) == 0
    assert db.session.scalar(select(func.count(Notification.id))) == 0
    assert db.session.scalar(select(func.count(PushDelivery.id))) == 0

    events.emit(kari.person_id, "result_released", object_type="record_item", object_id=7, url="/journal/prover/7")
    db.session.commit()
    [notice] = notifications_of(kari)
    assert notice.url == "/journal/prover/7" and notice.read_at is None
    [delivery] = deliveries()
    assert delivery.notification_id == notice.id and delivery.state is DeliveryState.PENDING


def test_release_by_clinician_notifies(kari, org, source):
    add_device(kari)
    factories.record(kari.person, source, results=3, notes=1, years=0.01)
    held = db.session.scalars(
        select(RecordItem).where(RecordItem.person_id == kari.person_id, RecordItem.kind == ItemKind.NOTE)
    ).first()
    held.release_state = ReleaseState.HELD  # as a "clinician only" rule would have left it
    db.session.commit()
    before = len(notifications_of(kari))
    assert release(held, by_user_id=None)
    db.session.commit()
    assert len(notifications_of(kari)) == before + 1


def test_no_device_still_gets_notification_centre_row(kari):
    events.emit(kari.person_id, "note_released", object_type="record_item", object_id=1, url="/journal/notater/1")
    db.session.commit()
    assert len(notifications_of(kari)) == 1
    assert deliveries() == []


def test_each_device_gets_its_own_delivery(kari):
    add_device(kari, "https://fcm.googleapis.com/fcm/send/phone")
    add_device(kari, "https://updates.push.services.mozilla.com/wpush/v2/laptop")
    events.emit(kari.person_id, "result_released", object_type="record_item", object_id=1, url="/journal/prover/1")
    db.session.commit()
    assert len(deliveries()) == 2


@pytest.mark.parametrize(
    ("kind", "category"),
    [
        ("result_released", "record"),
        ("note_released", "record"),
        ("message_received", "messages"),
        ("appointment_reminder", "reminders"),
        ("appointment_offer", "offers"),
    ],
)
def test_preferences_per_category(kari, kind, category):
    add_device(kari)
    db.session.add(NotificationSettings(account_id=kari.id, quiet_enabled=False, **{category: False}))
    db.session.commit()
    events.emit(kari.person_id, kind, url="/")
    db.session.commit()
    assert len(notifications_of(kari)) == 1  # the centre lists it anyway
    assert deliveries() == []  # but nothing is pushed


def test_parent_hears_of_young_child_not_of_teenager(kari, ola, ingrid):
    factories.parent_of(kari, ola)
    factories.parent_of(kari, ingrid.person)
    events.emit(ola.id, "result_released", object_type="record_item", object_id=1, url="/journal/prover/1")
    events.emit(ingrid.person_id, "result_released", object_type="record_item", object_id=2, url="/journal/prover/2")
    db.session.commit()
    [notice] = notifications_of(kari)
    assert notice.subject_person_id == ola.id
    [own] = notifications_of(ingrid)  # Ingrid (14) hears of her own result; her mother does not
    assert own.object_id == 2


def test_parent_stops_hearing_on_the_12th_birthday(kari, frozen_clock):
    child = factories.PersonFactory(given_name="Emma", family_name="Nordmann", birth_date=factories.birth_for_age(11))
    factories.parent_of(kari, child)
    birthday = child.birth_date.replace(year=child.birth_date.year + 12)
    frozen_clock.now = datetime.combine(birthday - timedelta(days=1), time(12), tzinfo=UTC)
    events.emit(child.id, "note_released", url="/")
    frozen_clock.now = datetime.combine(birthday, time(12), tzinfo=UTC)
    events.emit(child.id, "note_released", url="/")
    db.session.commit()
    assert len(notifications_of(kari)) == 1


# -- Quiet hours -----------------------------------------------------------------------------


def oslo(hour: int, minute: int = 0, day: int = 26, month: int = 11) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(2026, month, day, hour, minute, tzinfo=ZoneInfo("Europe/Oslo")).astimezone(UTC)


def test_quiet_hours_over_midnight():
    assert in_quiet_hours(time(23), time(22), time(7))
    assert in_quiet_hours(time(3), time(22), time(7))
    assert not in_quiet_hours(time(7), time(22), time(7))
    assert not in_quiet_hours(time(12), time(22), time(7))
    assert in_quiet_hours(time(13), time(12), time(14))
    assert not in_quiet_hours(time(13), time(12), time(12))


def test_night_push_waits_until_morning_but_an_offer_may_break_through(kari):
    prefs = events.default_settings(kari.id)
    assert next_allowed(oslo(23, 30), prefs) == oslo(7, day=27)
    assert next_allowed(oslo(3, 10), prefs) == oslo(7)
    assert next_allowed(oslo(12), prefs) == oslo(12)
    assert next_allowed(oslo(23, 30), prefs, breaks_through=True) == oslo(23, 30)
    # Summer time ends in the night of 25 October 2026: 07:00 is still 07:00 on the wall.
    assert next_allowed(oslo(23, month=10, day=24), prefs) == oslo(7, month=10, day=25)


def test_quiet_hours_defer_the_delivery(kari, frozen_clock):
    add_device(kari)
    frozen_clock.now = oslo(23, 30)
    events.emit(kari.person_id, "result_released", url="/")
    db.session.add(NotificationSettings(account_id=kari.id, offers_break_quiet=True))
    db.session.commit()
    events.emit(kari.person_id, "appointment_offer", url="/", expires_at=oslo(23, 30) + timedelta(hours=1))
    db.session.commit()
    result, offer = deliveries()
    assert result.next_attempt_at == oslo(7, day=27)
    assert offer.next_attempt_at == oslo(23, 30)


def test_offer_that_would_expire_in_the_night_is_not_pushed(kari, frozen_clock):
    add_device(kari)
    frozen_clock.now = oslo(23, 30)
    events.emit(kari.person_id, "appointment_offer", url="/", expires_at=oslo(23, 30) + timedelta(hours=1))
    db.session.commit()
    assert deliveries() == []
    assert len(notifications_of(kari)) == 1


# -- The notification centre and the bell ----------------------------------------------------


def test_bell_shows_unread_count_on_every_page(client, kari, login_as):
    login_as(kari)
    for n in range(3):
        events.emit(kari.person_id, "note_released", url=f"/journal/notater/{n}")
    db.session.commit()
    for path in ("/", "/journal", "/meny", "/innstillinger", "/varsler"):
        html = client.get(path).get_data(as_text=True)
        assert "3 uleste" in html, path
        assert 'class="bell__count" aria-hidden="true">3<' in html


def test_centre_lists_marks_read_and_reading_the_item_marks_it(client, kari, org, source, login_as):
    factories.record(kari.person, source, results=2, notes=1, years=0.01)
    item = announce_released_result(kari.person_id)
    events.emit(
        kari.person_id, "note_released", object_type="record_item", object_id=999999, url="/journal/notater/999999"
    )
    db.session.commit()
    login_as(kari)
    page = client.get("/varsler").get_data(as_text=True)
    assert "Du har et nytt prøvesvar" in page and "Du har et nytt notat" in page
    assert client.get(f"/journal/prover/{item.id}").status_code == 200
    mine = [n for n in notifications_of(kari) if n.object_id in (item.id, 999999)]
    by_kind = {n.kind: n for n in mine}
    assert by_kind["result_released"].read_at is not None  # reading the item read its notification
    assert by_kind["note_released"].read_at is None

    token = csrf_from(client, "/varsler")
    response = client.post(f"/varsler/{by_kind['note_released'].token}/lest", data={"csrf_token": token})
    assert response.status_code == 303
    db.session.expire_all()
    assert all(n.read_at for n in notifications_of(kari) if n.object_id in (item.id, 999999))


def test_read_all(client, kari, login_as):
    for n in range(3):
        events.emit(kari.person_id, "note_released", url=f"/journal/notater/{n}")
    db.session.commit()
    login_as(kari)
    token = csrf_from(client, "/varsler")
    assert client.post("/varsler/les-alle", data={"csrf_token": token}).status_code == 303
    db.session.expire_all()
    assert all(n.read_at for n in notifications_of(kari))
    assert "uleste" not in client.get("/").get_data(as_text=True)


def test_writes_need_csrf(client, kari, login_as):
    events.emit(kari.person_id, "note_released", url="/")
    db.session.commit()
    login_as(kari)
    [notice] = notifications_of(kari)
    assert client.post("/varsler/les-alle").status_code == 400
    assert client.post(f"/varsler/{notice.token}/lest").status_code == 400
    assert client.post("/varsler/enheter", json={}).status_code == 400
    db.session.expire_all()
    assert notifications_of(kari)[0].read_at is None


def test_opening_a_notification_marks_it_read_and_goes_to_the_item(client, kari, login_as):
    events.emit(kari.person_id, "note_released", object_type="record_item", object_id=5, url="/journal/notater/5")
    db.session.commit()
    [notice] = notifications_of(kari)
    login_as(kari)
    response = client.get(f"/varsler/{notice.token}")
    assert response.status_code == 303 and response.headers["Location"] == "/journal/notater/5"
    db.session.expire_all()
    assert notifications_of(kari)[0].read_at is not None


def test_someone_elses_notification_is_not_found(client, kari, per, login_as):
    events.emit(kari.person_id, "note_released", url="/journal/notater/5")
    db.session.commit()
    [notice] = notifications_of(kari)
    login_as(per)
    assert client.get(f"/varsler/{notice.token}").status_code == 404
    assert client.get("/varsler/not-a-token").status_code == 404
    db.session.expire_all()
    assert notifications_of(kari)[0].read_at is None


def test_expired_session_logs_in_and_lands_on_the_notification(client, kari):
    response = client.get("/varsler/abcdef")
    assert response.status_code in (302, 303)
    assert "/logg-inn" in response.headers["Location"] and response.headers["Location"].endswith("next=/varsler/abcdef")


def test_parent_tap_switches_to_the_child_first(client, kari, ola, org, source, login_as):
    factories.parent_of(kari, ola)
    factories.record(ola, source, results=2, notes=1, years=0.01)
    announce_released_result(ola.id)
    db.session.commit()
    notice = notifications_of(kari)[-1]
    login_as(kari)
    centre = client.get("/varsler").get_data(as_text=True)
    assert "Ola har et nytt prøvesvar" in centre
    response = client.get(f"/varsler/{notice.token}")
    assert response.status_code == 303
    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Du ser nå journalen til Ola, 8 år." in html


def test_parent_tap_after_the_child_turned_12_shows_nothing(client, kari, login_as, frozen_clock):
    child = factories.PersonFactory(given_name="Emma", family_name="Nordmann", birth_date=factories.birth_for_age(11))
    factories.parent_of(kari, child)
    events.emit(child.id, "note_released", url="/journal/notater/1")
    db.session.commit()
    [notice] = notifications_of(kari)
    frozen_clock.advance(days=400)
    login_as(kari)
    response = client.get(f"/varsler/{notice.token}")
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert "ikke lenger tilgang" in page and "fylt 12 år" in page and "Fullmakten" not in page


def test_a_proxys_tap_after_the_proxy_ended_says_the_proxy_ended(client, kari, per, login_as):
    from app.people.models import ProxyLevel, Relation, RelationKind

    relation = Relation(
        holder_id=kari.person_id, subject_id=per.person_id, kind=RelationKind.PROXY, level=ProxyLevel.FULL
    )
    db.session.add(relation)
    db.session.commit()
    events.emit(per.person_id, "note_released", url="/journal/notater/1")
    db.session.commit()
    [notice] = notifications_of(kari)
    relation.revoked_at = factories.clock.utcnow()
    db.session.commit()
    login_as(kari)
    response = client.get(f"/varsler/{notice.token}")
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert "Fullmakten er avsluttet eller har gått ut." in page and "fylt 12 år" not in page


def test_profile_switcher(client, kari, ola, ingrid, per, login_as):
    factories.parent_of(kari, ola)
    factories.parent_of(kari, ingrid.person)
    login_as(kari)
    overview = client.get("/").get_data(as_text=True)
    assert "Hvem vil du se?" in overview and "Ola, 8 år" in overview
    assert "Ingrid, 14 år" in overview  # 14: her mother still acts for her, with limited access
    token = csrf_from(client, "/")
    assert client.post("/profil", data={"csrf_token": token, "person": ola.id}).status_code == 303
    assert "Du ser nå journalen til Ola" in client.get("/journal").get_data(as_text=True)
    from app.access.models import AuditEvent

    switched = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "profile_switched")).all()
    assert [(r.actor_user_id, r.subject_person_id, r.basis) for r in switched] == [(kari.id, ola.id, "parent")]
    for forbidden in (per.person_id, 0):
        assert client.post("/profil", data={"csrf_token": token, "person": forbidden}).status_code == 404
    assert "Du ser nå journalen til Ola" in client.get("/").get_data(as_text=True)
    assert client.post("/profil", data={"csrf_token": token, "person": kari.person_id}).status_code == 303
    assert "Du ser nå journalen til" not in client.get("/").get_data(as_text=True)


# -- Devices ---------------------------------------------------------------------------------


def subscribe(client, token, endpoint="https://fcm.googleapis.com/fcm/send/dev1", keys=None):
    return client.post(
        "/varsler/enheter",
        json={"endpoint": endpoint, "keys": keys or device_keys()},
        headers={"X-CSRFToken": token, "User-Agent": "Mozilla/5.0 (Linux; Android 14) Chrome/131.0 Mobile"},
    )


def test_subscribe_stores_a_labelled_device_once(client, kari, login_as):
    login_as(kari)
    token = csrf_from(client, "/varsler/innstillinger")
    first = subscribe(client, token)
    assert first.status_code == 201 and first.json["label"] == "Chrome · Android"
    again = subscribe(client, token)  # the same endpoint again (new keys): updated, not duplicated
    assert again.status_code == 200
    assert db.session.scalar(select(func.count(PushSubscription.id))) == 1
    page = client.get("/varsler/innstillinger").get_data(as_text=True)
    assert "Chrome · Android" in page and "Lagt til" in page


def test_a_device_moves_to_whoever_subscribes_on_it(client, kari, per, login_as):
    add_device(kari, "https://fcm.googleapis.com/fcm/send/shared")
    events.emit(kari.person_id, "note_released", url="/")  # waiting for Kari's old device
    db.session.commit()
    login_as(per)
    token = csrf_from(client, "/varsler/innstillinger")
    assert subscribe(client, token, "https://fcm.googleapis.com/fcm/send/shared").status_code == 200
    [sub] = db.session.scalars(select(PushSubscription)).all()
    db.session.refresh(sub)
    assert sub.account_id == per.id
    [delivery] = deliveries()
    db.session.refresh(delivery)
    assert delivery.state is DeliveryState.GONE  # Kari's notice is not pushed to Per's browser


@pytest.mark.parametrize(
    ("endpoint", "keys", "message"),
    [
        ("http://fcm.googleapis.com/fcm/send/x", None, "varseltjeneste"),
        ("https://evil.example/push", None, "varseltjeneste"),
        ("https://10.0.0.1/push", None, "varseltjeneste"),
        ("", None, "abonnement"),
        ("https://fcm.googleapis.com/fcm/send/x", {"p256dh": "AAAA", "auth": b64(b"0123456789abcdef")}, "nøkkel"),
        (
            "https://fcm.googleapis.com/fcm/send/x",
            {"p256dh": b64(b"\x04" + b"\x01" * 64), "auth": b64(b"x" * 16)},
            "nøkkel",
        ),
        ("https://fcm.googleapis.com/fcm/send/x", {"p256dh": device_keys()["p256dh"], "auth": "short"}, "nøkkel"),
    ],
)
def test_bad_subscriptions_are_refused_in_plain_norwegian(client, kari, login_as, endpoint, keys, message):
    login_as(kari)
    token = csrf_from(client, "/varsler/innstillinger")
    response = client.post(
        "/varsler/enheter", json={"endpoint": endpoint, "keys": keys or device_keys()}, headers={"X-CSRFToken": token}
    )
    assert response.status_code == 400
    assert message in response.json["error"]
    assert db.session.scalar(select(func.count(PushSubscription.id))) == 0


def test_remove_device(client, kari, per, login_as):
    mine = add_device(kari, "https://fcm.googleapis.com/fcm/send/mine")
    theirs = add_device(per, "https://fcm.googleapis.com/fcm/send/theirs")
    events.emit(kari.person_id, "note_released", url="/")
    db.session.commit()
    login_as(kari)
    token = csrf_from(client, "/varsler/innstillinger")
    assert client.post(f"/varsler/enheter/{theirs.id}/fjern", data={"csrf_token": token}).status_code == 404
    assert client.post(f"/varsler/enheter/{mine.id}/fjern", data={"csrf_token": token}).status_code == 303
    assert [s.id for s in db.session.scalars(select(PushSubscription))] == [theirs.id]
    [delivery] = deliveries()
    assert delivery.state is DeliveryState.GONE  # nothing more is sent to a removed device


def test_this_device_turns_push_off(client, kari, login_as):
    add_device(kari, "https://fcm.googleapis.com/fcm/send/this")
    login_as(kari)
    token = csrf_from(client, "/varsler/innstillinger")
    response = client.post(
        "/varsler/enheter/denne/fjern",
        json={"endpoint": "https://fcm.googleapis.com/fcm/send/this"},
        headers={"X-CSRFToken": token},
    )
    assert response.json["removed"] is True
    assert db.session.scalar(select(func.count(PushSubscription.id))) == 0


# -- Preferences -----------------------------------------------------------------------------


def test_save_preferences(client, kari, login_as):
    login_as(kari)
    token = csrf_from(client, "/varsler/innstillinger")
    response = client.post(
        "/varsler/innstillinger",
        data={
            "csrf_token": token,
            "record": "y",
            "offers": "y",
            "quiet_enabled": "y",
            "quiet_start": "21:30",
            "quiet_end": "06:45",
            "offers_break_quiet": "y",
        },
    )
    assert response.status_code == 303
    prefs = db.session.get(NotificationSettings, kari.id)
    assert (prefs.record, prefs.messages, prefs.reminders, prefs.offers) == (True, False, False, True)
    assert (prefs.quiet_start, prefs.quiet_end, prefs.offers_break_quiet) == (time(21, 30), time(6, 45), True)
    assert "Innstillingene for varsler er lagret." in client.get(response.headers["Location"]).get_data(as_text=True)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("", "07:00", "Skriv inn et klokkeslett"),
        ("25:00", "07:00", "Skriv inn et klokkeslett"),
        ("07:00", "07:00", "samme"),
    ],
)
def test_bad_preferences_change_nothing(client, kari, login_as, start, end, message):
    login_as(kari)
    token = csrf_from(client, "/varsler/innstillinger")
    response = client.post(
        "/varsler/innstillinger",
        data={"csrf_token": token, "quiet_enabled": "y", "quiet_start": start, "quiet_end": end},
    )
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.get(NotificationSettings, kari.id) is None


def test_centre_pages_with_vis_eldre(client, kari, login_as):
    from app.notify.services import PAGE_SIZE

    for n in range(PAGE_SIZE + 5):
        events.emit(
            kari.person_id, "note_released", object_type="record_item", object_id=n, url=f"/journal/notater/{n}"
        )
    db.session.commit()
    login_as(kari)
    first = client.get("/varsler").get_data(as_text=True)
    assert first.count('<li class="notice-row') == PAGE_SIZE
    oldest_shown = min(n.id for n in notifications_of(kari)[-PAGE_SIZE:])
    assert f"f%C3%B8r={oldest_shown}" in first or f"før={oldest_shown}" in first
    more = client.get(f"/varsler?før={oldest_shown}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert more.count('<li class="notice-row') == 5 and "<html" not in more


def test_an_item_hidden_from_guardians_is_not_announced_to_parents(kari, ola, org, source, dr_lund):
    from app.staff.services import withhold

    factories.parent_of(kari, ola)
    factories.record(ola, source, results=2, notes=2, years=0.01)
    note = db.session.scalars(
        select(RecordItem).where(RecordItem.person_id == ola.id, RecordItem.kind == ItemKind.NOTE)
    ).first()
    note.hidden_from_guardians = True
    note.release_state = ReleaseState.HELD
    db.session.execute(delete(Notification))  # what the import announced is not what this is about
    db.session.commit()
    assert release(note, by_user_id=None)
    db.session.commit()
    assert not [n for n in notifications_of(kari) if n.object_id == note.id]

    # Hidden after it was announced: the parent's notification goes, with any push not yet sent.
    add_device(kari)
    other = db.session.scalars(
        select(RecordItem).where(
            RecordItem.person_id == ola.id, RecordItem.kind == ItemKind.NOTE, RecordItem.id != note.id
        )
    ).first()
    other.release_state = ReleaseState.HELD
    db.session.commit()
    assert release(other, by_user_id=None)
    db.session.commit()
    assert [n for n in notifications_of(kari) if n.object_id == other.id]
    withhold(other, reason="Barnet ba om det", scope="guardians", by=dr_lund)
    assert not [n for n in notifications_of(kari) if n.object_id == other.id]
    assert deliveries() == []  # the push not yet sent went with it


def test_withholding_from_the_patient_withdraws_every_notification(kari, org, source, dr_lund):

    add_device(kari)
    events.emit(kari.person_id, "note_released", object_type="record_item", object_id=42, url="/journal/notater/42")
    db.session.commit()
    from app.notify.events import withdraw

    withdraw("record_item", 42, guardians_only=False)
    db.session.commit()
    assert notifications_of(kari) == []
    assert deliveries() == []  # cascaded with their notification


def test_tapping_ones_own_notification_while_viewing_a_child(client, kari, ola, org, source, login_as):
    factories.parent_of(kari, ola)
    factories.record(kari.person, source, results=2, notes=1, years=0.01)
    announce_released_result(kari.person_id)
    db.session.commit()
    notice = notifications_of(kari)[-1]
    login_as(kari)
    assert client.post("/profil", data={"csrf_token": csrf_from(client, "/"), "person": ola.id}).status_code == 303
    response = client.get(f"/varsler/{notice.token}")
    assert client.get(response.headers["Location"]).status_code == 200
    assert "Du ser nå journalen til" not in client.get("/").get_data(as_text=True)


def test_an_event_url_is_a_path_inside_varde(kari):
    for url in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        with pytest.raises(ValueError):
            events.emit(kari.person_id, "note_released", url=url)


def test_the_daily_refresh_touches_only_the_accounts_own_device(client, kari, per, login_as, frozen_clock):
    mine = add_device(kari, "https://fcm.googleapis.com/fcm/send/mine")
    add_device(per, "https://fcm.googleapis.com/fcm/send/pers")
    frozen_clock.advance(days=3)
    login_as(kari)
    token = csrf_from(client, "/")
    refresh = {"endpoint": "https://fcm.googleapis.com/fcm/send/mine", "refresh": True}
    assert client.post("/varsler/enheter", json=refresh, headers={"X-CSRFToken": token}).json == {"known": True}
    db.session.refresh(mine)
    assert mine.last_seen_at == frozen_clock.now
    # Per's browser, now used by Kari: not taken over without her tapping "Slå på".
    others = {"endpoint": "https://fcm.googleapis.com/fcm/send/pers", "refresh": True}
    assert client.post("/varsler/enheter", json=others, headers={"X-CSRFToken": token}).json == {"known": False}
    gone = {"endpoint": "https://fcm.googleapis.com/fcm/send/removed", "refresh": True}
    assert client.post("/varsler/enheter", json=gone, headers={"X-CSRFToken": token}).json == {"known": False}
    owners = dict(db.session.execute(select(PushSubscription.endpoint, PushSubscription.account_id)).all())
    assert owners == {
        "https://fcm.googleapis.com/fcm/send/mine": kari.id,
        "https://fcm.googleapis.com/fcm/send/pers": per.id,
    }
