"""`flask demo` builds a believable region once, only in demo mode, and prints the logins."""

from __future__ import annotations

from sqlalchemy import func, select

from app.auth.models import Role, User
from app.db import db
from app.people.models import Organisation, OrganisationKind, Person
from app.people.nin import parse_nin


def _count(stmt):
    return db.session.scalar(select(func.count()).select_from(stmt.subquery()))


def test_it_refuses_outside_demo_mode(app):
    result = app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code != 0
    assert "VARDE_DEMO=1" in result.output
    assert db.session.scalar(select(func.count()).select_from(Person)) == 0


def test_it_builds_the_region_and_prints_logins(app):
    app.config["DEMO_MODE"] = True
    result = app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "varde-demo" in result.output and "dr.lund" in result.output

    assert _count(select(Organisation).where(Organisation.kind == OrganisationKind.HOSPITAL)) == 9
    assert _count(select(Organisation).where(Organisation.kind == OrganisationKind.MUNICIPALITY)) >= 5
    assert _count(select(Organisation).where(Organisation.kind == OrganisationKind.GP_OFFICE)) >= 5
    assert _count(select(Organisation).where(Organisation.kind == OrganisationKind.HEALTH_STATION)) >= 5
    persons = db.session.scalars(select(Person)).all()
    assert 190 <= len(persons) <= 220
    # Every id is synthetic: valid only in demo mode, so none can belong to a real person.
    assert all(parse_nin(p.national_id, allow_synthetic=True).synthetic for p in persons)
    ages = {p.age_on(p.created_at.date()) for p in persons}
    assert any(a < 12 for a in ages) and any(12 <= a < 16 for a in ages) and any(16 <= a < 18 for a in ages)
    roles = set(db.session.scalars(select(User.role)).all())
    assert {Role.PATIENT, Role.CLINICIAN, Role.CLERK, Role.ADMINISTRATOR} <= roles
    kari = db.session.scalar(select(Person).where(Person.given_name == "Kari", Person.family_name == "Nordmann"))
    assert kari.national_id in result.output

    again = app.test_cli_runner().invoke(args=["demo"])
    assert again.exit_code == 0
    assert db.session.scalar(select(func.count()).select_from(Person)) == len(persons)  # nothing twice
