"""A month's notice before a child's access changes: at 11 years 11 months (parents keep only GP
and municipal times and messages from 12) and at 15 years 11 months (parents lose access at 16),
to the parents and to the young person when they may log in; once per child and threshold."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from app.access import policy
from app.db import db
from app.notify.kinds import text_for
from app.notify.models import Event, Notification, PushDelivery, PushSubscription
from app.people.models import AgeNotice
from app.people.notices import KIND, birth_range, birthday, shift_months, write_age_notices
from app.tasks import age_notices
from tests import factories


def on(frozen_clock, day: date) -> date:
    """Move the clock to 10:00 UTC on ``day`` (the same date in Norway)."""
    frozen_clock.now = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    return day


def child(birth: date, given: str = "Emma", *, username: str | None = None):
    """A child born on ``birth``: with a login of their own (a User) when ``username`` is given,
    else only a Person."""
    if username is None:
        return factories.PersonFactory(given_name=given, family_name="Nordmann", birth_date=birth)
    user = factories.patient(given, "Nordmann", age=10, username=username, with_totp=True)
    user.person.birth_date = birth
    db.session.commit()
    return user


def notices() -> list[tuple[int, int]]:
    return sorted(tuple(row) for row in db.session.execute(select(AgeNotice.person_id, AgeNotice.threshold)))


def heard(user) -> list[tuple[int, str, str | None]]:
    return [
        tuple(row)
        for row in db.session.execute(
            select(Notification.subject_person_id, Notification.kind, Notification.url)
            .where(Notification.account_id == user.id)
            .order_by(Notification.id)
        )
    ]


def test_months_are_counted_on_the_calendar():
    assert shift_months(date(2025, 3, 10), -143) == date(2013, 4, 10)  # 11 years 11 months
    assert shift_months(date(2025, 3, 31), -1) == date(2025, 2, 28)
    assert shift_months(date(2024, 3, 31), -1) == date(2024, 2, 29)
    assert shift_months(date(2024, 2, 29), -12) == date(2023, 2, 28)
    assert shift_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert shift_months(date(2025, 12, 15), 1) == date(2026, 1, 15)
    assert birth_range(date(2025, 3, 10), 12) == (date(2013, 3, 10), date(2013, 4, 10))
    assert birth_range(date(2025, 3, 10), 16) == (date(2009, 3, 10), date(2009, 4, 10))
    assert birthday(date(2012, 2, 29), 12) == date(2024, 2, 29)
    assert birthday(date(2012, 2, 29), 13) == date(2025, 3, 1)  # as people.age_on counts it


def test_the_parent_hears_at_11_years_11_months_and_the_page_explains(frozen_clock, client, login_as, kari):
    on(frozen_clock, date(2025, 3, 10))
    emma = child(date(2013, 4, 10))  # 11 years 11 months today: 12 on 10 April
    factories.parent_of(kari, emma)

    assert write_age_notices() == 1

    assert notices() == [(emma.id, 12)]
    assert heard(kari) == [(emma.id, KIND, "/tilgang/endring/12")]
    event = db.session.scalar(select(Event).where(Event.kind == KIND))
    assert event.person_id == emma.id
    assert event.data == {"threshold": 12}
    # The lock screen says whose, never what.
    assert text_for(KIND, "Emma") == "Tilgangen til journalen til Emma endres snart"
    assert text_for(KIND) == "Tilgangen til journalen din endres snart"

    login_as(kari)
    page = client.get("/tilgang/endring/12")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Fra 12 år kan foreldre bare se timer og meldinger hos fastlegen og kommunale tjenester" in html
    assert "Prøvesvar, resepter, henvisninger, dokumenter fra sykehus og notater vises ikke lenger" in html
    assert "egen innlogging" in html
    assert "Emma" not in html  # generic: nothing about the child


def test_a_child_with_an_account_at_11_years_11_months_is_not_told_as_they_cannot_log_in_yet(frozen_clock, kari):
    """The policy tells a person's own account only when they may log in (``own_grant``): an
    11-year-old may not (tests/test_youth_login.py), so only the parent hears at 12."""
    on(frozen_clock, date(2025, 3, 10))
    emma = child(date(2013, 4, 10), username="emma")
    factories.parent_of(kari, emma.person)

    assert write_age_notices() == 1

    assert heard(kari) == [(emma.person_id, KIND, "/tilgang/endring/12")]
    assert heard(emma) == []
    assert notices() == [(emma.person_id, 12)]


def test_no_notice_before_11_years_11_months_or_from_12(frozen_clock, kari):
    on(frozen_clock, date(2025, 3, 10))
    younger = child(date(2013, 5, 10), "Eldar")  # 11 years 10 months
    a_day_short = child(date(2013, 4, 11), "Frida")  # 11 years 11 months tomorrow
    twelve = child(date(2013, 3, 10), "Gunn")  # 12 today: the change has happened
    for c in (younger, a_day_short, twelve):
        factories.parent_of(kari, c)

    assert write_age_notices() == 0
    assert notices() == []
    assert heard(kari) == []

    on(frozen_clock, date(2025, 3, 11))
    assert write_age_notices() == 1
    assert notices() == [(a_day_short.id, 12)]


def test_a_notice_is_written_once(frozen_clock, kari):
    on(frozen_clock, date(2025, 3, 10))
    emma = child(date(2013, 4, 1))
    factories.parent_of(kari, emma)

    assert age_notices.call_local() == 1  # the worker's daily task
    assert write_age_notices() == 0  # the same day again
    on(frozen_clock, date(2025, 3, 20))
    assert write_age_notices() == 0  # a later day of the month before the birthday
    assert notices() == [(emma.id, 12)]
    assert len(heard(kari)) == 1
    assert db.session.scalar(select(func.count()).select_from(Event).where(Event.kind == KIND)) == 1


def test_at_15_years_11_months_the_young_person_and_the_parent_hear(frozen_clock, client, login_as, kari):
    on(frozen_clock, date(2025, 3, 10))
    ingrid = child(date(2009, 4, 10), "Ingrid", username="ingrid")  # 16 on 10 April
    factories.parent_of(kari, ingrid.person)
    assert policy.grants_over([ingrid.person_id])[(kari.person_id, ingrid.person_id)].primary_care_only

    assert write_age_notices() == 1

    assert notices() == [(ingrid.person_id, 16)]
    assert heard(ingrid) == [(ingrid.person_id, KIND, "/tilgang/endring/16")]
    assert heard(kari) == [(ingrid.person_id, KIND, "/tilgang/endring/16")]

    login_as(ingrid)
    html = client.get("/tilgang/endring/16").get_data(as_text=True)
    assert "Fra 16 år har foreldre ikke lenger tilgang" in html
    assert "full tilgang til journalen din selv" in html
    assert "fullmakt" in html


def test_a_child_without_a_parent_relation_hears_only_their_own(frozen_clock, kari, per):
    on(frozen_clock, date(2025, 3, 10))
    lone = child(date(2009, 3, 20), "Lone", username="lone")
    other = child(date(2009, 3, 25), "Olav")  # no account, no parent in Varde: nobody to tell
    factories.parent_of(kari, other)  # Kari is Olav's parent, not Lone's

    assert write_age_notices() == 2

    assert heard(lone) == [(lone.person_id, KIND, "/tilgang/endring/16")]
    assert heard(kari) == [(other.id, KIND, "/tilgang/endring/16")]
    assert heard(per) == []
    assert notices() == sorted([(lone.person_id, 16), (other.id, 16)])


def test_a_young_person_who_objected_is_told_but_not_the_parents(frozen_clock, kari):
    on(frozen_clock, date(2025, 3, 10))
    ingrid = child(date(2009, 4, 1), "Ingrid", username="ingrid")
    factories.parent_of(kari, ingrid.person)
    ingrid.person.objects_to_parents_at = frozen_clock.now
    db.session.commit()

    assert write_age_notices() == 1

    assert len(heard(ingrid)) == 1
    assert heard(kari) == []


def test_without_youth_access_a_15_year_old_is_not_told_but_the_parent_is(app, monkeypatch, frozen_clock, kari):
    monkeypatch.setitem(app.config, "YOUTH_OWN_ACCESS_FROM_AGE", None)
    on(frozen_clock, date(2025, 3, 10))
    ingrid = child(date(2009, 4, 1), "Ingrid", username="ingrid")
    factories.parent_of(kari, ingrid.person)

    assert write_age_notices() == 1

    assert heard(ingrid) == []  # may log in only from 16
    assert len(heard(kari)) == 1


def test_both_thresholds_in_one_run(frozen_clock, kari):
    on(frozen_clock, date(2025, 3, 10))
    emma = child(date(2013, 3, 31))
    ingrid = child(date(2009, 3, 31), "Ingrid")
    factories.parent_of(kari, emma)
    factories.parent_of(kari, ingrid)

    assert write_age_notices() == 2

    assert notices() == sorted([(emma.id, 12), (ingrid.id, 16)])
    assert sorted(url for _s, _k, url in heard(kari)) == ["/tilgang/endring/12", "/tilgang/endring/16"]


@pytest.mark.parametrize("threshold", [12, 16])
def test_a_29_february_child_is_told_a_month_before_their_birthday(frozen_clock, kari, threshold):
    birth = date(2024 - threshold, 2, 29)  # 2012 or 2008: the birthday is on 29 February 2024
    leap = child(birth, "Sunniva")
    factories.parent_of(kari, leap)

    on(frozen_clock, date(2024, 1, 28))
    assert write_age_notices() == 0
    on(frozen_clock, date(2024, 1, 29))  # 29 February less a month
    assert write_age_notices() == 1
    assert notices() == [(leap.id, threshold)]
    assert len(heard(kari)) == 1
    event = db.session.scalar(select(Event).where(Event.kind == KIND))
    assert event.object_type == "age_notice"


def test_on_29_february_the_birthday_child_is_not_told_and_the_next_month_is(frozen_clock, kari):
    on(frozen_clock, date(2024, 2, 29))
    leap = child(date(2012, 2, 29), "Sunniva")  # 12 today
    march = child(date(2012, 3, 29), "Mari")  # 12 in a month
    factories.parent_of(kari, leap)
    factories.parent_of(kari, march)

    assert write_age_notices() == 1
    assert notices() == [(march.id, 12)]


def test_birthdays_on_a_day_february_lacks_are_told_on_1_march(frozen_clock, kari):
    """11 years 11 months before 30 and 31 March is a day February has not: the notice comes on
    1 March (a day or two under a month before), never not at all."""
    thirty = child(date(2013, 3, 30), "Tone")
    thirty_one = child(date(2013, 3, 31), "Trine")
    twenty_eight = child(date(2013, 3, 28), "Tora")
    for c in (thirty, thirty_one, twenty_eight):
        factories.parent_of(kari, c)

    on(frozen_clock, date(2025, 2, 28))
    assert write_age_notices() == 1
    assert notices() == [(twenty_eight.id, 12)]
    on(frozen_clock, date(2025, 3, 1))
    assert write_age_notices() == 2
    assert notices() == sorted([(twenty_eight.id, 12), (thirty.id, 12), (thirty_one.id, 12)])


def test_the_push_is_not_sent_after_the_birthday(frozen_clock, kari):
    on(frozen_clock, date(2025, 3, 10))
    emma = child(date(2013, 4, 10))
    factories.parent_of(kari, emma)
    db.session.add(
        PushSubscription(account_id=kari.id, endpoint="https://push.example/k", p256dh="k", auth="a", label="t")
    )
    db.session.commit()

    write_age_notices()

    delivery = db.session.scalar(select(PushDelivery))
    expires = delivery.expires_at if delivery.expires_at.tzinfo else delivery.expires_at.replace(tzinfo=UTC)
    # Midnight in Norway as Emma turns 12 (summer time): 22:00 UTC the day before.
    assert expires == datetime(2025, 4, 9, 22, tzinfo=UTC)


def test_the_change_page_needs_login_and_a_known_threshold(client, login_as, kari):
    assert client.get("/tilgang/endring/12").status_code in (302, 303)
    login_as(kari)
    assert client.get("/tilgang/endring/12").status_code == 200
    assert client.get("/tilgang/endring/16").status_code == 200
    assert client.get("/tilgang/endring/13").status_code == 404
    assert client.get("/tilgang/endring/0").status_code == 404


def test_the_change_page_where_the_region_has_no_youth_access(app, monkeypatch, client, login_as, kari):
    monkeypatch.setitem(app.config, "YOUTH_OWN_ACCESS_FROM_AGE", None)
    login_as(kari)
    html = client.get("/tilgang/endring/12").get_data(as_text=True)
    assert "Du kan logge inn i Varde selv fra du er 16 år." in html
    assert "egen innlogging" not in html


def test_the_notices_can_be_written_by_hand(app, frozen_clock, kari):
    on(frozen_clock, date(2025, 3, 10))
    factories.parent_of(kari, child(date(2013, 4, 1)))

    result = app.test_cli_runner().invoke(args=["people", "age-notices"])

    assert result.exit_code == 0, result.output
    assert "1 age notices written" in result.output
    assert len(heard(kari)) == 1
