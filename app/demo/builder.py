"""`flask demo`: a believable region of Central Norway with synthetic people.

National ids are synthetic (Skatteetaten's test range, month + 80), so none can belong to a real
person, and they are accepted only in demo mode. Running it again changes nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from app import clock
from app.auth.models import Role, StaffMembership, User
from app.auth.services import create_local_user, hash_password
from app.db import db
from app.people.models import CareUnit, Organisation, OrganisationKind, Person, Relation, RelationKind
from app.people.nin import make_nin
from app.record.models import ReleasePolicy, ReleaseRule

DEMO_PASSWORD = "varde-demo"  # noqa: S105 - public on purpose: printed by make run, demo mode only

HOSPITALS = {
    "St. Olavs hospital": [
        "Barne- og ungdomsklinikken",
        "Kreftklinikken",
        "Hjertemedisinsk poliklinikk",
        "Ortopedisk poliklinikk",
        "Kvinneklinikken",
    ],
    "Orkdal sjukehus": ["Medisinsk poliklinikk", "Ortopedisk poliklinikk"],
    "Røros sykehus": ["Medisinsk sengepost", "Poliklinikk"],
    "Sykehuset Levanger": ["Medisinsk klinikk", "Barneavdelingen", "Hørselssentralen"],
    "Sykehuset Namsos": ["Medisinsk klinikk", "Kirurgisk poliklinikk"],
    "Ålesund sjukehus": ["Kreftpoliklinikken", "Barneavdelinga", "Lungepoliklinikken"],
    "Volda sjukehus": ["Medisinsk poliklinikk", "Kirurgisk poliklinikk"],
    "Kristiansund sjukehus": ["Medisinsk poliklinikk", "Føde/gyn poliklinikk"],
    "Molde sjukehus": ["Medisinsk poliklinikk", "Revmatologisk poliklinikk", "Hørselssentralen"],
}
MUNICIPALITIES = {
    "Trondheim kommune": (
        ["Lade legesenter", "Byåsen legekontor", "Moholt legesenter"],
        ["Helsestasjon for ungdom Trondheim", "Lademoen helsestasjon"],
    ),
    "Ålesund kommune": (["Aspøy legesenter", "Moa legesenter"], ["Ålesund helsestasjon"]),
    "Molde kommune": (["Molde legesenter"], ["Molde helsestasjon"]),
    "Kristiansund kommune": (["Kristiansund legesenter"], ["Kristiansund helsestasjon"]),
    "Levanger kommune": (["Levanger legekontor"], ["Levanger helsestasjon"]),
    "Namsos kommune": (["Namsos legesenter"], ["Namsos helsestasjon"]),
    "Røros kommune": (["Røros legekontor"], ["Røros helsestasjon"]),
}
GIVEN_F = [
    "Kari",
    "Ingrid",
    "Anne",
    "Marit",
    "Sigrid",
    "Ingeborg",
    "Nora",
    "Emma",
    "Sara",
    "Maja",
    "Ida",
    "Hanne",
    "Solveig",
    "Astrid",
    "Tone",
    "Liv",
    "Silje",
    "Hilde",
    "Ragnhild",
    "Åse",
]
GIVEN_M = [
    "Ola",
    "Per",
    "Lars",
    "Ole",
    "Jon",
    "Knut",
    "Arne",
    "Bjørn",
    "Jakob",
    "Emil",
    "Noah",
    "Magnus",
    "Håkon",
    "Sindre",
    "Eirik",
    "Trond",
    "Geir",
    "Øystein",
    "Sverre",
    "Tor",
]
FAMILY = [
    "Nordmann",
    "Hansen",
    "Johansen",
    "Olsen",
    "Larsen",
    "Andersen",
    "Pedersen",
    "Nilsen",
    "Kristiansen",
    "Jensen",
    "Berg",
    "Haugen",
    "Hagen",
    "Bakken",
    "Lie",
    "Strand",
    "Moen",
    "Aune",
    "Lund",
    "Solberg",
    "Ødegård",
    "Sæther",
    "Græsli",
    "Rønning",
    "Brekke",
]


@dataclass
class DemoLogin:
    who: str
    username: str


def _age_to_birth(today: date, years: int, extra_days: int) -> date:
    try:
        anchor = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        anchor = today.replace(year=today.year - years, day=28)
    return anchor - timedelta(days=extra_days)


class Builder:
    def __init__(self, seed: int = 2026) -> None:
        self.rng = random.Random(seed)
        self.today = clock.utcnow().date()
        self.used_ids: set[str] = set()
        self.password_hash = hash_password(DEMO_PASSWORD)

    def nin_for(self, birth: date) -> str:
        lo, hi = (0, 499) if birth.year < 2000 else (500, 999)
        while True:
            value = make_nin(birth, self.rng.randint(lo, hi), synthetic=True)
            if value and value not in self.used_ids:
                self.used_ids.add(value)
                return value

    def person(self, given: str, family: str, birth: date) -> Person:
        person = Person(national_id=self.nin_for(birth), given_name=given, family_name=family, birth_date=birth)
        db.session.add(person)
        return person

    def patient_user(self, person: Person, *, demo_skip: bool = True) -> User:
        return create_local_user(
            username=person.national_id,
            password=None,
            password_hash=self.password_hash,
            display_name=person.display_name,
            person=person,
            role=Role.PATIENT,
            is_demo=demo_skip,
        )

    def staff(self, username: str, name: str, role: Role, units: list[CareUnit]) -> User:
        user = create_local_user(
            username=username,
            password=None,
            password_hash=self.password_hash,
            display_name=name,
            role=role,
            is_demo=True,
        )
        for unit in units:
            user.memberships.append(StaffMembership(care_unit=unit))
        return user

    def build(self) -> None:
        units: dict[str, list[CareUnit]] = {}
        for name, unit_names in HOSPITALS.items():
            org = Organisation(name=name, kind=OrganisationKind.HOSPITAL)
            org.care_units = [CareUnit(name=u) for u in unit_names]
            db.session.add(org)
            units[name] = org.care_units
        for name, (gp_offices, stations) in MUNICIPALITIES.items():
            municipality = Organisation(name=name, kind=OrganisationKind.MUNICIPALITY)
            municipality.care_units = [CareUnit(name="Hjemmetjenesten"), CareUnit(name="Tildelingskontoret")]
            db.session.add(municipality)
            for gp in gp_offices:
                org = Organisation(name=gp, kind=OrganisationKind.GP_OFFICE, parent=municipality)
                org.care_units = [CareUnit(name="Fastlegene")]
                db.session.add(org)
                units[gp] = org.care_units
            for station in stations:
                org = Organisation(name=station, kind=OrganisationKind.HEALTH_STATION, parent=municipality)
                org.care_units = [CareUnit(name="Helsesykepleierne")]
                db.session.add(org)
                units[station] = org.care_units

        # The standing family of the tests and the README: Kari with Ola (8) and Ingrid (14).
        kari = self.person("Kari", "Nordmann", _age_to_birth(self.today, 41, 37))
        ola = self.person("Ola", "Nordmann", _age_to_birth(self.today, 8, 120))
        ingrid = self.person("Ingrid", "Nordmann", _age_to_birth(self.today, 14, 200))
        self.parent(kari, ola)
        self.parent(kari, ingrid)
        per = self.person("Per", "Hansen", _age_to_birth(self.today, 67, 12))
        nora = self.person("Nora", "Berg", _age_to_birth(self.today, 29, 90))
        self.patient_user(kari)
        self.patient_user(ingrid)
        self.patient_user(per)
        self.patient_user(nora, demo_skip=False)

        # About 200 patients: families with children of every age, and adults living alone.
        made = 5
        while made < 200:
            family = self.rng.choice(FAMILY)
            adult_age = self.rng.randint(24, 88)
            adult = self.person(
                self.rng.choice(GIVEN_F + GIVEN_M),
                family,
                _age_to_birth(self.today, adult_age, self.rng.randint(0, 364)),
            )
            self.patient_user(adult)
            made += 1
            if 26 <= adult_age <= 55 and self.rng.random() < 0.6:
                partner = None
                if self.rng.random() < 0.7:
                    partner = self.person(
                        self.rng.choice(GIVEN_F + GIVEN_M),
                        family,
                        _age_to_birth(self.today, adult_age + self.rng.randint(-4, 4), self.rng.randint(0, 364)),
                    )
                    self.patient_user(partner)
                    made += 1
                for _child in range(self.rng.randint(1, 3)):
                    child_age = self.rng.randint(0, min(17, adult_age - 20))
                    child = self.person(
                        self.rng.choice(GIVEN_F + GIVEN_M),
                        family,
                        _age_to_birth(self.today, child_age, self.rng.randint(0, 364)),
                    )
                    if child_age >= 12:
                        self.patient_user(child)
                    self.parent(adult, child)
                    if partner is not None:
                        self.parent(partner, child)
                    made += 1

        self.staff("dr.lund", "Dr. Marte Lund", Role.CLINICIAN, units["St. Olavs hospital"][:2])
        self.staff("dr.berg", "Dr. Henrik Berg", Role.CLINICIAN, units["Ålesund sjukehus"][:1])
        self.staff("fastlege.aune", "Dr. Siri Aune", Role.CLINICIAN, units["Lade legesenter"])
        self.staff(
            "helsesykepleier.moen",
            "Helsesykepleier Eva Moen",
            Role.CLINICIAN,
            units["Helsestasjon for ungdom Trondheim"],
        )
        self.staff("merkantil.strand", "Tove Strand", Role.CLERK, units["St. Olavs hospital"])
        self.staff("admin", "Varde-administrator", Role.ADMINISTRATOR, [])
        db.session.flush()
        self.records(kari=kari, ola=ola, ingrid=ingrid, per=per, nora=nora)

    def parent(self, holder: Person, child: Person) -> None:
        """Parental responsibility, as the population register would send it."""
        db.session.add(Relation(holder=holder, subject=child, kind=RelationKind.PARENT))

    def records(self, *, kari: Person, ola: Person, ingrid: Person, per: Person, nora: Person) -> None:
        """Health records sent through the real FHIR ingest, from a hospital, a GP office and a
        health station, with the region's release rules."""
        from app.demo.fhir_bundles import history_bundle
        from app.fhir.clients import create_client
        from app.fhir.ingest import import_bundle

        def org(name: str) -> Organisation:
            return db.session.scalar(select(Organisation).where(Organisation.name == name))

        st_olav, lade, station = org("St. Olavs hospital"), org("Lade legesenter"), org("Lademoen helsestasjon")
        db.session.add_all(
            [
                ReleaseRule(
                    category="pathology",
                    policy=ReleasePolicy.HELD,
                    hold_days=14,
                    description="Patologisvar: legen får 14 dager til å snakke med pasienten først",
                ),
                ReleaseRule(
                    category="imaging",
                    policy=ReleasePolicy.HELD,
                    hold_days=7,
                    description="Bildesvar holdes i 7 dager",
                ),
                ReleaseRule(
                    code="3016-3",
                    organisation=st_olav,
                    policy=ReleasePolicy.CLINICIAN,
                    description="Stoffskifteprøver ved St. Olavs: frigis av behandler",
                ),
            ]
        )
        clients = {
            "stolav": create_client(st_olav, "DIPS Arena, St. Olavs hospital", "stolav-dips")[0],
            "lade": create_client(lade, "Journalsystem, Lade legesenter", "lade-legesenter")[0],
            "station": create_client(station, "Journalsystem, Lademoen helsestasjon", "lademoen-hs")[0],
        }
        db.session.commit()
        plan = [
            (kari, "stolav", 60, 8, 3, "Hjertemedisinsk poliklinikk", "Dr. Marte Lund"),
            (kari, "lade", 40, 6, 5, "Fastlegene", "Dr. Siri Aune"),
            (per, "stolav", 600, 80, 10, "Kreftklinikken", "Dr. Marte Lund"),
            (per, "lade", 80, 10, 6, "Fastlegene", "Dr. Siri Aune"),
            (ingrid, "station", 4, 2, 2, "Helsesykepleierne", "Helsesykepleier Eva Moen"),
            (ola, "station", 3, 2, 2, "Helsesykepleierne", "Helsesykepleier Eva Moen"),
            (nora, "lade", 12, 2, 1, "Fastlegene", "Dr. Siri Aune"),
        ]
        for n, (person, source, results, notes, years, unit, doctor) in enumerate(plan):
            bundle = history_bundle(
                person,
                prefix=f"demo-{source}",
                results=results,
                notes=notes,
                years=years,
                unit=unit,
                doctor=doctor,
                seed=n + 1,
            )
            import_bundle(bundle, clients[source])


def demo_logins() -> list[DemoLogin]:
    """The logins of existing demo data, found again from the database (for `make run`)."""
    logins = []
    for label, given, family in (
        ("Kari Nordmann (pasient, mor til Ola 8 og Ingrid 14)", "Kari", "Nordmann"),
        ("Per Hansen (pasient)", "Per", "Hansen"),
        ("Ingrid Nordmann (ungdom med egen innlogging)", "Ingrid", "Nordmann"),
        ("Nora Berg (pasient – viser oppsett av engangskode)", "Nora", "Berg"),
    ):
        person = db.session.scalar(
            select(Person).where(Person.given_name == given, Person.family_name == family).order_by(Person.id)
        )
        if person:
            logins.append(DemoLogin(label, person.national_id))
    for username, label in (
        ("dr.lund", "Dr. Marte Lund (behandler, St. Olavs hospital)"),
        ("dr.berg", "Dr. Henrik Berg (behandler, Ålesund sjukehus)"),
        ("merkantil.strand", "Tove Strand (merkantil, St. Olavs hospital)"),
        ("admin", "Varde-administrator"),
    ):
        logins.append(DemoLogin(label, username))
    return logins


@click.command("demo")
@with_appcontext
def demo_command() -> None:
    """Build the demo region (once) and print the demo logins."""
    if not current_app.config["DEMO_MODE"]:
        raise click.ClickException("Demo data needs demo mode: set VARDE_DEMO=1 (make run does).")
    exists = db.session.scalar(select(Organisation.id).where(Organisation.name == "St. Olavs hospital"))
    if exists is None:
        builder = Builder()
        builder.build()
        db.session.commit()
        click.echo(f"Demo region built: {db.session.query(Person).count()} persons.")
    print_logins(demo_logins())


def print_logins(logins: list[DemoLogin]) -> None:
    click.echo("")
    click.echo(f"Demo logins (password for all: {DEMO_PASSWORD})")
    click.echo("  Demo accounts skip the second factor in demo mode, except Nora, who shows enrolment.")
    for login in logins:
        click.echo(f"  {login.username:<16} {login.who}")
    click.echo("")
