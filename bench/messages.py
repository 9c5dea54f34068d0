"""Benchmarks for the secure-messages issue, each side by side with its baseline in the same run.

All in one private PostgreSQL schema that looks like a region's: 15 care units that take messages,
30,000 other patients with accounts, their staff, and about 50,000 conversations over two years
(most closed; each with a few messages, some with attachment rows whose files need not exist).

1. The patient's conversation list ``GET /meldinger`` (the first 20, latest activity first) for a
   patient with 500 conversations over two years with eight units, each with a few messages, some
   with attachments; baseline: the overview ``GET /`` for the same logged-in patient (a small record
   and two coming times). Budget: list p99 <= 1.5 x overview p99.
2. A staff inbox ``GET /ansatt/meldinger?enhet=<unit>&visning=ny`` (the oldest 20 new ones, a page) for a
   care unit with 10,000 open conversations (new, open and waiting mixed, from about 8,500 different
   patients) and 20,000 closed ones, as a clinician who is a member of that unit (and of one more);
   the page writes one audit row per patient listed, measured as it is. Baseline: the patient
   overview of part 1 (the patient's, not the clinician's: the page every user loads most).
   Budget: inbox p99 <= 1.5 x overview p99.
3. The poll with nothing new, ``GET /meldinger/<id>/nye?rev=<current>`` with ``HX-Request: true``
   (204), against a hello-world Flask route (bench/hello.py). Budget: poll time < 2 x hello time,
   as time per request (1 / throughput at the same concurrency) and as p50. Varde's ``/healthz``
   (its request handling without a session or a query) is served beside them for context, and all
   of them are also timed in-process (Flask test client).

Served by gunicorn with 2 sync workers and measured with ``wrk -t2 -c32 --latency`` in alternating
rounds (bench/record.py's way); CPU per request of the gunicorn workers and of PostgreSQL from
/proc. The list and inbox queries (services.conversations / services.inbox) as the pages run them go
under EXPLAIN ANALYZE, as planned for their parameters and as the generic plan PostgreSQL caches once
psycopg has prepared them; every other SELECT of the pages too; a Seq Scan on a table of more than
1,000 rows is flagged.

    .venv/bin/python bench/messages.py [--quick] [--seconds S] [--rounds N] [--requests N]
                                       [--label TEXT] [--no-append]

(also run by ``make bench`` through bench/run.py)

The report goes to stdout (progress to stderr), is appended to bench/results/messages.md, and the
figures of this run are written to bench/results/messages.json. Needs PostgreSQL on 127.0.0.1:5432
(VARDE_BENCH_PG_URL; a private schema, dropped afterwards) and wrk for the served pages; without them
the parts that need them are skipped with a message.
"""

from __future__ import annotations

import argparse
import contextvars
import hashlib
import json
import os
import random
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The schema, app, gunicorn and wrk helpers are bench/record.py's; CPU accounting is bench/push.py's;
# EXPLAIN, htmx requests and gunicorn's workers are bench/appointments.py's.
from bench.appointments import (  # noqa: E402
    HTMX,
    children,
    explain,
    explain_generic,
    fetch_page,
    plan_line,
    short,
    wrk_with,
)
from bench.push import CpuWindow, git, load, percentile  # noqa: E402
from bench.record import (  # noqa: E402
    COOKIE,
    Gunicorn,
    Run,
    add_patient_with_session,
    add_source,
    app_on,
    create_schema,
    drop_schema,
    log,
    pg_reachable,
    shape,
)

LIST_RATIO_BUDGET = 1.5  # list p99 / overview p99
INBOX_RATIO_BUDGET = 1.5  # inbox p99 / overview p99
POLL_RATIO_BUDGET = 2.0  # poll time / hello-world time (strictly less)
PATIENT_CONVERSATIONS = 500
UNIT_NEW, UNIT_OPEN, UNIT_WAITING = 4_000, 3_000, 3_000  # the busy unit's 10,000 open conversations
UNIT_CLOSED = 20_000
OTHER_CONVERSATIONS = 30_000  # the other units' (mostly closed)
OTHERS = 30_000  # other patients, with accounts
DAYS = 730  # two years
LIST_PAGE, INBOX_PAGE = 20, 20
SEED = 20261203
SEQ_SCAN_ROWS = 1000  # a Seq Scan on a table larger than this is flagged

HELLO = "hello-world Flask route"
HEALTHZ = "Varde /healthz (no session)"
OVERVIEW = "overview"
LIST = "conversation list"
INBOX = "staff inbox, new"
POLL = "poll, nothing new (204)"

UNITS = (  # (organisation, kind, unit, answer days, staff); the first is the busy one
    ("St. Olavs hospital", "hospital", "Medisinsk poliklinikk", 5, 15),
    ("Lade legesenter", "gp_office", "Lade legesenter", 3, 4),
    ("St. Olavs hospital", "hospital", "Hjertepoliklinikken", 5, 4),
    ("St. Olavs hospital", "hospital", "Øyepoliklinikken", 5, 3),
    ("St. Olavs hospital", "hospital", "Ortopedisk poliklinikk", 5, 3),
    ("Ålesund sjukehus", "hospital", "Hudpoliklinikken", 5, 3),
    ("Ålesund sjukehus", "hospital", "Lungepoliklinikken", 5, 3),
    ("Trondheim kommune", "municipality", "Fysioterapitjenesten", 3, 3),
    ("Trondheim kommune", "municipality", "Helsestasjonen Lade", 3, 3),
    ("Byåsen legesenter", "gp_office", "Byåsen legesenter", 3, 3),
    ("Moholt legesenter", "gp_office", "Moholt legesenter", 3, 3),
    ("Saupstad legesenter", "gp_office", "Saupstad legesenter", 3, 3),
    ("Heimdal legesenter", "gp_office", "Heimdal legesenter", 3, 3),
    ("Ålesund sjukehus", "hospital", "Nevrologisk poliklinikk", 5, 3),
    ("St. Olavs hospital", "hospital", "Kvinneklinikken", 5, 3),
)
GP, SECOND = 1, 2  # the patient's GP office; the clinician's second unit
PATIENT_UNITS = ((GP, 45), (0, 15), (2, 10), (3, 8), (4, 7), (7, 6), (9, 5), (14, 4))  # (unit index, weight)
GIVEN = ("Kari", "Ola", "Anne Marie", "Nils", "Ingrid", "Per Olav", "Sofie", "Emil", "Åse", "Øystein", "Lars", "Hege")
FAMILY = ("Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Berg", "Haugen", "Bakken")
TOPICS = {  # topic: (weight, subjects)
    "treatment": (40, ("Spørsmål om blodtrykket", "Bivirkninger av ny medisin", "Smerter etter operasjonen")),
    "prescription": (25, ("Fornye resept på Levaxin", "Resept på blodtrykksmedisin", "Ny resept, Ventoline")),
    "sick_note": (10, ("Forlenge sykmeldingen", "Sykmelding etter kontrollen")),
    "practical": (15, ("Flytte timen min", "Parkering ved poliklinikken", "Prøvesvar fra forrige uke")),
    "other": (10, ("Spørsmål", "Takk for hjelpen", "Adresseendring")),
}
PATIENT_TEXT = (
    "Hei! Jeg har hatt vondt i brystet av og til etter at jeg begynte på den nye medisinen. Er det vanlig, "
    "eller bør jeg slutte med den? Jeg har også merket at jeg blir svimmel når jeg reiser meg fort.",
    "Kan dere fornye resepten min? Jeg har bare tabletter til fem dager igjen.",
    "Takk for svaret. Jeg har tatt blodprøven nå, og lurer på når jeg får vite resultatet.",
    "Jeg har lagt ved et bilde av utslettet. Det har spredt seg litt siden i går, og klør mye om natta.",
    "Hei, jeg må dessverre flytte timen min neste uke. Har dere noe ledig uka etter?",
)
STAFF_TEXT = (
    "Hei! Takk for meldingen. Det kan være en bivirkning. Fortsett med medisinen inntil videre, og ta kontakt "
    "med legevakten på 116 117 om det blir verre. Vi ringer deg i løpet av uka for å avtale en kontroll.",
    "Resepten er fornyet og ligger klar på apoteket.",
    "Svaret er normalt. Du trenger ikke gjøre noe mer nå.",
    "Vi har sett på bildet. Bruk kremen du fikk sist to ganger om dagen i en uke, og send et nytt bilde om det "
    "ikke blir bedre.",
)
PATTERNS = {  # who wrote, in order (P: the patient's side, S: the team), with weights, per final state
    "new": ((("P",), 80), (("P", "P"), 20)),
    "open": ((("P",), 50), (("P", "S", "P"), 35), (("P", "S", "P", "S", "P"), 15)),
    "waiting": ((("P", "S"), 70), (("P", "S", "P", "S"), 30)),
    "closed": (
        (("P", "S"), 60),
        (("P", "S", "P", "S"), 25),
        (("P", "S", "P", "S", "P", "S"), 10),
        (("P", "P", "S"), 5),
    ),
}
RECENT_DAYS = {"new": 21, "open": 30, "waiting": 60}  # how far back the open ones' activity goes


# --- the region's data ------------------------------------------------------------------------------


@dataclass
class World:
    patient_id: int
    patient_given: str
    patient_cookie: str
    staff_cookie: str
    staff_name: str
    unit_id: int
    unit_name: str
    second_unit_id: int
    poll_id: int
    poll_revision: int
    list_first: list[int]  # the 20 conversations the list must show, in order
    list_cursor: str  # "Vis eldre samtaler": after the 20th
    inbox_first: list[int]  # the 20 the inbox's new view must show, in order
    inbox_cursor: str  # "Vis flere": after the 50th
    rows: dict[str, int] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)


class Ids:
    """Explicit primary keys for bulk inserts, after what the ORM already wrote (sequences set afterwards)."""

    def __init__(self, tables: tuple[str, ...]) -> None:
        from app.db import db

        self.last: Counter[str] = Counter()
        for table in tables:
            self.last[table] = db.session.execute(db.text(f"SELECT coalesce(max(id), 0) FROM {table}")).scalar_one()

    def __call__(self, table: str) -> int:
        self.last[table] += 1
        return self.last[table]


def add_session(user_id: int) -> str:
    """A logged-in server-side session for an account (bench/record.py's way); returns the cookie token."""
    from app import clock
    from app.auth.models import ServerSession
    from app.db import db

    token = secrets.token_urlsafe(32)
    now = clock.utcnow()
    db.session.add(
        ServerSession(
            id=hashlib.sha256(token.encode()).hexdigest(),
            user_id=user_id,
            data={"_user_id": str(user_id), "_fresh": True},
            created_at=now,
            authenticated_at=now,
            last_seen_at=now,
        )
    )
    db.session.commit()
    return token


def pick(rng: random.Random, weighted: Any) -> Any:
    items = list(weighted)
    return rng.choices([i for i, _w in items], weights=[w for _i, w in items])[0]


def daytime(rng: random.Random, moment: datetime) -> datetime:
    """``moment``'s day at a time people write (07–23, most in the day), never in the future."""
    from app import clock

    local = moment.astimezone(clock.NORWAY)
    hour = rng.choices(range(7, 24), weights=[3, 6, 8, 8, 7, 6, 7, 7, 7, 6, 5, 5, 6, 6, 5, 4, 2])[0]
    out = local.replace(hour=hour, minute=rng.randrange(60), second=rng.randrange(60)).astimezone(UTC)
    return min(out, clock.utcnow() - timedelta(minutes=5))


def conversation_rows(
    rng: random.Random,
    *,
    person_id: int,
    account_id: int,
    author: str,
    unit: dict[str, Any],
    state: str,
    start: datetime,
    now: datetime,
) -> dict[str, Any]:
    """One conversation with its messages (ids come later, in the order of time)."""
    roles = pick(rng, PATTERNS[state])
    times = [start]
    for who in roles[1:]:
        gap = rng.uniform(1, 72) if who == "S" else rng.uniform(0.2, 120)
        times.append(times[-1] + timedelta(hours=gap))
    latest = now - timedelta(minutes=5)
    if times[-1] > latest:  # squeeze the exchange in before now
        span = (times[-1] - start).total_seconds() or 1.0
        room = max((latest - start).total_seconds(), 60.0)
        times = [start + (t - start) * (room / span) for t in times]
    staff = unit["staff"]
    handler = rng.choice(staff)
    messages = []
    for who, at in zip(roles, times, strict=True):
        from_staff = who == "S"
        body = rng.choice(STAFF_TEXT if from_staff else PATIENT_TEXT)
        messages.append(
            {
                "author_id": handler[0] if from_staff else account_id,
                "author_name": handler[1] if from_staff else author,
                "from_staff": from_staff,
                "on_behalf": False,
                "relation_label": None,
                "body": body if rng.random() < 0.7 else body + " " + rng.choice(PATIENT_TEXT),
                "created_at": at,
                "_files": 0 if from_staff or rng.random() > 0.1 else rng.choice((1, 1, 2)),
            }
        )
    topic = pick(rng, ((t, w) for t, (w, _s) in TOPICS.items()))
    closed_at = None
    if state == "closed":
        closed_at = times[-1] if rng.random() < 0.7 else min(times[-1] + timedelta(hours=rng.uniform(1, 300)), latest)
    return {
        "person_id": person_id,
        "care_unit_id": unit["id"],
        "organisation_id": unit["organisation_id"],
        "topic": topic,
        "subject": rng.choice(TOPICS[topic][1]),
        "state": state,
        "assigned_to_id": None if state == "new" else handler[0],
        "refers_to_id": None,
        "started_by_id": account_id,
        "created_at": start,
        "last_message_at": times[-1],
        "closed_at": closed_at,
        "closed_by_id": handler[0] if state == "closed" else None,
        "_messages": messages,
    }


def finish(c: dict[str, Any], rng: random.Random, now: datetime) -> None:
    """The fields that come from message ids: marks, waiting since, revision."""
    msgs = c.pop("_messages")
    ids = [m["id"] for m in msgs]
    staff_ids = [m["id"] for m in msgs if m["from_staff"]]
    last_staff = max(staff_ids, default=0)
    c["last_message_id"] = ids[-1]
    c["last_staff_message_id"] = last_staff
    state = c["state"]
    if state in ("closed", "waiting"):
        c["team_seen_message_id"] = ids[-1]
    elif state == "open":
        c["team_seen_message_id"] = ids[-1] if rng.random() < 0.7 else last_staff
    else:
        c["team_seen_message_id"] = ids[-1] if rng.random() < 0.3 else last_staff
    unanswered = [m for m in msgs if not m["from_staff"] and m["id"] > last_staff]
    c["waiting_since"] = unanswered[0]["created_at"] if state in ("new", "open") else None
    last_patient = max((m["id"] for m in msgs if not m["from_staff"]), default=0)
    recent = now - c["last_message_at"] < timedelta(days=30)
    c["patient_seen_message_id"] = last_patient if (recent and rng.random() < 0.5) else ids[-1]
    # Every reply, every first look by the team, the assignment and the closing each bumped it.
    c["revision"] = (len(ids) - 1) + len(staff_ids) + (c["assigned_to_id"] is not None) + (state == "closed")


def build_world() -> World:
    """The region (see the module's docstring); returns what the measurements need."""
    from sqlalchemy import insert

    from app import clock
    from app.appointments.models import Appointment, AppointmentStatus, Channel
    from app.auth.models import Role, StaffMembership, User
    from app.db import db, keyset_token
    from app.demo.fhir_bundles import history_bundle
    from app.fhir.ingest import import_bundle
    from app.messages.models import Attachment, Conversation, Message, MessageInbox
    from app.people.models import CareUnit, Organisation, OrganisationKind, Person, UnitRelation, UnitRelationKind

    rng = random.Random(SEED)
    now = clock.utcnow()
    today = clock.today_in_norway()

    # Organisations, units, their inboxes and staff (a few dozen rows: the ORM).
    orgs: dict[str, Organisation] = {}
    units: list[CareUnit] = []
    for org_name, kind, unit_name, _days, _staff in UNITS:
        if org_name not in orgs:
            orgs[org_name] = Organisation(name=org_name, kind=OrganisationKind(kind))
        units.append(CareUnit(organisation=orgs[org_name], name=unit_name))
    db.session.add_all(units)
    db.session.flush()
    db.session.add_all(
        MessageInbox(care_unit_id=u.id, accepts_messages=True, answer_days=spec[3], phone="73 86 00 00")
        for u, spec in zip(units, UNITS, strict=True)
    )
    clinician = User(
        display_name="Siri Aune, lege", role=Role.CLINICIAN, password_hash="bench-no-password-login", is_demo=True
    )
    db.session.add(clinician)
    db.session.flush()
    unit_info: list[dict[str, Any]] = []
    n_staff = 1
    for i, (unit, spec) in enumerate(zip(units, UNITS, strict=True)):
        team: list[tuple[int, str]] = []
        if i in (0, SECOND):
            team.append((clinician.id, clinician.display_name))
            db.session.add(StaffMembership(user_id=clinician.id, care_unit_id=unit.id))
        while len(team) < spec[4]:
            role = Role.CLERK if len(team) % 5 == 4 else Role.CLINICIAN
            title = "sekretær" if role is Role.CLERK else rng.choice(("lege", "sykepleier"))
            name = f"{GIVEN[n_staff % len(GIVEN)]} {FAMILY[(n_staff * 3) % len(FAMILY)]}, {title}"
            user = User(display_name=name, role=role, password_hash="bench-no-password-login", is_demo=True)
            db.session.add(user)
            db.session.flush()
            db.session.add(StaffMembership(user_id=user.id, care_unit_id=unit.id))
            team.append((user.id, name))
            n_staff += 1
        unit_info.append({"id": unit.id, "organisation_id": unit.organisation_id, "staff": team})
    db.session.commit()
    staff_cookie = add_session(clinician.id)

    # The patient: logged in, a small record, a GP office and two coming times (the overview's baseline).
    person, patient_cookie = add_patient_with_session("Sander", "Benkesen", date(1990, 10, 2))
    account = db.session.scalars(db.select(User).where(User.person_id == person.id)).one()
    client = add_source("St. Olavs hospital (kilde)", "bench-dips")
    import_bundle(history_bundle(person, prefix="bench-small", seed=7, results=50, notes=5, years=1), client)
    db.session.add(UnitRelation(person_id=person.id, care_unit_id=units[GP].id, kind=UnitRelationKind.GP))
    for days, unit in ((6, units[GP]), (20, units[0])):
        db.session.add(
            Appointment(
                person_id=person.id,
                organisation_id=unit.organisation_id,
                care_unit_id=unit.id,
                title="Kontroll",
                start=now + timedelta(days=days, hours=1),
                minutes=20,
                status=AppointmentStatus.BOOKED,
                booked_via=Channel.SOURCE,
            )
        )
    db.session.commit()
    patient = (person.id, account.id, person.display_name)

    ids = Ids(("person", "account", "conversation", "message", "message_attachment"))
    persons: list[dict[str, Any]] = []
    accounts: list[dict[str, Any]] = []
    pool: list[tuple[int, int, str]] = []  # (person, account, name)
    for _ in range(OTHERS):
        pid, aid = ids("person"), ids("account")
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        persons.append(
            {
                "id": pid,
                "national_id": f"8{pid:010d}",
                "given_name": given,
                "family_name": family,
                "birth_date": today - timedelta(days=rng.randint(18 * 365, 95 * 365)),
                "created_at": now,
                "updated_at": now,
            }
        )
        accounts.append(
            {
                "id": aid,
                "person_id": pid,
                "role": Role.PATIENT,
                "display_name": f"{given} {family}",
                "locale": None,
                "is_demo": False,
                "active": True,
                "created_at": now,
            }
        )
        pool.append((pid, aid, f"{given} {family}"))

    def when(state: str) -> datetime:
        back = rng.uniform(0, RECENT_DAYS[state]) if state in RECENT_DAYS else rng.uniform(2, DAYS)
        return daytime(rng, now - timedelta(days=back))

    convs: list[dict[str, Any]] = []

    def add(who: tuple[int, int, str], unit_index: int, state: str, start: datetime) -> dict[str, Any]:
        c = conversation_rows(
            rng,
            person_id=who[0],
            account_id=who[1],
            author=who[2],
            unit=unit_info[unit_index],
            state=state,
            start=start,
            now=now,
        )
        convs.append(c)
        return c

    # The busy unit: 10,000 open (from many patients) and 20,000 closed over two years.
    busy_people: set[int] = set()
    for state, n in (("new", UNIT_NEW), ("open", UNIT_OPEN), ("waiting", UNIT_WAITING), ("closed", UNIT_CLOSED)):
        for _ in range(n):
            who = rng.choice(pool)
            if state != "closed":
                busy_people.add(who[0])
            add(who, 0, state, when(state))
    # The other units: mostly closed.
    for _ in range(OTHER_CONVERSATIONS):
        state = pick(rng, (("closed", 90), ("new", 4), ("open", 3), ("waiting", 3)))
        add(rng.choice(pool), rng.randrange(1, len(UNITS)), state, when(state))
    # The patient: 500 over two years; the newest few still open (at the GP office), the rest closed.
    starts = sorted(daytime(rng, now - timedelta(days=rng.uniform(0.5, DAYS))) for _ in range(PATIENT_CONVERSATIONS))
    newest = ("waiting", "open", "new", "waiting", "open", "waiting", "new")
    for i, start in enumerate(reversed(starts)):
        state = newest[i] if i < len(newest) else "closed"
        unit_index = GP if state != "closed" else pick(rng, PATIENT_UNITS)
        add(patient, unit_index, state, start)

    # Ids in the order of time, as a running system hands them out.
    convs.sort(key=lambda c: c["created_at"])
    for c in convs:
        c["id"] = ids("conversation")
    messages = [(m, c) for c in convs for m in c["_messages"]]
    messages.sort(key=lambda mc: (mc[0]["created_at"], mc[1]["id"]))
    files: list[dict[str, Any]] = []
    for m, c in messages:
        m["id"] = ids("message")
        m["conversation_id"] = c["id"]
        for _ in range(m.pop("_files")):
            fid = ids("message_attachment")
            image = rng.random() < 0.7
            files.append(
                {
                    "id": fid,
                    "message_id": m["id"],
                    "stored_name": f"{fid:08x}{rng.getrandbits(96):024x}",
                    "preview_name": f"p{fid:08x}{rng.getrandbits(92):023x}" if image else None,
                    "filename": f"IMG_{rng.randrange(10000):04d}.jpg" if image else "henvisning.pdf",
                    "content_type": "image/jpeg" if image else "application/pdf",
                    "size": rng.randint(40_000, 4_000_000),
                    "sha256": f"{rng.getrandbits(256):064x}",
                    "created_at": m["created_at"],
                }
            )
    message_rows = [m for m, _c in messages]
    for c in convs:
        finish(c, rng, now)

    started = time.perf_counter()
    for model, rows in (
        (Person, persons),
        (User, accounts),
        (Conversation, convs),
        (Message, message_rows),
        (Attachment, files),
    ):
        for i in range(0, len(rows), 5000):
            db.session.execute(insert(model.__table__), rows[i : i + 5000])
    tables = ("person", "account", "conversation", "message", "message_attachment")
    for table in tables:
        db.session.execute(
            db.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        )
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # only this schema's tables (search_path): other schemas may belong to test runs
        conn.execute(db.text("VACUUM ANALYZE"))
    inserted = sum(len(r) for r in (persons, accounts, convs, message_rows, files))
    log(f"  {inserted:,} rows inserted and analysed in {time.perf_counter() - started:.1f} s")

    mine = [c for c in convs if c["person_id"] == patient[0]]
    mine.sort(key=lambda c: (c["last_message_at"], c["id"]), reverse=True)
    polled = next(c for c in mine if c["state"] != "closed")
    queue = [c for c in convs if c["care_unit_id"] == unit_info[0]["id"] and c["state"] == "new"]
    queue.sort(key=lambda c: (c["last_message_at"], c["id"]))
    per_conv = Counter(m["conversation_id"] for m in message_rows)
    mine_ids = {c["id"] for c in mine}
    mine_messages = {m["id"] for m in message_rows if m["conversation_id"] in mine_ids}
    mine_files = sum(1 for f in files if f["message_id"] in mine_messages)

    def cursor(c: dict[str, Any]) -> str:
        return keyset_token(c["last_message_at"], c["id"])

    states = Counter(c["state"] for c in convs if c["care_unit_id"] == unit_info[0]["id"])
    return World(
        patient_id=patient[0],
        patient_given="Sander",
        patient_cookie=patient_cookie,
        staff_cookie=staff_cookie,
        staff_name=clinician.display_name,
        unit_id=unit_info[0]["id"],
        unit_name=f"{UNITS[0][2]}, {UNITS[0][0]}",
        second_unit_id=unit_info[SECOND]["id"],
        poll_id=polled["id"],
        poll_revision=polled["revision"],
        list_first=[c["id"] for c in mine[:LIST_PAGE]],
        list_cursor=cursor(mine[LIST_PAGE - 1]),
        inbox_first=[c["id"] for c in queue[:INBOX_PAGE]],
        inbox_cursor=cursor(queue[INBOX_PAGE - 1]),
        rows={
            "other patients (with accounts)": len(persons),
            "staff accounts": sum(len(u["staff"]) for u in unit_info) - 1,
            "conversations": len(convs),
            "messages": len(message_rows),
            "attachment rows": len(files),
        },
        notes={
            "unit_states": dict(states),
            "unit_open_patients": len(busy_people),
            "patient_conversations": len(mine),
            "patient_messages": sum(per_conv[i] for i in mine_ids),
            "patient_attachments": mine_files,
            "patient_units": len({c["care_unit_id"] for c in mine}),
            "patient_states": dict(Counter(c["state"] for c in mine)),
            "poll_state": polled["state"],
            "clinician_assigned_open": sum(
                1 for c in convs if c["assigned_to_id"] == clinician.id and c["state"] in ("open", "waiting", "new")
            ),
        },
    )


# --- pages ------------------------------------------------------------------------------------------


@dataclass
class Page:
    path: str
    cookie: str | None
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200


def pages_of(world: World) -> dict[str, Page]:
    """The measured pages (the hello-world route is another server's)."""
    inbox = f"/ansatt/meldinger?enhet={world.unit_id}&visning=ny"
    return {
        OVERVIEW: Page("/", world.patient_cookie),
        LIST: Page("/meldinger", world.patient_cookie),
        INBOX: Page(inbox, world.staff_cookie),
        POLL: Page(f"/meldinger/{world.poll_id}/nye?rev={world.poll_revision}", world.patient_cookie, HTMX, 204),
    }


def extra_pages(world: World) -> dict[str, Page]:
    """Explained beside the measured ones, outside the budgets."""
    base = f"/ansatt/meldinger?enhet={world.unit_id}"
    return {
        "conversation list, page 2 (htmx)": Page(f"/meldinger?for={world.list_cursor}", world.patient_cookie, HTMX),
        "staff inbox, new, page 2 (htmx)": Page(
            f"{base}&visning=ny&etter={world.inbox_cursor}", world.staff_cookie, HTMX
        ),
        "staff inbox, mine": Page(f"{base}&visning=mine", world.staff_cookie),
        "staff inbox, waiting for the patient": Page(f"{base}&visning=venter", world.staff_cookie),
        "staff inbox, closed": Page(f"{base}&visning=lukket", world.staff_cookie),
    }


def check_pages(port: int, world: World) -> None:
    """Each page answers as it should: the overview greets the patient, the list shows the expected 20
    with more to come, the inbox the unit's 20 oldest new ones with more to come, the poll 204 (and the
    thread when the revision is an older one)."""
    pages = pages_of(world)
    for name, page in pages.items():
        status, body = fetch_page(port, page.path, page.cookie or "", page.headers)
        if status != page.status:
            raise RuntimeError(f"{name} ({page.path}): HTTP {status}, not {page.status}\n{body[:500]}")
        if name == OVERVIEW and f"Hei, {world.patient_given}" not in body:
            raise RuntimeError("the overview does not greet the patient")
        if name == LIST:
            listed = [int(x) for x in re.findall(r'href="/meldinger/(\d+)"', body)]
            if listed != world.list_first or 'id="more-conversations"' not in body:
                raise RuntimeError(f"the list shows {listed}, not {world.list_first} with more to come")
        if name == INBOX:
            listed = [int(x) for x in re.findall(r'href="/ansatt/meldinger/(\d+)"', body)]
            if listed != world.inbox_first or 'id="more-rows"' not in body:
                raise RuntimeError(f"the inbox shows {listed[:5]}..., not {world.inbox_first[:5]}... with more")
            if "99+" not in body:
                raise RuntimeError("the inbox does not count 99+ new conversations")
        if name == POLL and body:
            raise RuntimeError(f"the poll answered 204 with a body: {body[:200]}")
    stale = pages[POLL].path.replace(f"rev={world.poll_revision}", f"rev={world.poll_revision - 1}")
    status, body = fetch_page(port, stale, world.patient_cookie, HTMX)
    if status != 200 or "<" not in body:
        raise RuntimeError(f"a poll with an older revision answered {status}, not the thread")


def capture(app: Any, page: Page, warm: bool = True) -> list[tuple[str, Any, float]]:
    """The statements one request runs, with their client-side milliseconds (the second request,
    caches warm, unless ``warm`` is False)."""
    from sqlalchemy import event

    from app.db import db

    captured: list[tuple[str, Any, float]] = []
    started: list[float] = []

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        started.append(time.perf_counter())

    def after(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        captured.append((statement, parameters, (time.perf_counter() - started.pop()) * 1000))

    client = app.test_client()
    if page.cookie:
        client.set_cookie(COOKIE, page.cookie, secure=True, httponly=True, samesite="Lax")
    if warm:
        contextvars.Context().run(client.get, page.path, headers=page.headers)
    event.listen(db.engine, "before_cursor_execute", before)
    event.listen(db.engine, "after_cursor_execute", after)
    try:
        response = contextvars.Context().run(client.get, page.path, headers=page.headers)
    finally:
        event.remove(db.engine, "before_cursor_execute", before)
        event.remove(db.engine, "after_cursor_execute", after)
    if response.status_code != page.status:
        raise RuntimeError(f"{page.path}: HTTP {response.status_code}, not {page.status}")
    return captured


def table_sizes() -> dict[str, float]:
    from app.db import db

    rows = db.session.execute(
        db.text(
            "SELECT relname, reltuples FROM pg_class WHERE relkind = 'r' "
            "AND relnamespace = current_schema()::regnamespace"
        )
    ).all()
    db.session.rollback()
    return {name: tuples for name, tuples in rows}


def seq_scans(plan: str, sizes: dict[str, float]) -> list[str]:
    """Tables of more than SEQ_SCAN_ROWS rows that the plan reads by a Seq Scan."""
    found = dict.fromkeys(re.findall(r"Seq Scan on (\w+)", plan))
    return [t for t in found if sizes.get(t, 0) > SEQ_SCAN_ROWS]


def is_main_query(sql: str) -> bool:
    """services.conversations / services.inbox: a page of conversations in keyset order."""
    return bool(re.search(r"\bFROM conversation\b", sql)) and "ORDER BY conversation.last_message_at" in sql


def profile(app: Any, pages: dict[str, Page], sizes: dict[str, float]) -> dict[str, Any]:
    """Per page: its statements, grouped by shape (a shape run many times a request is an N+1), and the
    first of each SELECT shape under EXPLAIN ANALYZE (best of 3; the list or inbox query best of 5 and
    also as the generic plan)."""
    out: dict[str, Any] = {}
    for name, page in pages.items():
        statements = capture(app, page)
        verbs = Counter(s.lstrip().split(" ", 1)[0].upper() for s, _p, _ms in statements)
        groups: dict[str, list[tuple[str, Any, float]]] = {}
        for sql, params, ms in statements:
            groups.setdefault(shape(sql), []).append((sql, params, ms))
        rows = []
        main = None
        for group in groups.values():
            sql, params, _ms = group[0]
            row: dict[str, Any] = {
                "sql": short(sql),
                "n": len(group),
                "client_ms": sum(ms for _s, _p, ms in group),
                "ms": None,
                "line": "",
                "seq_scans": [],
            }
            if sql.lstrip().upper().startswith("SELECT"):
                is_main = is_main_query(sql) and main is None
                ms, plan = explain(sql, params, runs=5 if is_main else 3)
                row.update(ms=ms, line=plan_line(plan), seq_scans=seq_scans(plan, sizes))
                if is_main:
                    generic_ms, generic = explain_generic(sql, params)
                    main = {
                        **row,
                        "plan": plan,
                        "generic_ms": generic_ms,
                        "generic_line": plan_line(generic),
                        "generic_plan": generic,
                        "generic_seq_scans": seq_scans(generic, sizes),
                        "full_sql": " ".join(sql.split()),
                        "params": repr(params),
                    }
            rows.append(row)
        out[name] = {
            "path": page.path,
            "statements": len(statements),
            "verbs": dict(verbs),
            "client_ms": sum(ms for _s, _p, ms in statements),
            "shapes": [short(s) for s, _p, _ms in statements],
            "groups": rows,
            "main": main,
        }
        flags = [f"{r['sql'][:60]}: {', '.join(r['seq_scans'])}" for r in rows if r["seq_scans"]]
        repeated = [f"{r['n']}x {r['sql'][:60]}" for r in rows if r["n"] >= 5]
        log(
            f"  {name}: {len(statements)} statements ({', '.join(f'{n} {v}' for v, n in verbs.items())}), "
            f"{out[name]['client_ms']:.1f} ms in round trips"
            + (f"; main query {main['ms']:.2f} ms, generic {main['generic_ms']:.2f} ms" if main else "")
            + (f"; REPEATED: {'; '.join(repeated)}" if repeated else "")
            + (f"; SEQ SCAN: {'; '.join(flags)}" if flags else "")
        )
    return out


def audit_rows_per_inbox(app: Any, page: Page) -> int:
    from app.db import db

    def count() -> int:
        n = db.session.execute(db.text("SELECT count(*) FROM audit_event WHERE action = 'list_inbox'")).scalar_one()
        db.session.rollback()
        return n

    before = count()
    capture(app, page, warm=False)
    return count() - before


def in_process(app: Any, hello: Any, pages: dict[str, Page], n: int) -> dict[str, dict[str, float]]:
    """Milliseconds per request through the test client, one at a time, the pages alternating
    (bench/record.py's way); the hello-world app and Varde's /healthz beside them."""
    targets = [(HELLO, hello, Page("/", None)), (HEALTHZ, app, Page("/healthz", None))]
    targets += [(name, app, page) for name, page in pages.items()]
    clients = []
    for name, flask_app, page in targets:
        client = flask_app.test_client()
        if page.cookie:
            client.set_cookie(COOKIE, page.cookie, secure=True, httponly=True, samesite="Lax")
        for _ in range(5):  # warm
            contextvars.Context().run(client.get, page.path, headers=page.headers)
        clients.append((name, page, client))
    wall: dict[str, list[float]] = {name: [] for name, _a, _p in targets}
    cpu: dict[str, list[float]] = {name: [] for name, _a, _p in targets}
    for i in range(n):
        for name, page, client in clients if i % 2 == 0 else reversed(clients):
            cpu0, started = time.process_time(), time.perf_counter()
            response = contextvars.Context().run(client.get, page.path, headers=page.headers)
            wall[name].append((time.perf_counter() - started) * 1000)
            cpu[name].append((time.process_time() - cpu0) * 1000)
            if response.status_code != page.status:
                raise RuntimeError(f"{name} ({page.path}): HTTP {response.status_code}, not {page.status}")
    return {
        name: {
            "n": len(ts),
            "p50": percentile(ts, 50),
            "p99": percentile(ts, 99),
            "max": max(ts),
            "cpu_p50": percentile(cpu[name], 50),
        }
        for name, ts in wall.items()
    }


@dataclass
class Row:
    round: int
    name: str
    run: Run
    worker_cpu_ms: float  # the gunicorn workers' CPU per request
    pg_cpu_ms: float  # every PostgreSQL process's CPU per request
    cpu_text: str


def drain(url: str) -> None:
    """Wait until the server has worked off what wrk left queued: when wrk stops, the connections it
    opened last are still in gunicorn's listen queue, and a sync worker answers each of them before it
    accepts a new one. Without this, the next target's first requests would wait behind the previous
    target's (a slow page's queue is a second or more): its p99 would be the previous page's. The queue
    is first come, first served: a request comes back once everything queued before it was taken; the
    second one and the pause cover a request still running in the other worker."""
    for _ in range(2):
        with urllib.request.urlopen(url, timeout=60) as response:
            response.read()
    time.sleep(0.2)


def served(url: str, world: World, seconds: int, rounds: int, connections: int) -> dict[str, Any]:
    """The pages under gunicorn and wrk, alternating rounds with the hello-world route."""
    env = {**os.environ, "DATABASE_URL": url, "VARDE_DEMO": "1", "FLASK_APP": "wsgi"}
    servers: dict[str, Gunicorn] = {}
    rows: list[Row] = []
    pages = pages_of(world)
    started = time.perf_counter()
    try:
        servers["hello"] = Gunicorn("bench.hello:app", env)
        servers["varde"] = Gunicorn("wsgi:app", env)
        port = servers["varde"].port
        check_pages(port, world)
        targets: list[tuple[str, str, str | None, dict[str, str], str]] = [
            (HELLO, f"http://127.0.0.1:{servers['hello'].port}/", None, {}, "hello"),
            (HEALTHZ, f"http://127.0.0.1:{port}/healthz", None, {}, "varde"),  # Varde's stack, no session, no DB
        ]
        targets += [
            (name, f"http://127.0.0.1:{port}{page.path}", page.cookie, page.headers, "varde")
            for name, page in pages.items()
        ]
        drains = {"hello": f"http://127.0.0.1:{servers['hello'].port}/", "varde": f"http://127.0.0.1:{port}/healthz"}
        log("served: warming up")
        for _name, target, cookie, headers, server in targets:
            wrk_with(target, 2, connections, cookie, headers)
            drain(drains[server])
        workers = {server: children(servers[server].proc.pid) for server in servers}
        for r in range(rounds):
            for name, target, cookie, headers, server in targets if r % 2 == 0 else list(reversed(targets)):
                with CpuWindow({"gunicorn workers": workers[server]}) as cpu:
                    run = wrk_with(target, seconds, connections, cookie, headers)
                    cpu.stop()
                drain(drains[server])
                done = max(run.rps * cpu.seconds, 1.0)
                worker_ms = cpu.used["gunicorn workers"] / done * 1000
                pg_ms = cpu.used["PostgreSQL"] / done * 1000
                log(
                    f"  round {r + 1}: {name}: {run.rps:,.0f} req/s, p50 {run.p50:.1f} ms, p99 {run.p99:.1f} ms; "
                    f"CPU per request: workers {worker_ms:.2f} ms, PostgreSQL {pg_ms:.2f} ms; {cpu.describe()}"
                )
                rows.append(Row(r, name, run, worker_ms, pg_ms, cpu.describe()))
        check_pages(port, world)  # still logged in, the same rows, the poll still has nothing new
    finally:
        for server in servers.values():
            server.stop()
    elapsed = time.perf_counter() - started

    def runs(name: str) -> list[Run]:
        return [row.run for row in sorted(rows, key=lambda row: row.round) if row.name == name]

    def med(name: str, key: str) -> float:
        return statistics.median(getattr(row, key) for row in rows if row.name == name)

    overview, hello, poll = runs(OVERVIEW), runs(HELLO), runs(POLL)
    figures: dict[str, Any] = {
        "seconds": seconds,
        "rounds": rounds,
        "connections": connections,
        "elapsed_s": elapsed,
        "wrk": {
            name: {
                "rps": statistics.median(r.rps for r in runs(name)),
                "p50": statistics.median(r.p50 for r in runs(name)),
                "p99": statistics.median(r.p99 for r in runs(name)),
                "worker_cpu_ms": med(name, "worker_cpu_ms"),
                "pg_cpu_ms": med(name, "pg_cpu_ms"),
                "each": [{"rps": r.rps, "p50": r.p50, "p99": r.p99} for r in runs(name)],
                "cpu_each": [row.cpu_text for row in rows if row.name == name],
            }
            for name in (HELLO, HEALTHZ, *pages)
        },
    }
    for name, key in ((LIST, "list"), (INBOX, "inbox")):
        p99s = [x.p99 / o.p99 for x, o in zip(runs(name), overview, strict=True)]
        p50s = [x.p50 / o.p50 for x, o in zip(runs(name), overview, strict=True)]
        figures[key] = {"p99_ratios": p99s, "p99_ratio": statistics.median(p99s), "p50_ratios": p50s}
    time_ratios = [h.rps / p.rps for p, h in zip(poll, hello, strict=True)]  # (1/poll rps) / (1/hello rps)
    p50_ratios = [p.p50 / h.p50 for p, h in zip(poll, hello, strict=True)]
    p99_ratios = [p.p99 / h.p99 for p, h in zip(poll, hello, strict=True)]
    healthz = [h.rps / z.rps for z, h in zip(runs(HEALTHZ), hello, strict=True)]
    w = figures["wrk"]
    figures["poll"] = {
        "time_ratios": time_ratios,
        "time_ratio": statistics.median(time_ratios),
        "p50_ratios": p50_ratios,
        "p50_ratio": statistics.median(p50_ratios),
        "p99_ratios": p99_ratios,
        "p99_ratio": statistics.median(p99_ratios),
        "worker_cpu_ratio": w[POLL]["worker_cpu_ms"] / w[HELLO]["worker_cpu_ms"] if w[HELLO]["worker_cpu_ms"] else None,
        "healthz_time_ratios": healthz,
        "healthz_time_ratio": statistics.median(healthz),
    }
    return figures


def measure(url: str, world: World, args: argparse.Namespace, figures: dict[str, Any]) -> None:
    with app_on(url) as app:
        from bench.hello import app as hello

        sizes = table_sizes()
        figures["table_rows"] = {k: int(v) for k, v in sorted(sizes.items()) if v > SEQ_SCAN_ROWS}
        log("statements and EXPLAIN ANALYZE per page")
        figures["profile"] = profile(app, pages_of(world), sizes)
        figures["profile_extra"] = profile(app, extra_pages(world), sizes)
        figures["audit_rows_per_inbox_page"] = audit_rows_per_inbox(app, pages_of(world)[INBOX])
        log(f"in-process: {args.requests} requests per page")
        figures["in_process"] = in_process(app, hello, pages_of(world), args.requests)
        for name, t in figures["in_process"].items():
            log(f"  {name}: p50 {t['p50']:.2f} ms, p99 {t['p99']:.2f} ms, CPU p50 {t['cpu_p50']:.2f} ms")
    if not shutil.which("wrk"):
        figures["skipped"].append("wrk not found (apt-get install wrk): the served pages were not measured.")
        return
    log(f"served: gunicorn, 2 sync workers; wrk -t2 -c{args.connections} -d{args.seconds}s, {args.rounds} round(s)")
    figures["served"] = served(url, world, args.seconds, args.rounds, args.connections)


# --- report ----------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "ok" if ok else "**missed**"


def report(f: dict[str, Any]) -> tuple[str, str]:
    """(the report, the query plans for messages.md)"""
    lines = [
        f"# Secure-messages benchmarks, {f['stamp']}",
        "",
        f"Commit {f['commit']}; Python {f['python']}, PostgreSQL {f.get('pg', '?')}, {os.cpu_count()} CPUs, "
        f"load average {f['load_start']} at the start, {f['load_end']} at the end; the whole run took "
        f"{f.get('elapsed_s', 0):.0f} s{' (--quick)' if f['quick'] else ''}.",
        "",
        *(
            [f"Uncommitted in app/ when it ran: {', '.join(f'`{x.strip()}`' for x in f['app_changes'])}.", ""]
            if f.get("app_changes")
            else []
        ),
        *([f["label"], ""] if f.get("label") else []),
    ]
    plans: list[str] = []
    world = f.get("world")
    if world:
        rows = ", ".join(f"{v:,} {k}" for k, v in world["rows"].items())
        n = world["notes"]
        states = ", ".join(f"{v:,} {k}" for k, v in n["unit_states"].items())
        pstates = ", ".join(f"{v} {k}" for k, v in n["patient_states"].items())
        lines += [
            f"Data (one private schema, built in {world['build_s']:.0f} s): {rows}; {len(UNITS)} care units over "
            f"two years. The inbox's unit, {world['unit']}: {states} ({n['unit_open_patients']:,} different "
            f"patients among the open ones). The clinician is a member of it and of one more unit, and has "
            f"{n['clinician_assigned_open']} open conversations assigned. The patient: {n['patient_conversations']} "
            f"conversations with {n['patient_units']} units ({pstates}), {n['patient_messages']:,} messages, "
            f"{n['patient_attachments']} attachment rows; a small record (about 50 results) and two coming times. "
            f"The poll asks about the patient's newest open conversation ({n['poll_state']}).",
            "",
        ]
    s = f.get("served")
    if s:
        w = s["wrk"]
        lines += [
            f"## Served (gunicorn, 2 sync workers; `wrk -t2 -c{s['connections']} -d{s['seconds']}s --latency`, "
            f"{s['rounds']} round(s) in alternating order; medians over the rounds)",
            "",
            "| target | req/s | p50 ms | p99 ms | CPU ms/request, workers | CPU ms/request, PostgreSQL |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        labels = {
            HELLO: "hello-world Flask route (bench/hello.py)",
            HEALTHZ: "Varde `/healthz` (Varde's stack, no session, no database; context)",
            OVERVIEW: "`/` (overview, the patient)",
            LIST: "`/meldinger` (the patient's 500 conversations, first 20)",
            INBOX: "`/ansatt/meldinger?enhet=…&visning=ny` (10,000 open, first 20; 20 audit rows)",
            POLL: "`/meldinger/<id>/nye?rev=<current>` + HX-Request (204)",
        }
        for name, label in labels.items():
            r = w[name]
            lines.append(
                f"| {label} | {r['rps']:,.0f} | {r['p50']:.1f} | {r['p99']:.1f} | {r['worker_cpu_ms']:.2f} "
                f"| {r['pg_cpu_ms']:.2f} |"
            )
        p = s["poll"]

        def each(values: list[float]) -> str:
            return ", ".join(f"{x:.2f}" for x in values)

        lines += [
            "",
            "| budget | measured (median; each round) | verdict |",
            "|---|---|---|",
            f"| 1. list p99 / overview p99 <= {LIST_RATIO_BUDGET} | **{s['list']['p99_ratio']:.2f}** "
            f"({each(s['list']['p99_ratios'])}) | {verdict(s['list']['p99_ratio'] <= LIST_RATIO_BUDGET)} |",
            f"| 2. inbox p99 / overview p99 <= {INBOX_RATIO_BUDGET} | **{s['inbox']['p99_ratio']:.2f}** "
            f"({each(s['inbox']['p99_ratios'])}) | {verdict(s['inbox']['p99_ratio'] <= INBOX_RATIO_BUDGET)} |",
            f"| 3. poll time / hello time < {POLL_RATIO_BUDGET:g}, by throughput (hello req/s / poll req/s) "
            f"| **{p['time_ratio']:.2f}** ({each(p['time_ratios'])}) | {verdict(p['time_ratio'] < POLL_RATIO_BUDGET)} |",
            f"| 3. poll p50 / hello p50 < {POLL_RATIO_BUDGET:g} | **{p['p50_ratio']:.2f}** ({each(p['p50_ratios'])}) "
            f"| {verdict(p['p50_ratio'] < POLL_RATIO_BUDGET)} |",
            "",
            f"Beside the budgets: p50 list/overview {each(s['list']['p50_ratios'])}, inbox/overview "
            f"{each(s['inbox']['p50_ratios'])}; poll p99 / hello p99 {p['p99_ratio']:.2f} ({each(p['p99_ratios'])}); "
            f"the workers' CPU per request (less sensitive to what else the machine does) list/overview "
            f"{w[LIST]['worker_cpu_ms'] / w[OVERVIEW]['worker_cpu_ms']:.2f}, inbox/overview "
            f"{w[INBOX]['worker_cpu_ms'] / w[OVERVIEW]['worker_cpu_ms']:.2f}, poll/hello "
            + (f"{p['worker_cpu_ratio']:.2f}" if p["worker_cpu_ratio"] else "?")
            + f"; Varde's `/healthz` time / hello time {p['healthz_time_ratio']:.2f} ({each(p['healthz_time_ratios'])}): "
            "what Varde's request handling costs before a session or a query. wrk itself runs on the same cores "
            '(in "everything else" below). The baseline of budgets 1 and 2 is the patient\'s overview. '
            f"Served part: {s['elapsed_s']:.0f} s. "
            f"The machine during the poll runs: {'; '.join(w[POLL]['cpu_each'])}; during the hello runs: "
            f"{'; '.join(w[HELLO]['cpu_each'])}.",
            "",
        ]
    ip = f.get("in_process")
    if ip:
        hello = ip[HELLO]
        lines += [
            f"## In-process (Flask test client, one request at a time, {hello['n']} per target, alternating; "
            "CPU: this process's)",
            "",
            "| target | p50 ms | p99 ms | max ms | CPU ms p50 | p50 / hello-world |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, t in ip.items():
            lines.append(
                f"| {name} | {t['p50']:.2f} | {t['p99']:.2f} | {t['max']:.2f} | {t['cpu_p50']:.2f} "
                f"| {t['p50'] / hello['p50']:.1f} |"
            )
        lines.append("")
    prof = f.get("profile")
    if prof:
        lines += [
            "## Statements per request, and the SELECTs under EXPLAIN ANALYZE",
            "",
            "One request per page, caches warm; its statements grouped by shape (how many times a request "
            "runs each, and their client-side round trips summed); the first of each SELECT shape re-run under "
            "EXPLAIN (ANALYZE, BUFFERS), best of 3 (the list or inbox query best of 5; execution time in the "
            f"database). A Seq Scan on a table of more than {SEQ_SCAN_ROWS:,} rows is flagged, and so is a shape "
            f"run 5 or more times a request. The inbox page wrote {f['audit_rows_per_inbox_page']} audit rows per "
            "request.",
            "",
            "| page | statements (round trips) | statement | times | round trips ms | EXPLAIN ms | plan |",
            "|---|---|---|---:|---:|---:|---|",
        ]
        for group in (prof, f.get("profile_extra", {})):
            for name, p in group.items():
                verbs = ", ".join(f"{n} {v}" for v, n in p["verbs"].items())
                first = True
                for r in p["groups"]:
                    flag = f" **Seq Scan on {', '.join(r['seq_scans'])}**" if r["seq_scans"] else ""
                    head = f"{name} | {p['statements']}: {verbs} ({p['client_ms']:.1f} ms)" if first else " | "
                    times = f"**{r['n']}**" if r["n"] >= 5 else str(r["n"])
                    ms = f"{r['ms']:.3f}" if r["ms"] is not None else ""
                    lines.append(
                        f"| {head} | `{r['sql'][:100]}` | {times} | {r['client_ms']:.2f} | {ms} "
                        f"| {r['line'][:260]}{flag} |"
                    )
                    first = False
        lines += [""]
        for group in (prof, f.get("profile_extra", {})):
            for name, p in group.items():
                m = p["main"]
                if not m:
                    continue
                flag = f" **Seq Scan on {', '.join(m['seq_scans'])}**" if m["seq_scans"] else " No Seq Scan."
                gflag = (
                    f" **Seq Scan on {', '.join(m['generic_seq_scans'])}**"
                    if m["generic_seq_scans"]
                    else " No Seq Scan."
                )
                lines.append(f"- {name} (`{p['path']}`): {m['ms']:.3f} ms.{flag} {m['line']}")
                lines.append(f"  - generic plan: {m['generic_ms']:.3f} ms.{gflag} {m['generic_line']}")
                plans += [f"### {name}: `{p['path']}`", "", "```sql", m["full_sql"], "```", ""]
                plans += [f"parameters: `{m['params']}`", "", "```", m["plan"], "```", ""]
                plans += ["Generic plan:", "", "```", m["generic_plan"], "```", ""]
        poll = prof.get(POLL)
        if poll:
            lines += [
                "",
                f"The poll with nothing new runs {poll['statements']} statements: "
                + "; ".join(f"`{x[:90]}`" for x in poll["shapes"])
                + ".",
            ]
        lines.append("")
    for note in f.get("skipped", []):
        lines += [f"Skipped: {note}", ""]
    return "\n".join(lines), "\n".join(plans)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3-second wrk runs, one round, 50 in-process requests")
    parser.add_argument("--seconds", type=int, help="seconds per wrk run (default 10; --quick 3)")
    parser.add_argument("--rounds", type=int, help="wrk rounds (default 3; --quick 1)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32, as bench/record.py)")
    parser.add_argument("--requests", type=int, help="in-process requests per target (default 200; --quick 50)")
    parser.add_argument("--label", help="a line under the heading (what this run measures, e.g. a variant)")
    parser.add_argument("--no-append", action="store_true", help="do not write messages.md and messages.json")
    args = parser.parse_args()
    args.seconds = args.seconds or (3 if args.quick else 10)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.requests = args.requests or (50 if args.quick else 200)
    started = time.perf_counter()

    figures: dict[str, Any] = {
        "stamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git("rev-parse", "--short", "HEAD")
        + (" (with uncommitted changes)" if git("status", "--porcelain", "--", "app") else ""),
        "app_changes": git("status", "--porcelain", "--", "app").splitlines(),
        "python": sys.version.split()[0],
        "load_start": load(),
        "label": args.label,
        "quick": args.quick,
        "skipped": [],
        "budgets": {
            "list_p99_ratio": LIST_RATIO_BUDGET,
            "inbox_p99_ratio": INBOX_RATIO_BUDGET,
            "poll_hello_ratio": POLL_RATIO_BUDGET,
        },
    }
    with tempfile.TemporaryDirectory() as instance:
        # Before app is imported: Config reads these once; gunicorn inherits them.
        os.environ.update({"VARDE_INSTANCE_PATH": instance, "SECRET_KEY": secrets.token_hex(32)})
        for name in ("REDIS_URL", "DATABASE_URL", "VARDE_PUSH_WAKE_WORKER"):
            os.environ.pop(name, None)
        if not pg_reachable():
            figures["skipped"].append("PostgreSQL on 127.0.0.1:5432 does not answer: nothing was measured.")
        else:
            url, schema = create_schema()
            try:
                with app_on(url) as _app:
                    from app.db import db

                    figures["pg"] = db.session.execute(db.text("SHOW server_version")).scalar_one()
                    log(f"building the region in schema {schema}")
                    t0 = time.perf_counter()
                    world = build_world()
                    build_s = time.perf_counter() - t0
                    log(f"  built in {build_s:.1f} s: {world.rows}")
                    figures["world"] = {
                        "rows": world.rows,
                        "notes": world.notes,
                        "build_s": build_s,
                        "unit": world.unit_name,
                    }
                measure(url, world, args, figures)
            finally:
                drop_schema(schema)
    figures["load_end"] = load()
    figures["elapsed_s"] = time.perf_counter() - started
    text, plans = report(figures)
    print(text)
    if not args.no_append:
        out = ROOT / "bench" / "results"
        out.mkdir(exist_ok=True)
        with (out / "messages.md").open("a") as fh:
            fh.write(text + "\n")
            if plans:
                fh.write("\n".join(["<details><summary>Query plans</summary>", "", plans, "</details>", "", ""]))
        (out / "messages.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
