"""A month's notice before a child's access changes: at 11 years 11 months (from 12 a parent sees
only times and messages with the GP and municipal services) and at 15 years 11 months (from 16 a
parent sees nothing, and the young person has everything).

The daily job (app/tasks.py, ``age_notices``) finds the children whose birthday of 12 or 16 is less
than a month away, by birth date, and for each writes an ``AgeNotice`` row (once per child and
threshold: the job may run any number of times) and an ``access_changes_soon`` event. Who hears of
the event is the access policy's to decide (``notification_recipients``): the parents whose grant
lets them know, and the young person's own account when they may log in.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError

from app import clock
from app.access.policy import PARENT_ACCESS_UNTIL_AGE, PARENT_FULL_ACCESS_UNTIL_AGE
from app.db import db
from app.notify import events
from app.notify.events import Change
from app.people.models import AgeNotice, Person

KIND = "access_changes_soon"
THRESHOLDS = (PARENT_FULL_ACCESS_UNTIL_AGE, PARENT_ACCESS_UNTIL_AGE)  # 12 and 16
NOTICE_MONTHS = 1  # how long before the birthday the notice is written


def shift_months(day: date, months: int) -> date:
    """``day`` moved by whole months (negative: back); a day the month lacks (31 April, 29 February
    in another year) becomes the month's last day, as dateutil's relativedelta does."""
    index = day.year * 12 + (day.month - 1) + months
    year, month0 = divmod(index, 12)
    month = month0 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def birth_range(today: date, threshold: int) -> tuple[date, date]:
    """(after, up to and including): the birth dates of the children who are at least
    ``threshold`` years less ``NOTICE_MONTHS`` months old today, and not yet ``threshold``.

    Not yet ``threshold``: born after ``today`` less ``threshold`` years (``people.age_on``: a child
    born on 29 February has the birthday on 1 March in other years). At least 11 years 11 months:
    born on or before ``today`` less 11 years 11 months."""
    return shift_months(today, -12 * threshold), shift_months(today, -(12 * threshold - NOTICE_MONTHS))


def birthday(birth: date, age: int) -> date:
    """The day someone born on ``birth`` turns ``age`` (29 February: 1 March in other years)."""
    try:
        return birth.replace(year=birth.year + age)
    except ValueError:
        return date(birth.year + age, 3, 1)


def _start_of_day_utc(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=clock.NORWAY).astimezone(UTC)


def change_url(threshold: int) -> str:
    """The page that explains what changes (generic: nothing about the child on it)."""
    return f"/tilgang/endring/{threshold}"


def due(today: date, threshold: int) -> list[tuple[int, date]]:
    """(person id, birth date) of the children due a notice for ``threshold`` today and not given
    one: one query by birth date."""
    after, up_to = birth_range(today, threshold)
    noticed = exists().where(AgeNotice.person_id == Person.id, AgeNotice.threshold == threshold)
    rows = db.session.execute(
        select(Person.id, Person.birth_date)
        .where(Person.birth_date > after, Person.birth_date <= up_to, ~noticed)
        .order_by(Person.birth_date, Person.id)
    ).all()
    return [(person_id, birth) for person_id, birth in rows]


def write_age_notices(today: date | None = None) -> int:
    """Write the notices due today (Norwegian date): for each child, the ``AgeNotice`` row and the
    event with its notifications, all in one transaction, committed here. Returns how many
    children were given notice. Running it again the same day writes nothing.

    ``today`` chooses the children; who may hear of it is decided by the policy for the real
    today (``clock.today_in_norway``), so a test moves the clock rather than passing a date."""
    today = today or clock.today_in_norway()
    # Each with when its push is worth nothing any more: the change itself (the birthday).
    notices: list[tuple[AgeNotice, datetime]] = [
        (
            AgeNotice(person_id=person_id, threshold=threshold, created_at=clock.utcnow()),
            _start_of_day_utc(birthday(birth, threshold)),
        )
        for threshold in THRESHOLDS
        for person_id, birth in due(today, threshold)
    ]
    if not notices:
        return 0
    db.session.add_all([n for n, _expires in notices])
    try:
        db.session.flush()  # the notices' ids, for the events
        events.emit_many(
            [
                Change(
                    n.person_id,
                    KIND,
                    object_type="age_notice",
                    object_id=n.id,
                    url=change_url(n.threshold),
                    data={"threshold": n.threshold},
                    expires_at=expires,
                )
                for n, expires in notices
            ]
        )
        db.session.commit()
    except IntegrityError:
        # Another run (a second worker) wrote them first: theirs stand, nothing here is written.
        db.session.rollback()
        return 0
    return len(notices)
