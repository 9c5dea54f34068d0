"""The access matrix: who may do what with which item of a patient's record, as one parametrized
test through the real routes and the real policy, one case per (actor, item kind, action): 435
cases (15 actors, 11 item kinds, up to 4 actions each; see ``CASES`` and ``CASE_COUNT``).

The rule is written out below as data (``ALLOWED``), as the specification, not taken from
app/access/policy.py. Each case is what that person gets over HTTP: a relative switches to the
patient's record first (POST /profil), then calls the patient pages; clinicians use the staff
console. Allowed is 200 (303 for a POST that did what it should) and, for a list, the item on the
page; denied is 404, or the item absent from a list page that may itself be 200 or 404.

The world (four patients with records, conversations and times, and everyone around them) is built
once for the module: this module keeps it between the matrix's cases (``_clean`` below) and wipes
the tables after every other test and at the end, as the suite does.

After the matrix: access that ends on its own while a session goes on — a child's 12th and 16th
birthdays at midnight Norwegian time, a proxy's last day, and a proxy the patient revokes.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select

from app import clock
from app.auth.models import User
from app.db import db
from app.messages.models import Attachment, Message
from app.messages.services import Upload
from app.people.models import OrganisationKind, Person, ProxyLevel, Relation, RelationKind
from app.record.models import ItemKind, RecordItem
from app.record.release import item_url
from app.staff.services import sign_visit_summary
from tests import factories
from tests.conftest import csrf_from

# -- The specification ------------------------------------------------------------------------------

RECORD_KINDS = ("result", "note", "visit_summary", "medication", "document", "hidden_from_guardians", "withheld")
MESSAGE_KINDS = ("message", "hospital_message")  # with the GP office; with a hospital unit
APPOINTMENT_KINDS = ("appointment", "hospital_appointment")  # upcoming, at the GP office; at a hospital
KINDS = RECORD_KINDS + MESSAGE_KINDS + APPOINTMENT_KINDS

# What one can do with each kind on the patient's side ("book": cancel the time, a booking action).
PATIENT_ACTIONS = {
    "result": ("list", "open"),
    "note": ("list", "open"),
    "visit_summary": ("list", "open"),
    "medication": ("list", "open"),
    "document": ("list", "open", "download"),
    "hidden_from_guardians": ("list", "open"),
    "withheld": ("list", "open"),
    "message": ("list", "open", "download", "reply"),
    "hospital_message": ("list", "open", "download", "reply"),
    "appointment": ("list", "open", "download", "book"),
    "hospital_appointment": ("list", "open", "download", "book"),
}
# The staff console: the patient page lists the record, an item page opens one; a conversation is
# opened on the staff message page. Staff have no file route for record items, and their
# appointment pages are per unit (not a patient's), so those are not part of the matrix.
STAFF_ACTIONS = {**{kind: ("list", "open") for kind in RECORD_KINDS}, **{kind: ("open",) for kind in MESSAGE_KINDS}}

CLINICIANS = ("clinician_with_relation", "clinician_without_relation")
ACTORS = (
    "patient",
    "other_patient",
    "parent_under_12",
    "parent_12_15",
    "parent_16_plus",
    "youth_own",
    "proxy_standard",
    "proxy_read_only",
    "proxy_communicate",
    "proxy_full",
    "proxy_expired",
    "proxy_revoked",
    "guardian",
    *CLINICIANS,
)


def _patient_side(kinds: set[str], *, without: tuple[str, ...] = ()) -> frozenset[tuple[str, str]]:
    return frozenset((k, a) for k in kinds for a in PATIENT_ACTIONS[k] if a not in without)


def _staff_side(kinds: set[str]) -> frozenset[tuple[str, str]]:
    return frozenset((k, a) for k in kinds for a in STAFF_ACTIONS[k])


NOTHING: frozenset[tuple[str, str]] = frozenset()
# The patient's own: all but what a clinician withheld from them.
OWN = _patient_side(set(KINDS) - {"withheld"})
# A parent of a child under 12, and a guardian: the patient's, less what is hidden from guardians.
GUARDIANS = _patient_side(set(KINDS) - {"withheld", "hidden_from_guardians"})
TIMES_AND_MESSAGES = {"message", "hospital_message", "appointment", "hospital_appointment"}
HEALTH = {"result", "medication", "hidden_from_guardians"}  # proxies are not guardians

ALLOWED: dict[str, frozenset[tuple[str, str]]] = {
    "patient": OWN,
    "other_patient": NOTHING,
    "parent_under_12": GUARDIANS,
    # 12–15: times and messages with the GP office (primary care) only, no health information.
    "parent_12_15": _patient_side({"message", "appointment"}),
    "parent_16_plus": NOTHING,
    # Their own login at 14: results, medicines, times and messages; notes and documents at 16.
    "youth_own": _patient_side(HEALTH | TIMES_AND_MESSAGES),
    "proxy_standard": _patient_side(HEALTH | TIMES_AND_MESSAGES),
    "proxy_read_only": _patient_side(HEALTH | TIMES_AND_MESSAGES, without=("reply", "book")),
    "proxy_communicate": _patient_side(TIMES_AND_MESSAGES),
    "proxy_full": OWN,
    "proxy_expired": NOTHING,
    "proxy_revoked": NOTHING,
    "guardian": GUARDIANS,
    # Staff see what their organisation holds, withheld and hidden items included; and the
    # conversations of the units they work in (the hospital's, not the GP office's).
    "clinician_with_relation": _staff_side(set(RECORD_KINDS) | {"hospital_message"}),
    "clinician_without_relation": NOTHING,
}

# POST /profil person=<the patient>: 303 with a grant, 404 without. (None: looks at their own.)
SWITCH = {
    "other_patient": 404,
    "parent_under_12": 303,
    "parent_12_15": 303,
    "parent_16_plus": 404,
    "proxy_standard": 303,
    "proxy_read_only": 303,
    "proxy_communicate": 303,
    "proxy_full": 303,
    "proxy_expired": 404,
    "proxy_revoked": 404,
    "guardian": 303,
}

# Whose record each actor is pointed at: the adult P, or the child of the stated age.
SUBJECT_OF = {
    **{actor: "adult" for actor in ACTORS},
    "parent_under_12": "child_8",
    "parent_12_15": "child_14",
    "youth_own": "child_14",
    "parent_16_plus": "child_17",
}

CASES = [
    (actor, kind, action)
    for actor in ACTORS
    for kind in KINDS
    for action in (STAFF_ACTIONS if actor in CLINICIANS else PATIENT_ACTIONS).get(kind, ())
]
CASE_COUNT = 435  # 13 patient-side actors × 31 + 2 clinicians × 16


def test_the_matrix_has_one_case_per_actor_kind_and_action() -> None:
    assert len(CASES) == len(set(CASES)) == CASE_COUNT
    assert set(ALLOWED) == set(ACTORS) == set(SUBJECT_OF)
    for actor, allowed in ALLOWED.items():
        assert allowed <= {(k, a) for a_, k, a in CASES if a_ == actor}, actor


# -- The world ---------------------------------------------------------------------------------------


@dataclass
class World:
    marker: int  # the adult P's person id: the world is gone when that row is
    users: dict[str, int] = field(default_factory=dict)  # actor -> account id
    subjects: dict[str, int] = field(default_factory=dict)  # "adult", "child_8"... -> person id
    items: dict[tuple[str, str], int] = field(default_factory=dict)  # (subject, kind) -> id of the item
    attachments: dict[tuple[str, str], int] = field(default_factory=dict)  # (subject, message kind) -> id
    to_cancel: dict[tuple[str, str], int] = field(default_factory=dict)  # (actor, appointment kind) -> id

    def subject(self, actor: str) -> int:
        return self.subjects[SUBJECT_OF[actor]]

    def item(self, actor: str, kind: str) -> int:
        return self.items[(SUBJECT_OF[actor], kind)]


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


def _relation(holder: User, subject: Person, kind: RelationKind, level: ProxyLevel, **fields: object) -> None:
    source = "patient" if kind is RelationKind.PROXY else "staff"
    db.session.add(
        Relation(holder_id=holder.person_id, subject_id=subject.id, kind=kind, level=level, source=source, **fields)
    )
    db.session.commit()


def _pick(person: Person, kind: ItemKind, count: int = 1) -> list[RecordItem]:
    """The first ``count`` items of a kind the patient sees (a note: not a visit summary)."""
    rows = [
        i
        for i in db.session.scalars(
            select(RecordItem).where(RecordItem.person_id == person.id, RecordItem.kind == kind).order_by(RecordItem.id)
        )
        if i.is_visible_to_patient and not i.is_visit_summary
    ]
    assert len(rows) >= count, f"the ingest gave {person.given_name} too few {kind.value} items"
    return rows[:count]


def build_world() -> World:
    hospital_unit = factories.message_unit("Matrise sykehus", kind=OrganisationKind.HOSPITAL)
    hospital = hospital_unit.organisation
    source = factories.fhir_client(hospital, "matrise-dips")[0]
    hospital_clinic = factories.clinic(hospital, name="Kontroll på poliklinikken")
    gp_unit = factories.message_unit("Matrise legesenter")  # a GP office: primary care
    gp_clinic = factories.clinic(gp_unit.organisation, name="Time hos fastlegen")

    users: dict[str, User] = {}

    def patient(actor: str, given: str, age: int) -> User:
        users[actor] = factories.patient(given, "Matrise", age=age, username=f"matrise-{actor}", with_totp=True)
        return users[actor]

    adult = patient("patient", "Pia", 41).person
    child_8 = factories.PersonFactory(given_name="Åtte", family_name="Matrise", birth_date=factories.birth_for_age(8))
    child_14 = patient("youth_own", "Fjorten", 14).person
    child_17 = factories.patient("Sytten", "Matrise", age=17, username="matrise-sytten", with_totp=True)
    patient("other_patient", "Ola", 55)
    for actor, child, age in (
        ("parent_under_12", child_8, 38),
        ("parent_12_15", child_14, 44),
        ("parent_16_plus", child_17.person, 47),
    ):
        factories.parent_of(patient(actor, "Forelder", age), child)
    today = clock.today_in_norway()
    for actor, level, fields in (
        ("proxy_standard", ProxyLevel.STANDARD, {}),
        ("proxy_read_only", ProxyLevel.READ_ONLY, {}),
        ("proxy_communicate", ProxyLevel.COMMUNICATE, {}),
        ("proxy_full", ProxyLevel.FULL, {}),
        ("proxy_expired", ProxyLevel.STANDARD, {"valid_until": today - timedelta(days=1)}),
        ("proxy_revoked", ProxyLevel.STANDARD, {"revoked_at": clock.utcnow() - timedelta(hours=1)}),
    ):
        _relation(patient(actor, "Fullmektig", 35), adult, RelationKind.PROXY, level, **fields)
    _relation(patient("guardian", "Verge", 50), adult, RelationKind.GUARDIAN, ProxyLevel.FULL)
    users["clinician_with_relation"] = factories.staff("matrise.lege", "Dr. Matrise Med")
    factories.works_at(users["clinician_with_relation"], hospital)
    users["clinician_without_relation"] = factories.staff("matrise.annen", "Dr. Matrise Uten")
    factories.works_at(users["clinician_without_relation"], factories.hospital("Annet sykehus"))

    world = World(marker=adult.id, users={actor: u.id for actor, u in users.items()})
    slots = iter(range(1000))

    def upcoming(person: Person, clinic: factories.Clinic) -> int:
        n = next(slots)  # every time its own slot, days ahead (beyond the 24-hour cut-off)
        return factories.booked(person, factories.slot(clinic, days=3 + n // 12, hour=8 + n % 12)).id

    # Whose login writes the patient's first messages: their own, or (under 12) the parent's.
    authors = {
        "adult": users["patient"],
        "child_8": users["parent_under_12"],
        "child_14": users["youth_own"],
        "child_17": child_17,
    }
    for n, (name, person) in enumerate(
        (("adult", adult), ("child_8", child_8), ("child_14", child_14), ("child_17", child_17.person))
    ):
        world.subjects[name] = person.id
        factories.record(person, source, results=3, notes=4, years=1, prefix=f"matrise{n}")
        result, hidden, withheld = _pick(person, ItemKind.RESULT, 3)
        hidden.hidden_from_guardians = True
        hidden.guardian_hidden_reason = "Skjermet for foresatte"
        withheld.withheld_at = clock.utcnow()
        withheld.withheld_reason = "Holdt tilbake fra pasienten"
        [note] = _pick(person, ItemKind.NOTE)
        [medication] = _pick(person, ItemKind.MEDICATION)
        [document] = _pick(person, ItemKind.DOCUMENT)
        summary = sign_visit_summary(
            author=users["clinician_with_relation"],
            patient=person,
            unit=hospital_unit,
            title="Oppsummering etter kontroll",
            text="Vi snakket om blodtrykket.",
        )
        chosen = {
            "result": result,
            "hidden_from_guardians": hidden,
            "withheld": withheld,
            "note": note,
            "medication": medication,
            "document": document,
            "visit_summary": summary,
        }
        # Recent, so every list (the staff page shows 20 items a page) has them on its first page.
        for i, item in enumerate(chosen.values()):
            item.effective_at = clock.utcnow() - timedelta(hours=1 + i)
            if item.report_id:
                db.session.get(RecordItem, item.report_id).effective_at = clock.utcnow() - timedelta(minutes=30)
        db.session.commit()
        world.items.update({(name, kind): item.id for kind, item in chosen.items()})

        factories.gp_of(person, gp_unit)
        world.items[(name, "appointment")] = upcoming(person, gp_clinic)
        world.items[(name, "hospital_appointment")] = upcoming(person, hospital_clinic)  # lets them write there
        for kind, unit in (("message", gp_unit), ("hospital_message", hospital_unit)):
            conversation = factories.conversation(
                authors[name], person, unit, subject=f"Spørsmål ({kind})", uploads=[Upload("bilde.png", _png())]
            )
            world.items[(name, kind)] = conversation.id
            world.attachments[(name, kind)] = db.session.scalar(
                select(Attachment.id).join(Message).where(Message.conversation_id == conversation.id)
            )
    # A time of the patient's of its own for every booking case, so the cases do not depend on each other.
    for actor, kind, action in CASES:
        if action == "book":
            person = db.session.get(Person, world.subject(actor))
            world.to_cancel[(actor, kind)] = upcoming(person, gp_clinic if kind == "appointment" else hospital_clinic)
    return world


def _wipe() -> None:
    with db.engine.begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(autouse=True)
def _clean(app: Flask, request: pytest.FixtureRequest) -> Iterator[None]:
    """As the suite's own (tests/conftest.py), except that the matrix's world stays between its cases."""
    ctx = app.app_context()
    ctx.push()
    yield
    db.session.rollback()
    if "world" not in request.fixturenames:
        _wipe()
    db.session.remove()
    app.extensions["varde.login_throttle"].reset()
    app.config["DEMO_MODE"] = False
    ctx.pop()


@pytest.fixture(scope="module")
def _world_store(app: Flask) -> Iterator[dict[str, World]]:
    store: dict[str, World] = {}
    yield store
    with app.app_context():  # the next module starts with empty tables, as everywhere else
        _wipe()
        db.session.remove()


@pytest.fixture
def world(_world_store: dict[str, World]) -> World:
    """Built on first use; built again only if another test wiped it (tests run in another order)."""
    built = _world_store.get("world")
    if built is None or db.session.get(Person, built.marker) is None:
        _wipe()
        built = _world_store["world"] = build_world()
    return built


# -- Running a case ----------------------------------------------------------------------------------

LIST_PAGES = {
    "result": "/journal/prover",
    "hidden_from_guardians": "/journal/prover",
    "withheld": "/journal/prover",
    "note": "/journal/notater",
    "visit_summary": "/journal/notater?type=oppsummering",
    "medication": "/journal/legemidler",
    "document": "/journal/dokumenter",
    "message": "/meldinger",
    "hospital_message": "/meldinger",
    "appointment": "/timer",
    "hospital_appointment": "/timer",
}
ITEM_KINDS = {
    "result": ItemKind.RESULT,
    "hidden_from_guardians": ItemKind.RESULT,
    "withheld": ItemKind.RESULT,
    "note": ItemKind.NOTE,
    "visit_summary": ItemKind.NOTE,
    "medication": ItemKind.MEDICATION,
    "document": ItemKind.DOCUMENT,
}


def _item_path(kind: str, item_id: int) -> str:
    if kind in MESSAGE_KINDS:
        return f"/meldinger/{item_id}"
    if kind in APPOINTMENT_KINDS:
        return f"/timer/{item_id}"
    return item_url(item_id, ITEM_KINDS[kind])


def _switch(client: FlaskClient, person_id: int) -> int:
    """Choose whose record the patient pages show; 303 (to the overview) or 404."""
    response = client.post("/profil", data={"csrf_token": csrf_from(client, "/meny"), "person": person_id})
    assert response.status_code != 303 or response.headers["Location"] == "/"
    return response.status_code


def _status(response, allowed: int, *, to: str | None = None, content: str | None = None) -> str:  # type: ignore[no-untyped-def]
    """What the response says: allowed (with the status, the redirect ``to`` and the ``content``
    type one expects of it), denied (404), or something unexpected."""
    response.close()  # a file sent from disk keeps it open until then
    if response.status_code == allowed:
        location = response.headers.get("Location", "")
        if to is not None and not location.startswith(to):
            return f"unexpected {response.status_code} to {location!r}"
        if content is not None and response.mimetype != content:
            return f"unexpected {response.status_code} of {response.mimetype}"
        return "allowed"
    return "denied" if response.status_code == 404 else f"unexpected {response.status_code}"


def _listed(client: FlaskClient, path: str, href: str) -> str:
    response = client.get(path)
    if response.status_code not in (200, 404):
        return f"unexpected {response.status_code} on {path}"
    return (
        "allowed" if response.status_code == 200 and f'href="{href}"' in response.get_data(as_text=True) else "denied"
    )


def _patient_outcome(client: FlaskClient, world: World, actor: str, kind: str, action: str) -> str:
    item_id = world.item(actor, kind)
    path = _item_path(kind, item_id)
    if action == "list":
        return _listed(client, LIST_PAGES[kind], path)
    if action == "open":
        return _status(client.get(path), 200)
    if action == "download":
        if kind in MESSAGE_KINDS:
            attachment_id = world.attachments[(SUBJECT_OF[actor], kind)]
            return _status(client.get(f"{path}/vedlegg/{attachment_id}"), 200, content="image/png")
        if kind in APPOINTMENT_KINDS:
            return _status(client.get(f"{path}/kalender.ics"), 200, content="text/calendar")
        return _status(client.get(f"{path}/fil"), 200, content="application/pdf")
    token = csrf_from(client, "/meny")
    if action == "reply":
        data = {"csrf_token": token, "body": f"Et tillegg fra {actor}."}
        return _status(client.post(path, data=data, content_type="multipart/form-data"), 303, to=f"{path}?ok=sendt")
    assert action == "book"
    target = world.to_cancel[(actor, kind)]
    response = client.post(f"/timer/{target}/avbestill", data={"csrf_token": token})
    return _status(response, 303, to="/timer?ok=avbestilt")


def _staff_outcome(client: FlaskClient, world: World, actor: str, kind: str, action: str) -> str:
    item_id = world.item(actor, kind)
    if kind in MESSAGE_KINDS:
        return _status(client.get(f"/ansatt/meldinger/{item_id}"), 200)
    if action == "list":
        return _listed(client, f"/ansatt/pasient/{world.subject(actor)}", f"/ansatt/element/{item_id}")
    return _status(client.get(f"/ansatt/element/{item_id}"), 200)


@pytest.mark.parametrize(("actor", "kind", "action"), CASES, ids=["-".join(case) for case in CASES])
def test_access_matrix(app: Flask, world: World, actor: str, kind: str, action: str) -> None:
    expected = "allowed" if (kind, action) in ALLOWED[actor] else "denied"
    client = app.test_client()
    factories.session_for(db.session.get(User, world.users[actor]), client)
    if actor in SWITCH:
        switched = _switch(client, world.subject(actor))
        assert switched == SWITCH[actor], f"{actor}: POST /profil expected {SWITCH[actor]}, got {switched}"
    outcome = _staff_outcome if actor in CLINICIANS else _patient_outcome
    got = outcome(client, world, actor, kind, action)
    assert got == expected, f"{actor} / {kind} / {action}: expected {expected}, got {got}"


# -- Access that ends by itself, mid-session -------------------------------------------------------------

ACTING_BANNER = "Du ser nå journalen til"


def _late_evening(frozen_clock) -> None:  # type: ignore[no-untyped-def]
    """23:50 in Norway today: ten minutes to midnight."""
    today = clock.today_in_norway()
    frozen_clock.now = datetime.combine(today, time(23, 50), tzinfo=clock.NORWAY).astimezone(UTC)


def _born_tomorrow(years: int) -> Person:
    tomorrow = clock.today_in_norway() + timedelta(days=1)
    return factories.PersonFactory(
        given_name="Emma", family_name="Nordmann", birth_date=tomorrow.replace(year=tomorrow.year - years)
    )


def _gp_time(person: Person) -> int:
    gp = factories.clinic(factories.hospital("Lade legesenter", OrganisationKind.GP_OFFICE), name="Time hos fastlege")
    return factories.booked(person, factories.slot(gp, days=5)).id


def test_a_parent_loses_the_record_at_midnight_on_the_12th_birthday_but_keeps_the_gp_times(
    client, login_as, kari, source, frozen_clock
):
    _late_evening(frozen_clock)
    child = _born_tomorrow(12)
    factories.record(child, source, results=3, notes=1, years=1, prefix="e12")
    [result] = _pick(child, ItemKind.RESULT)
    appointment = _gp_time(child)
    factories.parent_of(kari, child)
    login_as(kari)
    assert _switch(client, child.id) == 303
    assert client.get(item_url(result.id, ItemKind.RESULT)).status_code == 200
    assert client.get(f"/timer/{appointment}").status_code == 200

    frozen_clock.advance(minutes=15)  # midnight in Norway: Emma is 12; the same session goes on

    assert client.get(item_url(result.id, ItemKind.RESULT)).status_code == 404
    assert client.get("/journal/prover").status_code == 404
    assert client.get(f"/timer/{appointment}").status_code == 200
    assert "Du ser nå journalen til Emma, 12 år" in client.get("/").get_data(as_text=True)


def test_a_parent_loses_the_times_too_at_midnight_on_the_16th_birthday(client, login_as, kari, frozen_clock):
    _late_evening(frozen_clock)
    child = _born_tomorrow(16)
    appointment = _gp_time(child)
    factories.parent_of(kari, child)
    login_as(kari)
    assert _switch(client, child.id) == 303
    assert "Du ser nå journalen til Emma, 15 år" in client.get("/").get_data(as_text=True)
    assert client.get(f"/timer/{appointment}").status_code == 200

    frozen_clock.advance(minutes=15)

    page = client.get("/").get_data(as_text=True)
    assert ACTING_BANNER not in page
    assert "Du har ikke lenger tilgang til journalen til Emma. Du ser nå din egen." in page
    assert client.get(f"/timer/{appointment}").status_code == 404  # Kari's own times: not there
    assert _switch(client, child.id) == 404


def _proxy_of(kari, per, **fields: object) -> Relation:  # type: ignore[no-untyped-def]
    relation = Relation(
        holder_id=per.person_id,
        subject_id=kari.person_id,
        kind=RelationKind.PROXY,
        level=ProxyLevel.STANDARD,
        source="patient",
        **fields,
    )
    db.session.add(relation)
    db.session.commit()
    return relation


def test_a_proxy_with_today_as_the_last_day_has_access_until_midnight(
    client, login_as, kari, per, source, frozen_clock
):
    _late_evening(frozen_clock)
    factories.record(kari.person, source, results=3, notes=1, years=1, prefix="k")
    [result] = _pick(kari.person, ItemKind.RESULT)
    _proxy_of(kari, per, valid_until=clock.today_in_norway())
    login_as(per)
    assert _switch(client, kari.person_id) == 303
    assert client.get(item_url(result.id, ItemKind.RESULT)).status_code == 200

    frozen_clock.advance(minutes=15)  # the first day after the last one

    page = client.get("/").get_data(as_text=True)
    assert ACTING_BANNER not in page
    assert "Du har ikke lenger tilgang til journalen til Kari. Du ser nå din egen." in page
    assert client.get(item_url(result.id, ItemKind.RESULT)).status_code == 404
    assert _switch(client, kari.person_id) == 404


def test_a_revoked_proxy_loses_access_on_the_next_request(app, client, login_as, kari, per, source):
    factories.record(kari.person, source, results=3, notes=1, years=1, prefix="k")
    [result] = _pick(kari.person, ItemKind.RESULT)
    relation = _proxy_of(kari, per)
    login_as(per)  # the proxy's browser, looking at Kari's record
    assert _switch(client, kari.person_id) == 303
    assert client.get(item_url(result.id, ItemKind.RESULT)).status_code == 200

    patient = app.test_client()  # Kari's own browser
    login_as(kari, patient)
    token = csrf_from(patient, "/fullmakter")
    assert patient.post(f"/fullmakter/{relation.id}/avslutt", data={"csrf_token": token}).status_code == 303

    assert client.get(item_url(result.id, ItemKind.RESULT)).status_code == 404
    page = client.get("/").get_data(as_text=True)
    assert ACTING_BANNER not in page
    assert _switch(client, kari.person_id) == 404
