"""Factories for test data (factory_boy), and helpers that build whole actors."""

from __future__ import annotations

import hashlib
import itertools
import secrets
import zlib
from dataclasses import dataclass
from datetime import date, timedelta

import factory
import pyotp
from flask.testing import FlaskClient

from app import clock
from app.auth.models import Identity, IdentityProvider, Role, ServerSession, User
from app.auth.services import hash_password
from app.db import db
from app.people.models import CareUnit, Organisation, OrganisationKind, Person
from app.people.nin import make_nin

PASSWORD = "riktig-hest-batteri-stift"
_individual = itertools.count(100)


def nin_for(birth: date) -> str:
    """A valid (non-synthetic) number for a birth date: the suite never needs demo mode for ids."""
    while True:
        individual = next(_individual) % 500 if birth.year < 2000 else 500 + next(_individual) % 400
        value = make_nin(birth, individual)
        if value:
            return value


class Base(factory.alchemy.SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "commit"


class OrganisationFactory(Base):
    class Meta:
        model = Organisation

    name = factory.Sequence(lambda n: f"Sykehus {n}")
    kind = OrganisationKind.HOSPITAL


class CareUnitFactory(Base):
    class Meta:
        model = CareUnit

    name = factory.Sequence(lambda n: f"Poliklinikk {n}")
    organisation = factory.SubFactory(OrganisationFactory)


class PersonFactory(Base):
    class Meta:
        model = Person

    given_name = "Test"
    family_name = factory.Sequence(lambda n: f"Person{n}")
    birth_date = date(1980, 5, 17)
    national_id = factory.LazyAttribute(lambda o: nin_for(o.birth_date))


def birth_for_age(age: int) -> date:
    today = clock.utcnow().date()
    return today.replace(year=today.year - age) - timedelta(days=30)


def patient(given: str, family: str, *, age: int, username: str, with_totp: bool) -> User:
    person = PersonFactory(given_name=given, family_name=family, birth_date=birth_for_age(age))
    user = User(
        display_name=f"{given} {family}", person=person, role=Role.PATIENT, password_hash=hash_password(PASSWORD)
    )
    # Patients log in with their national id; the short username keeps tests readable.
    user.identities.append(Identity(provider=IdentityProvider.LOCAL, subject=person.national_id))
    user.identities.append(Identity(provider=IdentityProvider.LOCAL, subject=username))
    if with_totp:
        user.totp_secret = pyotp.random_base32()
        user.totp_enabled_at = clock.utcnow()
    db.session.add(user)
    db.session.commit()
    return user


def staff(username: str, name: str, role: Role = Role.CLINICIAN) -> User:
    user = User(display_name=name, role=role, password_hash=hash_password(PASSWORD))
    user.identities.append(Identity(provider=IdentityProvider.LOCAL, subject=username))
    user.totp_secret = pyotp.random_base32()
    user.totp_enabled_at = clock.utcnow()
    db.session.add(user)
    db.session.commit()
    return user


def totp_now(user: User) -> str:
    return pyotp.TOTP(user.totp_secret).at(clock.utcnow())


def session_for(user: User, client: FlaskClient) -> str:
    """Insert a server-side session for user and hand its cookie to the client. Returns the token."""
    token = secrets.token_urlsafe(32)
    now = clock.utcnow()
    db.session.add(
        ServerSession(
            id=hashlib.sha256(token.encode()).hexdigest(),
            user_id=user.id,
            data={"_user_id": str(user.id), "_fresh": True},
            created_at=now,
            authenticated_at=now,
            last_seen_at=now,
        )
    )
    db.session.commit()
    client.set_cookie("__Host-varde", token, secure=True, httponly=True, samesite="Lax")
    return token


def hospital(name: str = "St. Olavs hospital", kind: OrganisationKind = OrganisationKind.HOSPITAL) -> Organisation:
    org = Organisation(name=name, kind=kind)
    org.care_units = [CareUnit(name="Medisinsk poliklinikk")]
    db.session.add(org)
    db.session.commit()
    return org


def fhir_client(org: Organisation, source: str = "stolav-dips"):  # type: ignore[no-untyped-def]
    """A source system for ``org``; returns (client, token)."""
    from app.fhir.clients import create_client

    client, token = create_client(org, f"EPJ {org.name}", source)
    db.session.commit()
    return client, token


def works_at(user: User, org: Organisation) -> None:
    from app.auth.models import StaffMembership

    db.session.add(StaffMembership(user_id=user.id, care_unit_id=org.care_units[0].id))
    db.session.commit()


def record(person: Person, client, *, results: int = 12, notes: int = 3, years: float = 2, prefix: str = "t"):  # type: ignore[no-untyped-def]
    """Give ``person`` a record from ``client`` through the real ingest. Returns the ImportResult."""
    from app.demo.fhir_bundles import history_bundle
    from app.fhir.ingest import import_bundle

    # The same data on SQLite and PostgreSQL (ids differ between them): seed by name, not id.
    seed = zlib.crc32(f"{prefix}-{person.given_name}".encode())
    return import_bundle(
        history_bundle(person, prefix=prefix, results=results, notes=notes, years=years, seed=seed), client
    )


def parent_of(parent: User, child: Person) -> None:
    """Register ``parent`` as holding parental responsibility for ``child`` (as the population
    register or staff would)."""
    from app.people.models import Relation, RelationKind

    db.session.add(Relation(holder_id=parent.person_id, subject_id=child.id, kind=RelationKind.PARENT))
    db.session.commit()


# --- appointments --------------------------------------------------------------------------------


@dataclass
class Clinic:
    org: Organisation
    unit: CareUnit
    location: object
    visit_type: object
    schedule: object


def clinic(
    org: Organisation | None = None,
    *,
    name: str = "Service på høreapparat",
    self_bookable: bool = True,
    requires_referral: bool = False,
    min_age: int | None = None,
    max_age: int | None = None,
    cutoff_hours: int | None = None,
    phone: str | None = "73 86 00 00",
    modes: str = "in_person,video",
) -> Clinic:
    """A care unit with a place, a visit type and a schedule open every day 06:00–22:00."""
    from datetime import time

    from app.appointments.models import Location, OpeningHours, Schedule, VisitType

    org = org or hospital()
    unit = org.care_units[0] if org.care_units else CareUnit(name="Poliklinikk", organisation=org)
    location = Location(
        organisation_id=org.id,
        name="Hørselssentralen",
        address="Prinsesse Kristinas gate 3",
        postal_code="7030",
        city="Trondheim",
        latitude=63.4213,
        longitude=10.3879,
        directions="Inngang B, 2. etasje",
        phone=phone,
    )
    visit_type = VisitType(
        care_unit=unit,
        name=name,
        preparation="Ta med høreapparatet og laderen.",
        price_nok=0,
        minutes=30,
        modes=modes,
        self_bookable=self_bookable,
        requires_referral=requires_referral,
        min_age=min_age,
        max_age=max_age,
        cancel_cutoff_hours=cutoff_hours,
    )
    db.session.add_all([location, visit_type])
    db.session.flush()
    schedule = Schedule(care_unit=unit, name="Audiograf 1", practitioner="Audiograf Siri Moe", location_id=location.id)
    schedule.hours = [OpeningHours(weekday=d, opens=time(6), closes=time(22)) for d in range(7)]
    db.session.add(schedule)
    db.session.commit()
    return Clinic(org, unit, location, visit_type, schedule)


def local_time(days: int, hour: int, minute: int = 0):  # type: ignore[no-untyped-def]
    """Norwegian wall time ``days`` from today at hour:minute, as an aware UTC datetime."""
    from datetime import UTC, datetime, time

    day = clock.today_in_norway() + timedelta(days=days)
    return datetime.combine(day, time(hour, minute), tzinfo=clock.NORWAY).astimezone(UTC)


def norwegian_time(hour: int, minute: int = 0):  # type: ignore[no-untyped-def]
    """Today at hour:minute Norwegian time (a daytime or a night moment for a frozen clock)."""
    return local_time(0, hour, minute)


def slot(c: Clinic, *, days: int = 7, hour: int = 10, minute: int = 0, minutes: int = 30, visit_type=None):  # type: ignore[no-untyped-def]
    from app.appointments.models import Mode, Slot, SlotState

    s = Slot(
        schedule_id=c.schedule.id,
        visit_type_id=(visit_type or c.visit_type).id,
        start=local_time(days, hour, minute),
        minutes=minutes,
        mode=Mode.IN_PERSON,
        location_id=c.location.id,
        state=SlotState.FREE,
    )
    db.session.add(s)
    db.session.commit()
    return s


def booked(person: Person, s, *, created_days_ago: int = 30):  # type: ignore[no-untyped-def]
    """An appointment holding slot ``s`` (as staff booked it a while ago), made the way Varde makes
    one on a slot."""
    from app.appointments.models import Channel, SlotState
    from app.appointments.services import _appointment_on

    s.state = SlotState.BOOKED
    a = _appointment_on(s, person, Channel.STAFF, None)
    a.created_at = clock.utcnow() - timedelta(days=created_days_ago)
    db.session.commit()
    return a


def waiting(a, *, priority: int = 0, since_days: int = 10, weekdays: int = 0b1111111, notice_hours: int = 1):  # type: ignore[no-untyped-def]
    """Put appointment ``a`` on the waiting list for an earlier time (any day, 06–22)."""
    from datetime import time

    from app.appointments.models import WaitlistEntry

    e = WaitlistEntry(
        appointment_id=a.id,
        person_id=a.person_id,
        visit_type_id=a.visit_type_id,
        care_unit_id=a.care_unit_id,
        current_start=a.start,
        weekdays=weekdays,
        earliest=time(6),
        latest=time(22),
        notice_hours=notice_hours,
        priority=priority,
        created_at=clock.utcnow() - timedelta(days=since_days),
    )
    db.session.add(e)
    db.session.commit()
    return e


# --- messages ------------------------------------------------------------------------------------


def message_unit(
    name: str = "Lade legesenter",
    *,
    kind: OrganisationKind = OrganisationKind.GP_OFFICE,
    accepts: bool = True,
    answer_days: int = 3,
) -> CareUnit:
    """A care unit that takes messages (or says it does not), in an organisation of its own."""
    from app.messages.models import MessageInbox

    org = Organisation(name=name, kind=kind)
    unit = CareUnit(name=f"{name} team", organisation=org)
    db.session.add_all([org, unit])
    db.session.flush()
    db.session.add(MessageInbox(care_unit_id=unit.id, accepts_messages=accepts, answer_days=answer_days))
    db.session.commit()
    return unit


def gp_of(person: Person, unit: CareUnit) -> None:
    """``person`` is on the list of the GP office ``unit`` (a relation that lets them write)."""
    from app.people.models import UnitRelation, UnitRelationKind

    db.session.add(UnitRelation(person_id=person.id, care_unit_id=unit.id, kind=UnitRelationKind.GP))
    db.session.commit()


def member_of(user: User, unit: CareUnit) -> None:
    from app.auth.models import StaffMembership

    db.session.add(StaffMembership(user_id=user.id, care_unit_id=unit.id))
    db.session.commit()


def conversation(author: User, patient: Person, unit: CareUnit, body: str = "Hei, jeg lurer på noe.", **kw):  # type: ignore[no-untyped-def]
    """A conversation started through the service, as the patient's page would."""
    from app.access import policy
    from app.messages import attachments, services

    decision = policy._decide_messages(author, patient)
    assert decision is not None
    c = services.start(
        author,
        patient,
        decision,
        choice=services.unit_choice(patient, unit.id),
        topic=kw.get("topic", "treatment"),
        subject=kw.get("subject", "Spørsmål om blodtrykket"),
        body=body,
        uploads=kw.get("uploads", []),
        refers_to_id=kw.get("refers_to_id"),
        stored=attachments.Stored(),
    )
    db.session.commit()
    return c
