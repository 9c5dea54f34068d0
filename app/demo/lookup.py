"""Finding the demo region's standing places and people again by name (the builders of the
record, the times and the messages each add to a region that may have been built before them)."""

from __future__ import annotations

from sqlalchemy import select

from app.auth.models import Identity, User
from app.db import db
from app.people.models import CareUnit, Organisation, Person


def unit(organisation: str, name: str) -> CareUnit:
    return db.session.scalar(
        select(CareUnit)
        .join(Organisation)
        .where(Organisation.name == organisation, CareUnit.name == name)
        .order_by(CareUnit.id)
    )


def person(given: str, family: str) -> Person:
    return db.session.scalar(
        select(Person).where(Person.given_name == given, Person.family_name == family).order_by(Person.id)
    )


def account(username: str) -> User:
    return db.session.scalar(select(User).join(Identity).where(Identity.subject == username).order_by(User.id))
