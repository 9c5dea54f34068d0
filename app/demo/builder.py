"""`flask demo`: a believable region of Central Norway with synthetic people.

National ids are synthetic (Skatteetaten's test range, month + 80), so none can belong to a real
person, and they are accepted only in demo mode. Running it again changes nothing, except that a
region built before appointments existed gets its places, visit types and times once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from app import clock
from app.appointments.models import (
    Appointment,
    AppointmentStatus,
    Channel,
    Location,
    Mode,
    OpeningHours,
    Schedule,
    Slot,
    SlotState,
    VisitType,
    WaitlistEntry,
)
from app.auth.models import Role, StaffMembership, User
from app.auth.services import create_local_user, hash_password
from app.db import db
from app.demo import lookup
from app.demo import messages as demo_messages
from app.demo import relatives as demo_relatives
from app.messages.models import MessageInbox
from app.people.models import CareUnit, Organisation, OrganisationKind, Person, Relation, RelationKind, age_on
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


# -- Appointments: places, visit types and schedules ----------------------------------------------
# Addresses and phone numbers look real but are made up for the demo: do not call or go there.


@dataclass(frozen=True)
class PlaceSpec:
    key: str
    organisation: str
    name: str
    address: str
    postal_code: str
    city: str
    latitude: float
    longitude: float
    directions: str
    phone: str


@dataclass(frozen=True)
class VisitTypeSpec:
    key: str
    organisation: str
    unit: str
    name: str
    description: str
    preparation: str
    minutes: int
    price_nok: int | None
    price_note: str | None = None
    modes: str = Mode.IN_PERSON.value
    self_bookable: bool = False
    requires_referral: bool = False
    min_age: int | None = None
    max_age: int | None = None
    cancel_cutoff_hours: int | None = None


Period = tuple[tuple[int, ...], time, time]  # weekdays (0 = Monday), from, to: Norwegian wall time


@dataclass(frozen=True)
class ScheduleSpec:
    key: str
    visit_type: str
    name: str
    practitioner: str
    place: str
    hours: tuple[Period, ...]  # opening hours
    runs: tuple[tuple[Period, Mode], ...]  # where inside them slots are made, back to back
    booked: float  # about this share of the coming slots is taken by other patients (more the sooner)


MON_FRI = (0, 1, 2, 3, 4)
DAYTIME: tuple[Period, ...] = ((MON_FRI, time(8), time(15, 30)),)
SLOT_WEEKS = 6

PLACES = [
    PlaceSpec(
        "hjerte",
        "St. Olavs hospital",
        "St. Olavs hospital, Hjerte-lunge-senteret",
        "Prinsesse Kristinas gate 3",
        "7030",
        "Trondheim",
        63.42081,
        10.38829,
        "Hovedinngangen i Hjerte-lunge-senteret, 2. etasje. Registrer deg i ankomstautomaten før du setter deg"
        " på venterommet.",
        "72 82 60 10",
    ),
    PlaceSpec(
        "pusterom",
        "St. Olavs hospital",
        "Pusterommet, Kreftsenteret",
        "Prinsesse Kristinas gate 5",
        "7030",
        "Trondheim",
        63.42152,
        10.38695,
        "Inngang A i Kreftsenteret, underetasjen. Garderober og dusj ved siden av treningssalen.",
        "72 82 64 40",
    ),
    PlaceSpec(
        "horsel",
        "Sykehuset Levanger",
        "Sykehuset Levanger, Hørselssentralen",
        "Kirkegata 2",
        "7600",
        "Levanger",
        63.74540,
        11.29915,
        "Hovedinngangen, følg skiltene til Hørselssentralen i 1. etasje, fløy C.",
        "74 09 81 20",
    ),
    PlaceSpec(
        "lade",
        "Lade legesenter",
        "Lade legesenter",
        "Haakon VIIs gate 9",
        "7041",
        "Trondheim",
        63.44297,
        10.44183,
        "Inngang B, 2. etasje. Heis fra parkeringskjelleren. Meld deg i resepsjonen.",
        "73 86 00 00",
    ),
    PlaceSpec(
        "hfu",
        "Helsestasjon for ungdom Trondheim",
        "Helsestasjon for ungdom Trondheim",
        "Kongens gate 30",
        "7012",
        "Trondheim",
        63.43048,
        10.39271,
        "Inngang fra bakgården, 3. etasje. Ring på, så kommer vi og henter deg.",
        "73 86 12 50",
    ),
    PlaceSpec(
        "lademoen",
        "Lademoen helsestasjon",
        "Lademoen skole, helsesykepleierens kontor",
        "Biskop Darres gate 12",
        "7044",
        "Trondheim",
        63.43528,
        10.41702,
        "Hovedinngangen til skolen, kontoret ligger i 1. etasje ved siden av biblioteket.",
        "73 86 14 80",
    ),
]

VISIT_TYPES = [
    VisitTypeSpec(
        "hfu",
        "Helsestasjon for ungdom Trondheim",
        "Helsesykepleierne",
        "Helsestasjon for ungdom",
        "Snakk med helsesykepleier eller lege om prevensjon, sex, kropp, rus eller hvordan du har det."
        " Du trenger ikke henvisning, og vi har taushetsplikt.",
        "Du trenger ikke ta med noe. Skal du teste deg for klamydia, bør du ikke ha tisset den siste timen"
        " før du kommer.",
        30,
        0,
        "Ingen henvisning trengs.",
        self_bookable=True,
        min_age=12,
        max_age=25,
        cancel_cutoff_hours=2,
    ),
    VisitTypeSpec(
        "horsel",
        "Sykehuset Levanger",
        "Hørselssentralen",
        "Service på høreapparat",
        "Audiografen rengjør, sjekker og justerer høreapparatet ditt. Bestill time hvis apparatet piper,"
        " lyder svakt eller ikke sitter godt.",
        "Ta med høreapparatet og laderen. Har du fjernkontroll eller tilleggsutstyr, ta med det også.",
        20,
        0,
        "Ingen egenandel for service og justering av høreapparatet.",
        self_bookable=True,
        min_age=18,
    ),
    VisitTypeSpec(
        "pusterom",
        "St. Olavs hospital",
        "Kreftklinikken",
        "Trening i Pusterommet",
        "Veiledet trening med fysioterapeut for deg som har eller har hatt kreft, under og etter behandlingen."
        " Treningen tilpasses formen din den dagen.",
        "Ta med treningstøy, innesko og drikkeflaske. Spis et lett måltid et par timer før.",
        45,
        0,
        "Ingen henvisning trengs.",
        self_bookable=True,
        min_age=18,
        cancel_cutoff_hours=3,
    ),
    VisitTypeSpec(
        "fastlege",
        "Lade legesenter",
        "Fastlegene",
        "Time hos fastlege",
        "Time hos fastlegen din. Velg video eller telefon hvis du ikke trenger å bli undersøkt.",
        "Ta med liste over legemidlene du bruker. Har du video- eller telefontime, sørg for å være på et sted"
        " der du kan snakke uforstyrret.",
        20,
        175,
        "Egenandel på dagtid. Gratis for barn under 16 år. Egenandelen teller mot frikortet.",
        modes="in_person,video,phone",
        self_bookable=True,
    ),
    VisitTypeSpec(
        "hjerte",
        "St. Olavs hospital",
        "Hjertemedisinsk poliklinikk",
        "Poliklinisk time, hjertemedisin",
        "Undersøkelse og samtale med hjertelege. Du får time etter henvisning fra fastlegen eller sykehuset.",
        "Ta med liste over legemidlene du bruker. Du kan spise, drikke og ta medisinene dine som vanlig.",
        30,
        375,
        "Egenandelen teller mot frikortet. Avbestill senest 24 timer før, ellers må du betale gebyr.",
        requires_referral=True,
    ),
    VisitTypeSpec(
        "skole",
        "Lademoen helsestasjon",
        "Helsesykepleierne",
        "Skolehelsetjenesten – 3. trinn",
        "Samtale med helsesykepleier om trivsel, søvn og mat, og måling av høyde og vekt. Foreldre er"
        " velkomne til å være med.",
        "Ingen forberedelser trengs. Gi gjerne beskjed på forhånd hvis det er noe helsesykepleieren bør vite.",
        20,
        0,
        min_age=7,
        max_age=9,
    ),
]

SCHEDULES = [
    ScheduleSpec(
        "lund",
        "hjerte",
        "Hjertepoliklinikken – Marte Lund",
        "Dr. Marte Lund",
        "hjerte",
        ((MON_FRI, time(8), time(15, 30)),),
        ((((0, 2), time(9), time(11, 30)), Mode.IN_PERSON), (((0, 2), time(12, 30), time(15)), Mode.IN_PERSON)),
        0.3,
    ),
    ScheduleSpec(
        "haugen",
        "hjerte",
        "Hjertepoliklinikken – Anders Haugen",
        "Dr. Anders Haugen",
        "hjerte",
        ((MON_FRI, time(8), time(15, 30)),),
        ((((3,), time(9), time(11, 30)), Mode.IN_PERSON), (((3,), time(12, 30), time(15)), Mode.IN_PERSON)),
        0.3,
    ),
    ScheduleSpec(
        "pusterom",
        "pusterom",
        "Pusterommet",
        "Fysioterapeut Håkon Lie",
        "pusterom",
        DAYTIME,
        (((MON_FRI, time(9), time(12)), Mode.IN_PERSON),),
        0.35,
    ),
    ScheduleSpec(
        "horsel",
        "horsel",
        "Høreapparatservice",
        "Audiograf Liv Bakken",
        "horsel",
        DAYTIME,
        ((((1, 3), time(8, 30), time(11, 30)), Mode.IN_PERSON),),
        0.35,
    ),
    ScheduleSpec(
        "aune",
        "fastlege",
        "Fastlege Siri Aune",
        "Dr. Siri Aune",
        "lade",
        DAYTIME,
        (
            ((MON_FRI, time(8), time(9, 20)), Mode.IN_PERSON),
            ((MON_FRI, time(12), time(12, 40)), Mode.VIDEO),
            (((1, 3), time(14, 40), time(15, 20)), Mode.PHONE),
        ),
        0.4,
    ),
    ScheduleSpec(
        "hfu-dag",
        "hfu",
        "Helsesykepleier, dagtid",
        "Helsesykepleier Eva Moen",
        "hfu",
        DAYTIME,
        ((((0, 2, 4), time(13), time(15, 30)), Mode.IN_PERSON),),
        0.2,
    ),
    ScheduleSpec(
        "hfu-kveld",
        "hfu",
        "Ettermiddagsåpent med lege",
        "Lege Jonas Rønning",
        "hfu",
        (((1, 3), time(14), time(18)),),
        ((((1, 3), time(14), time(18)), Mode.IN_PERSON),),
        0.25,
    ),
    ScheduleSpec(
        "skole",
        "skole",
        "Skolehelsetjenesten, Lademoen skole",
        "Helsesykepleier Eva Moen",
        "lademoen",
        (((1, 3), time(8), time(15, 30)),),
        ((((1, 3), time(8, 30), time(11, 30)), Mode.IN_PERSON),),
        0.25,
    ),
]

# Who the other demo patients are that take each visit type (ages on the day of the time).
BOOKERS = {
    "hjerte": (40, 95),
    "pusterom": (30, 85),
    "horsel": (60, 95),
    "fastlege": (18, 95),
    "hfu": (12, 25),
    "skole": (7, 9),
}
# What the waiting patients at the heart clinic can do: days (bit 0 = Monday), hours and notice.
WAIT_DAYS = [0b0011111, 0b0011111, 0b0011111, 0b0001111, 0b0010101, 0b0001010]
WAIT_HOURS = [(time(8), time(15, 30)), (time(8), time(15, 30)), (time(8), time(12)), (time(11), time(15, 30))]
WAIT_NOTICE = [4, 24, 24, 24, 48, 72]


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

        self.staff("dr.lund", "Dr. Marte Lund", Role.CLINICIAN, units["St. Olavs hospital"][:4])
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
        self.appointments()
        demo_messages.build(self.rng)
        demo_relatives.build(self)

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

    # -- Appointments ----------------------------------------------------------------------------

    def appointments(self) -> None:
        """Places, visit types and schedules with free times from tomorrow for six weeks; Kari's,
        Ola's and Per's times; and the other patients' bookings, with a waiting list at the heart
        clinic, so that a cancellation there makes earlier-time offers."""
        now = clock.utcnow()
        today = clock.today_in_norway()

        def org(name: str) -> Organisation:
            return db.session.scalar(select(Organisation).where(Organisation.name == name).order_by(Organisation.id))

        places = {
            spec.key: Location(
                organisation_id=org(spec.organisation).id,
                name=spec.name,
                address=spec.address,
                postal_code=spec.postal_code,
                city=spec.city,
                latitude=spec.latitude,
                longitude=spec.longitude,
                directions=spec.directions,
                phone=spec.phone,
            )
            for spec in PLACES
        }
        types = {
            spec.key: VisitType(
                care_unit_id=lookup.unit(spec.organisation, spec.unit).id,
                name=spec.name,
                description=spec.description,
                preparation=spec.preparation,
                price_nok=spec.price_nok,
                price_note=spec.price_note,
                minutes=spec.minutes,
                modes=spec.modes,
                self_bookable=spec.self_bookable,
                requires_referral=spec.requires_referral,
                min_age=spec.min_age,
                max_age=spec.max_age,
                cancel_cutoff_hours=spec.cancel_cutoff_hours,
            )
            for spec in VISIT_TYPES
        }
        db.session.add_all([*places.values(), *types.values()])
        db.session.flush()

        schedules: dict[str, Schedule] = {}
        slots: dict[str, list[Slot]] = {}
        for spec in SCHEDULES:
            visit_type = types[spec.visit_type]
            schedule = Schedule(
                care_unit_id=visit_type.care_unit_id,
                name=spec.name,
                practitioner=spec.practitioner,
                location_id=places[spec.place].id,
            )
            schedule.hours = sorted(
                (
                    OpeningHours(weekday=d, opens=opens, closes=closes)
                    for days, opens, closes in spec.hours
                    for d in days
                ),
                key=lambda h: (h.weekday, h.opens),
            )
            db.session.add(schedule)
            schedules[spec.key] = schedule
            made = []
            for offset in range(1, SLOT_WEEKS * 7 + 1):
                day = today + timedelta(days=offset)
                for (days, begin, end), mode in spec.runs:
                    if day.weekday() not in days:
                        continue
                    at, stop = datetime.combine(day, begin), datetime.combine(day, end)
                    while at + timedelta(minutes=visit_type.minutes) <= stop:
                        made.append(self.slot(schedule, visit_type, day, at.time(), mode))
                        at += timedelta(minutes=visit_type.minutes)
            slots[spec.key] = sorted(made, key=lambda s: s.start)
            db.session.add_all(made)
        db.session.flush()

        # The standing family and Per, found again (the region may have been built before appointments).
        kari = self.first_person("Kari", "Nordmann")
        children = {
            child.given_name: child
            for child in db.session.scalars(
                select(Person)
                .join(Relation, Relation.subject_id == Person.id)
                .where(Relation.holder_id == kari.id, Relation.kind == RelationKind.PARENT)
                .order_by(Person.id)
            )
        }
        ola, ingrid = children["Ola"], children["Ingrid"]
        per, nora = self.first_person("Per", "Hansen"), self.first_person("Nora", "Berg")
        users = {u.person_id: u for u in db.session.scalars(select(User).where(User.person_id.is_not(None)))}
        clerk = lookup.account("merkantil.strand")
        kari_user = users[kari.id]

        # Kari: seen at the heart clinic six weeks ago, a check-up in three weeks (and on the waiting
        # list for an earlier one), a video time with her GP next week, and a GP time she cancelled.
        lund, aune = schedules["lund"], schedules["aune"]
        seen_day = _weekday_on_or_before(today - timedelta(days=42), (0, 2))
        seen_slot = self.slot(lund, types["hjerte"], seen_day, time(9, 30), Mode.IN_PERSON)
        db.session.add(seen_slot)
        seen = self.book(seen_slot, kari, via=Channel.STAFF, by=clerk, at=seen_slot.start - timedelta(days=46))
        seen.status = AppointmentStatus.ATTENDED
        seen.marked_at = seen.updated_at = seen.end
        check_up = self.book(
            _first_free(slots["lund"], today + timedelta(days=21), after=time(10)),
            kari,
            via=Channel.STAFF,
            by=clerk,
            at=seen.end + timedelta(minutes=25),
        )
        check_up.preparation = (
            "Du tar EKG og blodprøver før du møter legen. Kom 20 minutter før timen og meld deg i ankomstautomaten."
        )
        db.session.add(
            WaitlistEntry(
                appointment=check_up,
                person_id=kari.id,
                visit_type_id=types["hjerte"].id,
                care_unit_id=lund.care_unit_id,
                current_start=check_up.start,
                weekdays=0b0011111,
                earliest=time(8),
                latest=time(15, 30),
                notice_hours=24,
                priority=1,  # the cardiologist wants her seen early: she is among the first offered a freed time
                created_at=seen.end + timedelta(days=1, hours=3),
            )
        )
        self.book(
            _first_free(slots["aune"], today + timedelta(days=7), mode=Mode.VIDEO),
            kari,
            via=Channel.PATIENT,
            by=kari_user,
            at=now - timedelta(days=2, hours=5),
        )
        dropped_day = _weekday_on_or_before(today - timedelta(days=16), MON_FRI)
        dropped_slot = self.slot(aune, types["fastlege"], dropped_day, time(8, 40), Mode.IN_PERSON)
        db.session.add(dropped_slot)
        dropped = self.book(
            dropped_slot, kari, via=Channel.PATIENT, by=kari_user, at=dropped_slot.start - timedelta(days=9)
        )
        dropped_slot.state = SlotState.FREE  # as a cancellation leaves it; the time has passed anyway
        dropped.status = AppointmentStatus.CANCELLED
        dropped.cancelled_at = dropped.updated_at = dropped_slot.start - timedelta(days=3, hours=14)
        dropped.cancelled_via = Channel.PATIENT
        dropped.cancelled_by_user_id = kari_user.id

        # Ola (8): the school health service's third-grade talk; Per: training in Pusterommet.
        self.book(
            _first_free(slots["skole"], today + timedelta(days=9)),
            ola,
            via=Channel.STAFF,
            by=None,
            at=now - timedelta(days=12, hours=2),
        )
        self.book(
            _first_free(slots["pusterom"], today + timedelta(days=3), after=time(10)),
            per,
            via=Channel.PATIENT,
            by=users[per.id],
            at=now - timedelta(days=4, hours=7),
        )

        # Everyone else: the sooner a time, the likelier it is taken. At the heart clinic (booked by
        # the clinic, after referral) most of those with a time a week or more away want an earlier one.
        standing = {kari.id, ola.id, ingrid.id, per.id, nora.id}
        others = [p for p in db.session.scalars(select(Person).order_by(Person.id)) if p.id not in standing]
        parents: dict[int, list[int]] = {}
        for holder_id, subject_id in db.session.execute(
            select(Relation.holder_id, Relation.subject_id)
            .where(Relation.kind == RelationKind.PARENT)
            .order_by(Relation.id)
        ):
            parents.setdefault(subject_id, []).append(holder_id)
        busy: dict[int, list[tuple[datetime, datetime]]] = {}
        has_one: set[tuple[int, int]] = set()  # (visit type, person): one coming time of a kind each
        horizon = SLOT_WEEKS * 7
        for spec in SCHEDULES:
            visit_type = types[spec.visit_type]
            low, high = BOOKERS[spec.visit_type]
            for slot in slots[spec.key]:
                if slot.state is not SlotState.FREE:
                    continue
                ahead = (slot.start.astimezone(clock.NORWAY).date() - today).days
                if self.rng.random() >= min(0.9, spec.booked * (1.8 - 1.2 * ahead / horizon)):
                    continue
                day = slot.start.astimezone(clock.NORWAY).date()
                fits = [
                    p
                    for p in others
                    if low <= age_on(p.birth_date, day) <= high
                    and (visit_type.id, p.id) not in has_one
                    and not any(s < slot.end and slot.start < e for s, e in busy.get(p.id, ()))
                ]
                if not fits:
                    continue
                person = self.rng.choice(fits)
                has_one.add((visit_type.id, person.id))
                busy.setdefault(person.id, []).append((slot.start, slot.end))
                booker = users.get(person.id) or next(
                    (users[h] for h in parents.get(person.id, ()) if h in users), None
                )
                if visit_type.self_bookable and booker is not None:
                    via, by = Channel.PATIENT, booker
                else:
                    via, by = Channel.STAFF, clerk if spec.visit_type == "hjerte" else None
                booked_at = min(
                    now - timedelta(hours=2),
                    now - timedelta(days=self.rng.randint(1, 50), minutes=self.rng.randint(0, 600)),
                )
                appointment = self.book(slot, person, via=via, by=by, at=booked_at)
                if spec.visit_type == "hjerte" and ahead >= 7 and self.rng.random() < 0.6:
                    earliest, latest = self.rng.choice(WAIT_HOURS)
                    db.session.add(
                        WaitlistEntry(
                            appointment=appointment,
                            person_id=person.id,
                            visit_type_id=visit_type.id,
                            care_unit_id=visit_type.care_unit_id,
                            current_start=appointment.start,
                            weekdays=self.rng.choice(WAIT_DAYS),
                            earliest=earliest,
                            latest=latest,
                            notice_hours=self.rng.choice(WAIT_NOTICE),
                            priority=1 if self.rng.random() < 0.15 else 0,
                            created_at=min(
                                now - timedelta(hours=1), booked_at + timedelta(days=self.rng.randint(0, 5))
                            ),
                        )
                    )
        db.session.flush()

    def first_person(self, given: str, family: str) -> Person:
        return lookup.person(given, family)

    @staticmethod
    def slot(schedule: Schedule, visit_type: VisitType, day: date, at: time, mode: Mode) -> Slot:
        """A free slot at ``at`` on ``day``, Norwegian wall time, stored in UTC."""
        return Slot(
            schedule=schedule,
            visit_type=visit_type,
            start=datetime.combine(day, at, tzinfo=clock.NORWAY).astimezone(UTC),
            minutes=visit_type.minutes,
            mode=mode,
            location_id=schedule.location_id if mode is Mode.IN_PERSON else None,
            state=SlotState.FREE,
        )

    @staticmethod
    def book(slot: Slot, person: Person, *, via: Channel, by: User | None, at: datetime) -> Appointment:
        """An appointment holding ``slot``, as a booking would make it (services._appointment_on)."""
        schedule = slot.schedule
        slot.state = SlotState.BOOKED
        appointment = Appointment(
            person_id=person.id,
            organisation_id=schedule.care_unit.organisation_id,
            care_unit_id=schedule.care_unit_id,
            slot=slot,
            visit_type_id=slot.visit_type.id,
            title=slot.visit_type.name,
            start=slot.start,
            minutes=slot.minutes,
            mode=slot.mode,
            location_id=slot.location_id or schedule.location_id,
            practitioner=schedule.practitioner,
            status=AppointmentStatus.BOOKED,
            booked_via=via,
            booked_by_user_id=by.id if by is not None else None,
            created_at=at,
            updated_at=at,
        )
        db.session.add(appointment)
        return appointment


def _weekday_on_or_before(day: date, weekdays: tuple[int, ...]) -> date:
    while day.weekday() not in weekdays:
        day -= timedelta(days=1)
    return day


def _first_free(slots: list[Slot], on_or_after: date, *, after: time = time(0), mode: Mode | None = None) -> Slot:
    """The first free slot on or after a day (and a time of day, and of a mode), Norwegian time."""
    for slot in slots:
        start = slot.start.astimezone(clock.NORWAY)
        if (
            slot.state is SlotState.FREE
            and start.date() >= on_or_after
            and start.time() >= after
            and (mode is None or slot.mode is mode)
        ):
            return slot
    raise LookupError(f"no free slot from {on_or_after}")


def demo_logins() -> list[DemoLogin]:
    """The logins of existing demo data, found again from the database (for `make run`)."""
    logins = []
    for label, given, family in (
        ("Kari Nordmann (pasient, mor til Ola 8 og Ingrid 14, fullmektig for Gudrun)", "Kari", "Nordmann"),
        ("Per Hansen (pasient, verge for Helge)", "Per", "Hansen"),
        ("Gudrun Nordmann (pasient, 82, har gitt Kari fullmakt)", "Gudrun", "Nordmann"),
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
        ("fastlege.aune", "Dr. Siri Aune (fastlege, Lade legesenter – meldinger)"),
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
    elif db.session.scalar(select(VisitType.id).where(VisitType.name == VISIT_TYPES[0].name)) is None:
        # A region built before appointments existed: add its places, visit types and times once.
        Builder().appointments()
        db.session.commit()
        click.echo(f"Demo appointments added: {db.session.query(Appointment).count()} appointments.")
    if db.session.scalar(select(MessageInbox.care_unit_id).limit(1)) is None:
        # A region built before messages existed: add inboxes, relations and conversations once.
        demo_messages.build(random.Random(2026))
        db.session.commit()
        click.echo("Demo messages added.")
    if (
        db.session.scalar(select(Person.id).where(Person.given_name == "Gudrun", Person.family_name == "Nordmann"))
        is None
    ):
        # A region built before relatives existed: add the proxy, the guardian and copy requests once.
        demo_relatives.build(Builder())
        db.session.commit()
        click.echo("Demo relatives added.")
    print_logins(demo_logins())


def print_logins(logins: list[DemoLogin]) -> None:
    click.echo("")
    click.echo(f"Demo logins (password for all: {DEMO_PASSWORD})")
    click.echo("  Demo accounts skip the second factor in demo mode, except Nora, who shows enrolment.")
    for login in logins:
        click.echo(f"  {login.username:<16} {login.who}")
    click.echo("")
