"""Demo relatives: Kari is proxy (Standard) for her mother Gudrun, 82; Per Hansen is guardian
(verge) for his brother Helge, 88; and requests for a copy of the record waiting at St. Olavs
hospital, one close to its deadline and one over it. Added once, also to a region built before."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from app import clock
from app.db import db
from app.people.models import Organisation, Person, ProxyLevel, Relation, RelationKind
from app.record.models import CopyRequest, CopyRequestState


def _person(given: str, family: str) -> Person | None:
    return db.session.scalar(
        select(Person).where(Person.given_name == given, Person.family_name == family).order_by(Person.id)
    )


def _birth(today: date, years: int, extra_days: int) -> date:
    try:
        birthday = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        birthday = today.replace(year=today.year - years, day=28)
    return birthday - timedelta(days=extra_days)


def build(builder) -> None:  # type: ignore[no-untyped-def]
    """``builder``: the demo Builder (its person numbers and password)."""
    today = clock.today_in_norway()
    kari, per = _person("Kari", "Nordmann"), _person("Per", "Hansen")
    if kari is None or per is None or _person("Gudrun", "Nordmann") is not None:
        return
    # A region built before: the numbers already given are taken (the builder's own list is new).
    builder.used_ids.update(db.session.scalars(select(Person.national_id)))
    gudrun = builder.person("Gudrun", "Nordmann", _birth(today, 82, 140))
    helge = builder.person("Helge", "Hansen", _birth(today, 88, 30))
    db.session.flush()
    builder.patient_user(gudrun)
    db.session.add_all(
        [
            Relation(
                holder_id=kari.id,
                subject_id=gudrun.id,
                kind=RelationKind.PROXY,
                level=ProxyLevel.STANDARD,
                source="patient",
            ),
            Relation(
                holder_id=per.id,
                subject_id=helge.id,
                kind=RelationKind.GUARDIAN,
                level=ProxyLevel.FULL,
                scope_text="Personlige forhold og helse, oppnevnt av Statsforvalteren i Trøndelag",
                source="staff",
            ),
        ]
    )
    _records(builder, gudrun, helge)
    st_olav = db.session.scalar(select(Organisation).where(Organisation.name == "St. Olavs hospital"))
    if st_olav is None:
        return
    now = clock.utcnow()
    nora = _person("Nora", "Berg")
    for person, days_ago, whole, part in (
        (per, 25, True, None),
        (gudrun, 33, False, "Epikriser og røntgensvar etter hoftebruddet"),
        (nora, 3, True, None),
    ):
        if person is None:
            continue
        asked = now - timedelta(days=days_ago)
        db.session.add(
            CopyRequest(
                person_id=person.id,
                organisation_id=st_olav.id,
                whole_record=whole,
                part_text=part,
                requested_at=asked,
                due_on=(asked.astimezone(clock.NORWAY).date() + timedelta(days=30)),
                state=CopyRequestState.RECEIVED,
            )
        )


def _records(builder, gudrun: Person, helge: Person) -> None:  # type: ignore[no-untyped-def]
    """Some history for Gudrun and Helge from St. Olavs hospital and Lade legesenter, through the
    real ingest (the FHIR clients the demo made)."""
    from app.demo.fhir_bundles import history_bundle
    from app.fhir.ingest import import_bundle
    from app.record.models import FhirClient

    clients = {c.name: c for c in db.session.scalars(select(FhirClient))}
    plan = [
        (gudrun, "DIPS Arena, St. Olavs hospital", 40, 5, 2, "Ortopedisk avdeling", "Dr. Marte Lund", 101),
        (gudrun, "Journalsystem, Lade legesenter", 30, 4, 3, "Fastlegene", "Dr. Siri Aune", 102),
        (helge, "DIPS Arena, St. Olavs hospital", 30, 4, 2, "Hjertemedisinsk poliklinikk", "Dr. Marte Lund", 103),
    ]
    db.session.flush()
    for person, client_name, results, notes, years, unit, doctor, seed in plan:
        client = clients.get(client_name)
        if client is None:
            continue
        bundle = history_bundle(
            person,
            prefix=f"demo-rel-{seed}",
            results=results,
            notes=notes,
            years=years,
            unit=unit,
            doctor=doctor,
            seed=seed,
        )
        import_bundle(bundle, client)
