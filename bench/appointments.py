"""Benchmarks for the appointments issue, each side by side with its baseline in the same run.

Both run in one private PostgreSQL schema that looks like a region's: 10,000 active waiting-list
entries (a large share on one visit type and care unit, the rest over 20 others; varied priorities,
ages, weekdays, hours and notice; their patients with accounts, push subscriptions, some notification
settings, some of them children whose parent gets the notice), every waiting patient's own booked
time, a history of earlier offers, and about 50,000 slots in all (past, booked, free).

1. Cancellation -> offers written. In Varde the offers of a freed slot (rows in ``offer``, their
   events through ``app.notify.events.emit_many``, the notifications and push deliveries) are written
   in the cancelling transaction (services._release -> offers.offer_slot), so the time measured is
   the whole transaction as a patient's cancel runs it: ``services.cancel_by_patient(viewer,
   appointment, now)`` and ``db.session.commit()``, from the call until the commit returns (the
   viewer and the appointment are loaded just before, as the route does). Different booked times of
   the busy visit type are cancelled one after another, each a fresh transaction and each freed slot
   earlier than, and inside the days and hours of, some of the waiting entries. Afterwards the offers
   and their ``event`` rows of every cancellation are counted: a cancellation without offers fails
   the run. Baseline in the same run, interleaved: a trivial transaction (one audit row, committed).
   A few more cancellations run with every statement timed and the candidate query under EXPLAIN
   ANALYZE. Budget: p95 <= 200 ms on PostgreSQL.
2. The free-slot search page ``GET /timer/bestill/<visit type>`` (the next free times, soonest first,
   20 a page) for a visit type with 5,000 future free slots, side by side with the overview ``GET /``
   for the same logged-in patient (a small record and a few times), under gunicorn with 2 sync
   workers and ``wrk -t2 -c32 --latency`` in alternating rounds with a hello-world Flask route, as
   bench/record.py measures pages; the same pages in-process (test client) too, and the page's slot
   query under EXPLAIN ANALYZE (a Seq Scan on slot is flagged), both as planned for its parameters and
   as the generic plan PostgreSQL caches once psycopg has prepared the statement (from its sixth
   execution on a connection). Page 2 ("Vis flere tider", the fragment htmx fetches) and page 101 are
   measured and explained beside it, outside the budget. Budget: search p99 <= 1.5 x overview p99.

    .venv/bin/python bench/appointments.py [--quick] [--cancellations N] [--seconds S] [--rounds N]
                                           [--skip-cancel] [--skip-search] [--label TEXT] [--no-append]

(also run by ``make bench`` through bench/run.py)

The report goes to stdout (progress to stderr), is appended to bench/results/appointments.md, and
the figures of this run are written to bench/results/appointments.json. Needs PostgreSQL on
127.0.0.1:5432 (VARDE_BENCH_PG_URL; a private schema, dropped afterwards) and wrk for the served
pages; without them the parts that need them are skipped with a message. The machine is shared: the
cancellations come with the CPU this process and its PostgreSQL backend used for each, and what the
whole machine did meanwhile. Exits with status 1 when a cancellation wrote no offers.
"""

from __future__ import annotations

import argparse
import contextvars
import json
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The schema, app, gunicorn and wrk helpers are bench/record.py's; CPU accounting is bench/push.py's.
from bench.push import CpuWindow, git, load, percentile, proc_cpu  # noqa: E402
from bench.record import (  # noqa: E402
    COOKIE,
    Gunicorn,
    Run,
    add_patient_with_session,
    add_source,
    app_on,
    create_schema,
    drop_schema,
    fetch,
    log,
    pg_reachable,
    shape,
    wrk,
)

PAGE2 = "search, page 2 (htmx)"
CANCEL_BUDGET_MS = 200.0  # p95, cancellation transaction
SEARCH_RATIO_BUDGET = 1.5  # search p99 / overview p99
WAITING = 10_000  # active waiting-list entries
HOT_WAITING = 4_000  # of them on the busy visit type and unit
SEARCH_FREE = 5_000  # future free slots of the searched visit type
SLOTS_TOTAL = 50_000
OFFER_HISTORY = 30_000  # earlier offers (expired, declined, taken) on past slots
FILLERS = 3_000  # other patients who hold the other booked times
WARM = 5  # cancellations before the timed ones (statement caches)
PROFILED = 10  # cancellations after them, every statement timed
SEED = 20261126
DAY_OPENS, DAY_CLOSES = clock_time(8, 0), clock_time(16, 0)
GIVEN = ("Kari", "Ola", "Anne Marie", "Nils", "Ingrid", "Per Olav", "Sofie", "Emil", "Åse", "Øystein")

UNITS = (  # (organisation index, unit, place, city)
    (0, "Øyepoliklinikken", "Øyesenteret", "Trondheim"),
    (0, "Hørselssentralen", "Hørselssentralen", "Trondheim"),
    (0, "Ortopedisk poliklinikk", "Bevegelsessenteret", "Trondheim"),
    (0, "Medisinsk poliklinikk", "Gastrosenteret", "Trondheim"),
    (1, "Hudpoliklinikken", "Ålesund sjukehus, blokk C", "Ålesund"),
    (1, "Lungepoliklinikken", "Ålesund sjukehus, blokk A", "Ålesund"),
    (2, "Helsestasjonen Lade", "Lade helsehus", "Trondheim"),
    (2, "Fysioterapitjenesten", "Saupstad helsehus", "Trondheim"),
)
OTHER_TYPES = (
    "Blodprøvetaking",
    "Vaksinasjon",
    "Fysioterapi, oppfølging",
    "Ortopedisk kontroll",
    "Hudkontroll",
    "Samtale med sykepleier",
    "Diabeteskontroll",
    "Lungefunksjonstest",
    "Allergitest",
    "4-årskontroll",
    "Ernæringsveiledning",
    "Ultralyd",
    "Ørekontroll",
    "Fotterapi",
    "Hjertekontroll",
    "Svangerskapskontroll",
    "Reisevaksine",
    "Søvnpoliklinikk",
    "Gastrokontroll",
)


# --- the region's data ------------------------------------------------------------------------------


@dataclass
class Cancel:
    appointment_id: int
    account_id: int
    slot_id: int
    start: datetime
    fitting: int  # waiting entries the freed slot fits (same rules as offers.candidates, counted here)


@dataclass
class World:
    hot_type_id: int
    search_type_id: int
    cancels: list[Cancel]
    search_free: list[tuple[datetime, int]]  # (start, id) of the searched type's future free slots
    rows: dict[str, int] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)


class Ids:
    """Explicit primary keys for bulk inserts into fresh tables (sequences are set afterwards)."""

    def __init__(self) -> None:
        self.last: Counter[str] = Counter()

    def __call__(self, table: str) -> int:
        self.last[table] += 1
        return self.last[table]


def wall(day: date, at: clock_time) -> datetime:
    """Norwegian wall time on ``day`` as an aware UTC datetime."""
    from app import clock

    return datetime.combine(day, at, tzinfo=clock.NORWAY).astimezone(UTC)


def grid(schedule_ids: list[int], minutes: int, first: int, last: int, today: date) -> list[tuple[int, datetime]]:
    """Every slot time of these schedules on weekdays ``first``..``last`` days from today, 08:00–16:00."""
    out = []
    for offset in range(first, last + 1):
        day = today + timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        start = datetime.combine(day, DAY_OPENS)
        while (start + timedelta(minutes=minutes)).time() <= DAY_CLOSES and start.date() == day:
            for schedule_id in schedule_ids:
                out.append((schedule_id, wall(day, start.time())))
            start += timedelta(minutes=minutes)
    return out


def wish(rng: random.Random) -> dict[str, Any]:
    """Days, hours and notice as patients choose them: mostly weekdays 08–16 with a day's notice."""
    r = rng.random()
    if r < 0.6:
        weekdays = 0b0011111
    elif r < 0.75:
        weekdays = 0b1111111
    else:
        weekdays = sum(1 << d for d in rng.sample(range(5), rng.randint(2, 4)))
    earliest = rng.choices([7, 8, 9, 10, 12], weights=[5, 60, 15, 12, 8])[0]
    latest = rng.choices([12, 14, 15, 16, 18], weights=[6, 12, 12, 60, 10])[0]
    if latest <= earliest:
        latest = 16
    return {
        "weekdays": weekdays,
        "earliest": clock_time(earliest),
        "latest": clock_time(latest),
        "notice_hours": rng.choices([2, 12, 24, 48, 72, 168], weights=[5, 10, 45, 20, 15, 5])[0],
        "priority": rng.choices([0, 1, 2, 3], weights=[80, 12, 6, 2])[0],
    }


def fits(entry: dict[str, Any], start: datetime, minutes: int, now: datetime) -> bool:
    """offers.candidates' rules, in Python: to count how many entries a freed slot fits."""
    from app import clock

    begin = start.astimezone(clock.NORWAY)
    end = begin + timedelta(minutes=minutes)
    return (
        entry["current_start"] > start
        and entry["notice_hours"] <= (start - now).total_seconds() / 3600
        and bool(entry["weekdays"] & (1 << begin.weekday()))
        and entry["earliest"] <= begin.time()
        and entry["latest"] >= end.time()
    )


def build_world(n_cancels: int, keys: dict[str, str]) -> World:
    """The region (see the module's docstring); returns what the measurements need."""
    from sqlalchemy import insert

    from app import clock
    from app.appointments.models import (
        Appointment,
        AppointmentStatus,
        Channel,
        Location,
        Mode,
        Offer,
        OfferState,
        OpeningHours,
        Schedule,
        Slot,
        SlotState,
        VisitType,
        WaitlistEntry,
    )
    from app.auth.models import Role, User
    from app.db import db
    from app.notify.models import NotificationSettings, PushSubscription
    from app.people.models import CareUnit, Organisation, OrganisationKind, Person, Relation, RelationKind

    rng = random.Random(SEED)
    now = clock.utcnow()
    today = clock.today_in_norway()

    # Organisations, units, places, visit types and schedules (a few dozen rows: the ORM).
    orgs = [
        Organisation(name="St. Olavs hospital", kind=OrganisationKind.HOSPITAL),
        Organisation(name="Ålesund sjukehus", kind=OrganisationKind.HOSPITAL),
        Organisation(name="Trondheim kommune", kind=OrganisationKind.MUNICIPALITY),
    ]
    db.session.add_all(orgs)
    db.session.flush()
    units, locations = [], []
    for i, (org, name, place, city) in enumerate(UNITS):
        unit = CareUnit(organisation_id=orgs[org].id, name=name)
        location = Location(
            organisation_id=orgs[org].id,
            name=place,
            address=f"Bekkasinveien {i + 1}",
            postal_code="7030",
            city=city,
            phone=f"73 86 {i:02d} 00",
        )
        units.append(unit)
        locations.append(location)
    db.session.add_all(units + locations)
    db.session.flush()
    specs = [  # (name, unit index, minutes, self-bookable, schedules)
        ("Kontroll etter operasjon for grå stær", 0, 20, False, 4),
        ("Service på høreapparat", 1, 20, True, 6),
    ]
    for i, name in enumerate(OTHER_TYPES):
        specs.append((name, 2 + i % 6, (20, 30, 45)[i % 3], i % 2 == 0, 2))
    types: list[VisitType] = []
    schedules: dict[int, list[Schedule]] = {}
    for name, unit_index, minutes, bookable, n_schedules in specs:
        vt = VisitType(
            care_unit_id=units[unit_index].id,
            name=name,
            minutes=minutes,
            modes="in_person",
            self_bookable=bookable,
            requires_referral=not bookable,
            price_nok=0 if bookable else 375,
        )
        db.session.add(vt)
        db.session.flush()
        types.append(vt)
        schedules[vt.id] = []
        for s in range(n_schedules):
            schedule = Schedule(
                care_unit_id=units[unit_index].id,
                name=f"{name}, kalender {s + 1}",
                practitioner=f"{GIVEN[(vt.id + s) % len(GIVEN)]} Behandlersen",
                location_id=locations[unit_index].id,
            )
            schedule.hours = [OpeningHours(weekday=d, opens=DAY_OPENS, closes=DAY_CLOSES) for d in range(5)]
            db.session.add(schedule)
            schedules[vt.id].append(schedule)
    db.session.flush()
    unit_of = {vt.id: vt.care_unit_id for vt in types}
    org_of_unit = {u.id: u.organisation_id for u in units}
    location_of = {s.id: s.location_id for ss in schedules.values() for s in ss}
    practitioner_of = {s.id: s.practitioner for ss in schedules.values() for s in ss}
    hot, search, others = types[0], types[1], types[2:]
    db.session.commit()

    ids = Ids()
    persons: list[dict[str, Any]] = []
    accounts: list[dict[str, Any]] = []
    relations: list[dict[str, Any]] = []
    subscriptions: list[dict[str, Any]] = []
    settings: list[dict[str, Any]] = []
    slots: list[dict[str, Any]] = []
    appointments: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []

    def person(age: int) -> int:
        pid = ids("person")
        birth = today - timedelta(days=age * 365 + rng.randint(0, 364))
        persons.append(
            {
                "id": pid,
                "national_id": f"8{pid:010d}",
                "given_name": GIVEN[pid % len(GIVEN)],
                "family_name": "Ventesen",
                "birth_date": birth,
                "created_at": now,
                "updated_at": now,
            }
        )
        return pid

    def account(person_id: int) -> int:
        aid = ids("account")
        accounts.append(
            {
                "id": aid,
                "person_id": person_id,
                "role": Role.PATIENT,
                "display_name": "Bench",
                "locale": (None, "nb", "en")[aid % 3],
                "is_demo": False,
                "active": True,
                "created_at": now,
            }
        )
        devices = rng.choices([0, 1, 2], weights=[25, 60, 15])[0]
        for d in range(devices):
            sid = ids("push_subscription")
            subscriptions.append(
                {
                    "id": sid,
                    "account_id": aid,
                    "endpoint": f"https://push.bench.invalid/s/{sid}",
                    "p256dh": keys["p256dh"],
                    "auth": keys["auth"],
                    "label": f"Bench device {d}",
                    "created_at": now,
                    "last_seen_at": now,
                }
            )
        if rng.random() < 0.15:  # changed their settings: quiet hours off for half, offers off for some
            settings.append(
                {
                    "account_id": aid,
                    "record": True,
                    "messages": True,
                    "reminders": True,
                    "offers": rng.random() > 0.1,
                    "quiet_enabled": rng.random() < 0.5,
                    "quiet_start": clock_time(22),
                    "quiet_end": clock_time(7),
                    "offers_break_quiet": rng.random() < 0.3,
                    "updated_at": now,
                }
            )
        return aid

    def slot(vt: Any, schedule_id: int, start: datetime, state: SlotState) -> int:
        sid = ids("slot")
        slots.append(
            {
                "id": sid,
                "schedule_id": schedule_id,
                "visit_type_id": vt.id,
                "start": start,
                "minutes": vt.minutes,
                "mode": Mode.IN_PERSON,
                "location_id": location_of[schedule_id],
                "state": state,
                "offered_until": None,
                "created_at": now - timedelta(days=200),
            }
        )
        return sid

    def appointment(vt: Any, schedule_id: int, slot_id: int, start: datetime, person_id: int, past: bool) -> int:
        aid = ids("appointment")
        unit_id = unit_of[vt.id]
        appointments.append(
            {
                "id": aid,
                "person_id": person_id,
                "organisation_id": org_of_unit[unit_id],
                "care_unit_id": unit_id,
                "slot_id": slot_id,
                "visit_type_id": vt.id,
                "title": vt.name,
                "start": start,
                "minutes": vt.minutes,
                "mode": Mode.IN_PERSON,
                "location_id": location_of[schedule_id],
                "practitioner": practitioner_of[schedule_id],
                "status": AppointmentStatus.ATTENDED if past else AppointmentStatus.BOOKED,
                "booked_via": Channel.STAFF if rng.random() < 0.7 else Channel.PATIENT,
                "created_at": min(now, start) - timedelta(days=rng.randint(20, 200)),
                "updated_at": now,
            }
        )
        return aid

    def pools(vt: Any) -> dict[str, list[tuple[int, datetime]]]:
        sids = [s.id for s in schedules[vt.id]]
        out = {"past": grid(sids, vt.minutes, -150, -1, today), "future": grid(sids, vt.minutes, 1, 180, today)}
        for pool in out.values():
            rng.shuffle(pool)
        return out

    def take(pool: list[tuple[int, datetime]], first: int, last: int, n: int) -> list[tuple[int, datetime]]:
        """``n`` times of ``pool`` from ``first`` to ``last`` days ahead, removed from it."""
        low, high = (
            wall(today + timedelta(days=first), clock_time(0)),
            wall(today + timedelta(days=last + 1), clock_time(0)),
        )
        chosen, rest = [], []
        for item in pool:
            if len(chosen) < n and low <= item[1] < high:
                chosen.append(item)
            else:
                rest.append(item)
        if len(chosen) < n:
            raise RuntimeError(f"not enough slot times between day {first} and {last}: {len(chosen)} of {n}")
        pool[:] = rest
        return chosen

    fillers = [person(rng.randint(18, 90)) for _ in range(FILLERS)]
    slot_pools = {vt.id: pools(vt) for vt in types}

    # The waiting patients: each with their booked time and a wish for an earlier one. One in twenty
    # is a child whose parent (with an account) hears of the offers.
    per_type = Counter({hot.id: HOT_WAITING})
    weights = [rng.uniform(0.5, 1.5) for _ in range(len(types) - 1)]
    rest = WAITING - HOT_WAITING
    for vt, w in zip(types[1:], weights, strict=True):
        per_type[vt.id] = int(rest * w / sum(weights))
    per_type[types[-1].id] += WAITING - sum(per_type.values())
    children = 0
    for vt in types:
        first = 4 if vt is hot else 7
        for schedule_id, start in take(slot_pools[vt.id]["future"], first, 180, per_type[vt.id]):
            if rng.random() < 0.05:
                pid = person(rng.randint(2, 10))
                parent = person(rng.randint(28, 45))
                account(parent)
                relations.append(
                    {"holder_id": parent, "subject_id": pid, "kind": RelationKind.PARENT, "created_at": now}
                )
                children += 1
            else:
                pid = person(rng.randint(18, 92))
                account(pid)
            slot_id = slot(vt, schedule_id, start, SlotState.BOOKED)
            appointment_id = appointment(vt, schedule_id, slot_id, start, pid, past=False)
            entries.append(
                {
                    "id": ids("waitlist_entry"),
                    "appointment_id": appointment_id,
                    "person_id": pid,
                    "visit_type_id": vt.id,
                    "care_unit_id": unit_of[vt.id],
                    "current_start": start,
                    "active": True,
                    "created_at": now - timedelta(days=rng.uniform(0, 240)),
                    **wish(rng),
                }
            )

    # The times that will be cancelled: the busy type, 2–16 days ahead, booked by patients of their own.
    cancels: list[Cancel] = []
    hot_entries = [e for e in entries if e["visit_type_id"] == hot.id]
    for schedule_id, start in take(slot_pools[hot.id]["future"], 2, 16, n_cancels):
        pid = person(rng.randint(18, 92))
        account_id = account(pid)
        slot_id = slot(hot, schedule_id, start, SlotState.BOOKED)
        appointment_id = appointment(hot, schedule_id, slot_id, start, pid, past=False)
        fitting = sum(1 for e in hot_entries if fits(e, start, hot.minutes, now))
        cancels.append(Cancel(appointment_id, account_id, slot_id, start, fitting))
    rng.shuffle(cancels)

    # The searched type: 5,000 free times in the booking horizon, the rest of it booked, and its past.
    horizon = 89  # APPOINTMENT_BOOKING_DAYS is 90
    search_free = []
    pool = slot_pools[search.id]["future"]
    for schedule_id, start in take(pool, 1, horizon, SEARCH_FREE):
        search_free.append((start, slot(search, schedule_id, start, SlotState.FREE)))
    end = wall(today + timedelta(days=horizon + 1), clock_time(0))
    for schedule_id, start in take(pool, 1, horizon, sum(1 for _s, t in pool if t < end)):
        appointment(
            search,
            schedule_id,
            slot(search, schedule_id, start, SlotState.BOOKED),
            start,
            rng.choice(fillers),
            past=False,
        )
    for schedule_id, start in take(slot_pools[search.id]["past"], -150, -1, 3_000):
        appointment(
            search,
            schedule_id,
            slot(search, schedule_id, start, SlotState.BOOKED),
            start,
            rng.choice(fillers),
            past=True,
        )

    # Everyone else's slots up to SLOTS_TOTAL: half past (attended), half ahead (free or booked;
    # the busy type's all booked: a free one of those would have gone to its waiting list).
    fill = SLOTS_TOTAL - len(slots)
    fill_types = [hot, *others]
    for i, vt in enumerate(fill_types):
        n = fill // len(fill_types) + (1 if i < fill % len(fill_types) else 0)
        for schedule_id, start in take(slot_pools[vt.id]["past"], -150, -1, n // 2):
            appointment(
                vt, schedule_id, slot(vt, schedule_id, start, SlotState.BOOKED), start, rng.choice(fillers), past=True
            )
        for schedule_id, start in take(slot_pools[vt.id]["future"], 1, 180, n - n // 2):
            if vt is hot or rng.random() < 0.4:
                slot_id = slot(vt, schedule_id, start, SlotState.BOOKED)
                appointment(vt, schedule_id, slot_id, start, rng.choice(fillers), past=False)
            else:
                slot(vt, schedule_id, start, SlotState.BLOCKED if rng.random() < 0.03 else SlotState.FREE)

    # Earlier offers to the waiting patients, on past slots of their type (expired, declined, taken).
    past_by_type: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for s in slots:
        if s["start"] < now:
            past_by_type[s["visit_type_id"]].append(s)
    offers: list[dict[str, Any]] = []
    seen: set[tuple[int, int]] = set()
    while len(offers) < OFFER_HISTORY:
        entry = rng.choice(entries)
        s = rng.choice(past_by_type[entry["visit_type_id"]])
        if (s["id"], entry["id"]) in seen:
            continue
        seen.add((s["id"], entry["id"]))
        created = s["start"] - timedelta(hours=rng.uniform(6, 240))
        state = rng.choices([OfferState.EXPIRED, OfferState.DECLINED, OfferState.TAKEN], weights=[5, 3, 2])[0]
        offers.append(
            {
                "id": ids("offer"),
                "slot_id": s["id"],
                "waitlist_entry_id": entry["id"],
                "appointment_id": entry["appointment_id"],
                "person_id": entry["person_id"],
                "round": rng.randint(1, 3),
                "rank": rng.randint(1, 3),
                "state": state,
                "expires_at": created + timedelta(hours=2),
                "answered_at": None if state is OfferState.EXPIRED else created + timedelta(minutes=30),
                "created_at": created,
            }
        )

    started = time.perf_counter()
    for model, rows in (
        (Person, persons),
        (User, accounts),
        (Relation, relations),
        (PushSubscription, subscriptions),
        (NotificationSettings, settings),
        (Slot, slots),
        (Appointment, appointments),
        (WaitlistEntry, entries),
        (Offer, offers),
    ):
        for i in range(0, len(rows), 5000):
            db.session.execute(insert(model.__table__), rows[i : i + 5000])
    tables = (
        "person",
        "account",
        "person_relation",
        "push_subscription",
        "slot",
        "appointment",
        "waitlist_entry",
        "offer",
    )
    for table in tables:
        db.session.execute(
            db.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        )
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # only this schema's tables (search_path): other schemas may belong to test runs
        conn.execute(db.text(f"VACUUM ANALYZE {', '.join(tables)}, notification_settings"))
    log(
        f"  {sum(len(r) for r in (persons, accounts, slots, appointments, entries, offers)):,} rows inserted in {time.perf_counter() - started:.1f} s"
    )
    fitting = sorted(c.fitting for c in cancels)
    return World(
        hot_type_id=hot.id,
        search_type_id=search.id,
        cancels=cancels,
        search_free=sorted(search_free),
        rows={
            "persons": len(persons),
            "accounts": len(accounts),
            "push subscriptions": len(subscriptions),
            "notification settings": len(settings),
            "slots": len(slots),
            "appointments": len(appointments),
            "active waiting-list entries": len(entries),
            "earlier offers": len(offers),
        },
        notes={
            "hot_type": f"{hot.name} ({units[0].name})",
            "hot_waiting": per_type[hot.id],
            "other_types": len(types) - 1,
            "search_type": f"{search.name} ({units[1].name})",
            "children_waiting": children,
            "fitting_min": fitting[0],
            "fitting_median": statistics.median(fitting),
            "fitting_max": fitting[-1],
        },
    )


# --- 1. cancellation -> offers ---------------------------------------------------------------------


@dataclass
class Timing:
    wall_ms: float
    call_ms: float = 0.0  # cancel_by_patient (queries, flushes)
    commit_ms: float = 0.0  # the commit: the rest of the inserts and the worker's wake-up
    cpu_ms: float = 0.0  # this process
    pg_cpu_s: float = 0.0  # its PostgreSQL backend (/proc, 10 ms ticks: meaningful summed)


def backend_pid() -> int:
    from app.db import db

    return db.session.connection().connection.dbapi_connection.info.backend_pid


def cancel_once(c: Cancel, mark: Callable[[], object] | None = None) -> Timing:
    """One patient's cancellation in a transaction of its own; ``mark`` is called as the clock starts."""
    from app import clock
    from app.appointments import services
    from app.appointments.models import Appointment
    from app.auth.models import User
    from app.db import db

    db.session.close()  # a fresh session, as a new request has
    viewer = db.session.get(User, c.account_id)
    appointment = db.session.get(Appointment, c.appointment_id)
    pid = backend_pid()
    if mark is not None:
        mark()
    pg0, cpu0, t0 = proc_cpu(pid), time.process_time(), time.perf_counter()
    services.cancel_by_patient(viewer, appointment, clock.utcnow())
    t1 = time.perf_counter()
    db.session.commit()
    t2 = time.perf_counter()
    cpu1, pg1 = time.process_time(), proc_cpu(pid)
    return Timing((t2 - t0) * 1000, (t1 - t0) * 1000, (t2 - t1) * 1000, (cpu1 - cpu0) * 1000, pg1 - pg0)


def baseline_once(account_id: int) -> Timing:
    from app.access.services import audit
    from app.auth.models import User
    from app.db import db

    db.session.close()
    viewer = db.session.get(User, account_id)
    pid = backend_pid()
    pg0, cpu0, t0 = proc_cpu(pid), time.process_time(), time.perf_counter()
    audit("bench_baseline", actor_user_id=viewer.id, subject_person_id=viewer.person_id, object_type="bench")
    db.session.commit()
    t1 = time.perf_counter()
    cpu1, pg1 = time.process_time(), proc_cpu(pid)
    return Timing((t1 - t0) * 1000, cpu_ms=(cpu1 - cpu0) * 1000, pg_cpu_s=pg1 - pg0)


def written(slot_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per freed slot: offers, their events, notifications and push deliveries (the new round only)."""
    from app.db import db

    rows = db.session.execute(
        db.text(
            "SELECT o.slot_id, count(DISTINCT o.id), count(DISTINCT e.id), count(DISTINCT n.id), count(pd.id), "
            "min(o.expires_at), bool_and(s.offered_until = o.expires_at) "
            "FROM offer o JOIN slot s ON s.id = o.slot_id "
            "LEFT JOIN event e ON e.object_type = 'offer' AND e.object_id = o.id AND e.kind = 'appointment_offer' "
            "LEFT JOIN notification n ON n.event_id = e.id "
            "LEFT JOIN push_delivery pd ON pd.notification_id = n.id "
            "WHERE o.slot_id = ANY(:ids) AND o.state = 'open' GROUP BY o.slot_id"
        ),
        {"ids": slot_ids},
    ).all()
    out = {sid: {"offers": 0, "events": 0, "notifications": 0, "pushes": 0, "held": 0} for sid in slot_ids}
    for sid, offers, events, notes, pushes, _expires, held in rows:
        out[sid] = {
            "offers": offers,
            "events": events,
            "notifications": notes,
            "pushes": pushes,
            "held": int(bool(held)),
        }
    return out


@dataclass
class Statement:
    sql: str
    params: Any
    ms: float


def profiled(cancels: list[Cancel]) -> tuple[list[list[Statement]], list[float]]:
    """Cancellations with every statement's client-side time recorded (before/after_cursor_execute)."""
    from sqlalchemy import event

    from app.db import db

    current: list[Statement] = []
    started: list[float] = []

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        started.append(time.perf_counter())

    def after(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        current.append(Statement(statement, parameters, (time.perf_counter() - started.pop()) * 1000))

    runs: list[list[Statement]] = []
    walls: list[float] = []
    engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        for c in cancels:
            walls.append(cancel_once(c, mark=current.clear).wall_ms)
            runs.append(list(current))
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    return runs, walls


def explain(sql: str, params: Any, runs: int = 5) -> tuple[float, str]:
    """Best of ``runs`` EXPLAIN (ANALYZE, BUFFERS) execution times and that plan, in a transaction that
    is rolled back (an UPDATE changes nothing that stays)."""
    from app.db import db

    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        best: tuple[float, str] | None = None
        for _ in range(runs):
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            m = re.search(r"Execution Time: ([\d.]+) ms", plan)
            ms = float(m.group(1)) if m else 0.0
            if best is None or ms < best[0]:
                best = (ms, plan)
            raw.rollback()
        assert best is not None
        return best
    finally:
        raw.rollback()
        raw.close()


def explain_generic(sql: str, params: dict[str, Any], runs: int = 5) -> tuple[float, str]:
    """The plan PostgreSQL uses once the statement is prepared and its plan cached: psycopg prepares a
    statement on the server after its 5th execution on a connection (prepare_threshold), and from the
    6th the server may run a generic plan, made without the parameters' values. Forced here with
    plan_cache_mode on a connection of its own (closed afterwards, with its prepared statement);
    best of ``runs``. SELECTs only: nothing is rolled back."""
    import psycopg

    from app.db import db

    names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", sql)))
    prepared = re.sub(r"%\((\w+)\)s", lambda m: f"${names.index(m.group(1)) + 1}", sql)
    conninfo = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:  # autocommit: a rollback would undo the SET
        cursor = psycopg.ClientCursor(conn)
        cursor.execute("SET plan_cache_mode = force_generic_plan")
        cursor.execute(f"PREPARE bench_generic AS {prepared}")
        best: tuple[float, str] | None = None
        for _ in range(runs):
            cursor.execute(
                f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_generic({', '.join(['%s'] * len(names))})",
                [params[n] for n in names],
            )
            plan = "\n".join(row[0] for row in cursor.fetchall())
            m = re.search(r"Execution Time: ([\d.]+) ms", plan)
            ms = float(m.group(1)) if m else 0.0
            if best is None or ms < best[0]:
                best = (ms, plan)
        assert best is not None
        return best


def prepared_plans(*needles: str) -> list[dict[str, Any]]:
    """How PostgreSQL has run the statements that psycopg prepared on this process's pooled connection
    and that contain every needle: generic and custom plans so far (pg_prepared_statements; the bench
    runs one request or cancellation at a time, so the pool holds one connection)."""
    from app.db import db

    with db.engine.connect() as conn:
        rows = conn.execute(
            db.text("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements ORDER BY prepare_time")
        ).all()
    return [
        {"statement": " ".join(text.split()), "generic": generic, "custom": custom}
        for text, generic, custom in rows
        if all(n in text for n in needles)
    ]


NODE = re.compile(
    r"^\s*(?:->\s+)?(?P<node>[A-Z][A-Za-z ]*?(?: using \w+)?(?: on \w+(?: \w+)?)?)\s+\(cost=[^)]*\)\s+"
    r"(?:\(actual time=[\d.]+\.\.(?P<ms>[\d.]+) rows=(?P<rows>\d+) loops=(?P<loops>\d+)\)|\(never executed\))"
)


def plan_line(plan: str) -> str:
    """A plan on one line: each node with its rows and time, what a sort did, rows a filter removed."""
    nodes: list[str] = []
    for line in plan.splitlines():
        if m := NODE.match(line):
            if m.group("ms") is None:
                nodes.append(f"{m.group('node')} (never executed)")
                continue
            loops = int(m.group("loops"))
            nodes.append(
                f"{m.group('node')} ({m.group('rows')} rows{f' x {loops} loops' if loops > 1 else ''}, {m.group('ms')} ms)"
            )
        elif nodes and (
            m := re.match(
                r"\s*(Sort Method: [\w-]+(?: [\w-]+)?|Presorted Key: .*|Rows Removed by Filter: \d+|Heap Fetches: \d+)",
                line,
            )
        ):
            nodes[-1] = nodes[-1][:-1] + f"; {m.group(1).strip()})"
    total = re.search(r"Execution Time: ([\d.]+) ms", plan)
    return " -> ".join(nodes) + (f"; execution {total.group(1)} ms" if total else "")


def short(sql: str) -> str:
    text = re.sub(r"\b(\w+)\.(?=\w)", lambda m: "" if not m.group(1).isdigit() else m.group(0), shape(sql))
    text = text.replace("? WITHOUT TIME ZONE", "?")
    verb = text.split(" ", 1)[0].upper()
    if verb == "INSERT":
        m = re.search(r"INSERT INTO (\w+)", text)
        return f"INSERT {m.group(1) if m else '?'}"
    if verb in ("UPDATE", "DELETE"):
        m = re.search(r"^(?:UPDATE|DELETE FROM) (\w+)", text)
        where = re.search(r"\bWHERE (.*?)(?: RETURNING|$)", text)
        return f"{verb} {m.group(1) if m else '?'}" + (f" WHERE {where.group(1)[:90]}" if where else "")
    m = re.search(r"\bFROM (\w+)", text)
    out = f"SELECT {m.group(1) if m else '?'}"
    if where := re.search(r"\bWHERE (.*?)(?: ORDER BY| GROUP BY| LIMIT| FOR UPDATE|$)", text):
        out += f" WHERE {where.group(1)[:90]}"
    return out.replace("|", "/")


def cancellation_bench(world: World, n: int) -> dict[str, Any]:
    """Warm-up, then ``n`` cancellations interleaved with the baseline, then the profiled ones."""
    from app.db import db

    if len(world.cancels) < WARM + n + PROFILED:
        raise RuntimeError("not enough booked times to cancel")
    warm, timed, extra = world.cancels[:WARM], world.cancels[WARM : WARM + n], world.cancels[WARM + n :]
    for c in warm:
        cancel_once(c)
        baseline_once(c.account_id)
    cancels: list[Timing] = []
    baselines: list[Timing] = []
    with CpuWindow({"bench (this process)": [os.getpid()]}) as cpu:
        for i, c in enumerate(timed):
            if i % 2 == 0:
                baselines.append(baseline_once(c.account_id))
                cancels.append(cancel_once(c))
            else:
                cancels.append(cancel_once(c))
                baselines.append(baseline_once(c.account_id))
            if (i + 1) % 50 == 0:
                log(f"  {i + 1} of {n} cancellations, p95 so far {percentile([t.wall_ms for t in cancels], 95):.1f} ms")
        cpu.stop()
    db.session.close()
    counts = written([c.slot_id for c in timed])
    # Every statement of a few more cancellations, and the slowest ones' plans.
    runs, profiled_walls = profiled(extra)
    candidate_runs = prepared_plans("FROM waitlist_entry", "priority DESC")
    by_shape: dict[str, list[Statement]] = defaultdict(list)
    for run in runs:
        for s in run:
            by_shape[shape(s.sql)].append(s)
    statements = []
    for key, group in by_shape.items():
        per = len(group) / len(runs)
        mean_ms = statistics.mean(s.ms for s in group)
        statements.append({"sql": short(group[0].sql), "per_cancellation": per, "mean_ms": mean_ms, "shape": key})
    statements.sort(key=lambda s: -s["per_cancellation"] * s["mean_ms"])
    plans = []
    for s in statements[:5]:
        group = by_shape[s["shape"]]
        sql = group[-1].sql
        if sql.lstrip().upper().startswith(("SELECT", "UPDATE")):
            ms, plan = explain(sql, group[-1].params)
            s["explain_ms"] = ms
            s["plan"] = plan_line(plan)
            plans.append({"sql": " ".join(sql.split()), "params": repr(group[-1].params)[:600], "plan": plan})
    candidate = next((g for k, g in by_shape.items() if "FROM waitlist_entry" in k and "priority DESC" in k), None)
    candidate_plan = None
    if candidate:
        ms, plan = explain(candidate[-1].sql, candidate[-1].params)
        generic_ms, generic = explain_generic(candidate[-1].sql, candidate[-1].params)
        candidate_plan = {
            "ms": ms,
            "line": plan_line(plan),
            "plan": plan,
            "generic_ms": generic_ms,
            "generic_line": plan_line(generic),
            "generic_plan": generic,
            "sql": " ".join(candidate[-1].sql.split()),
            "prepared": candidate_runs,
        }
    failed = [c.appointment_id for c in timed if counts[c.slot_id]["offers"] == 0]
    mismatched = [c.appointment_id for c in timed if counts[c.slot_id]["events"] != counts[c.slot_id]["offers"]]
    walls = [t.wall_ms for t in cancels]
    base = [t.wall_ms for t in baselines]

    def spread(key: str) -> dict[str, float]:
        values = [v[key] for v in counts.values()]
        return {"min": min(values), "median": statistics.median(values), "max": max(values), "total": sum(values)}

    return {
        "n": n,
        "p50": percentile(walls, 50),
        "p95": percentile(walls, 95),
        "p99": percentile(walls, 99),
        "max": max(walls),
        "within_budget": sum(1 for w in walls if w <= CANCEL_BUDGET_MS) / len(walls),
        "call_p50": percentile([t.call_ms for t in cancels], 50),
        "commit_p50": percentile([t.commit_ms for t in cancels], 50),
        "commit_p95": percentile([t.commit_ms for t in cancels], 95),
        "cpu_ms_p50": percentile([t.cpu_ms for t in cancels], 50),
        "pg_cpu_ms_mean": sum(t.pg_cpu_s for t in cancels) / n * 1000,
        "baseline": {
            "p50": percentile(base, 50),
            "p95": percentile(base, 95),
            "p99": percentile(base, 99),
            "max": max(base),
            "cpu_ms_p50": percentile([t.cpu_ms for t in baselines], 50),
            "pg_cpu_ms_mean": sum(t.pg_cpu_s for t in baselines) / n * 1000,
        },
        "cpu_text": cpu.describe(),
        "written": {k: spread(k) for k in ("offers", "events", "notifications", "pushes", "held")},
        "failed": failed,
        "mismatched": mismatched,
        "profiled": {
            "n": len(runs),
            "wall_p50": statistics.median(profiled_walls),
            "statements_per_cancellation": statistics.median(len(r) for r in runs),
            "db_ms_p50": statistics.median(sum(s.ms for s in r) for r in runs),
            "top": [{k: v for k, v in s.items() if k != "shape"} for s in statements],
        },
        "candidate_plan": candidate_plan,
        "plans": plans,
    }


# --- 2. the free-slot search page against the overview ---------------------------------------------


@dataclass
class Viewer:
    person_id: int
    given: str
    cookie: str


def page_patient(world: World) -> Viewer:
    """A logged-in patient with a small record (as bench/record.py's small one) and three coming times."""
    from app import clock
    from app.appointments.models import Appointment, AppointmentStatus, Channel, VisitType
    from app.db import db
    from app.demo.fhir_bundles import history_bundle
    from app.fhir.ingest import import_bundle

    person, cookie = add_patient_with_session("Sander", "Benkesen", date(1990, 10, 2))
    client = add_source("St. Olavs hospital (kilde)", "bench-dips")
    import_bundle(history_bundle(person, prefix="bench-small", seed=7, results=50, notes=5, years=1), client)
    now = clock.utcnow()
    for days, type_id in ((6, world.search_type_id), (20, world.hot_type_id), (45, world.search_type_id + 3)):
        vt = db.session.get(VisitType, type_id)
        db.session.add(
            Appointment(
                person_id=person.id,
                organisation_id=vt.care_unit.organisation_id,
                care_unit_id=vt.care_unit_id,
                visit_type_id=vt.id,
                title=vt.name,
                start=now + timedelta(days=days, hours=1),
                minutes=vt.minutes,
                status=AppointmentStatus.BOOKED,
                booked_via=Channel.SOURCE,
            )
        )
    db.session.commit()
    return Viewer(person.id, "Sander", cookie)


HTMX = {"HX-Request": "true"}  # how the page asks for the next times ("Vis flere tider")


def fetch_page(port: int, path: str, cookie: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """bench/record.py's fetch, with htmx's header when asked."""
    if not headers:
        return fetch(port, path, cookie)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Cookie": f"{COOKIE}={cookie}", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def check_pages(port: int, pages: dict[str, Page], viewer: Viewer) -> None:
    """Every page answers 200 for the patient; the search pages list 20 times each, the expected first."""
    for name, page in pages.items():
        status, body = fetch_page(port, page.path, viewer.cookie, page.headers)
        if status != 200:
            raise RuntimeError(f"{name} ({page.path}): HTTP {status}\n{body[:500]}")
        if name == "overview" and f"Hei, {viewer.given}" not in body:
            raise RuntimeError("the overview does not greet the patient")
        if page.first_slot is not None:
            listed = re.findall(r'href="/timer/bestill/tid/(\d+)"', body)
            if len(listed) != 20 or 'id="more-slots"' not in body:
                raise RuntimeError(f"{name} lists {len(listed)} times, not 20 with more to come\n{body[:2000]}")
            if int(listed[0]) != page.first_slot:
                raise RuntimeError(f"{name} starts at slot {listed[0]}, not the expected one ({page.first_slot})")


def in_process(app: Any, pages: dict[str, Page], cookie: str, n: int) -> dict[str, list[float]]:
    """Milliseconds per request through the test client, the pages alternating (bench/record.py's way)."""
    timings: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    clients = []
    for name, page in pages.items():
        client = app.test_client()
        client.set_cookie(COOKIE, cookie, secure=True, httponly=True, samesite="Lax")
        for _ in range(5):  # warm
            contextvars.Context().run(client.get, page.path, headers=page.headers)
        clients.append((name, page, client))
    for i in range(n):
        for name, page, client in clients if i % 2 == 0 else reversed(clients):
            path = page.path
            cpu0, started = time.process_time(), time.perf_counter()
            response = contextvars.Context().run(client.get, path, headers=page.headers)
            timings.setdefault(name, []).append((time.perf_counter() - started) * 1000)
            cpu.setdefault(name, []).append((time.process_time() - cpu0) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{path}: HTTP {response.status_code}")
    return {name: ts for name, ts in timings.items()} | {f"{name} (CPU)": ts for name, ts in cpu.items()}


def page_statements(app: Any, path: str, cookie: str) -> list[tuple[str, Any]]:
    """The statements one request runs (the second one: caches warm)."""
    from sqlalchemy import event

    from app.db import db

    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        captured.append((statement, parameters))

    client = app.test_client()
    client.set_cookie(COOKIE, cookie, secure=True, httponly=True, samesite="Lax")
    contextvars.Context().run(client.get, path)
    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        response = contextvars.Context().run(client.get, path)
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    if response.status_code != 200:
        raise RuntimeError(f"{path}: HTTP {response.status_code}")
    return captured


def slot_query_plan(app: Any, path: str, cookie: str) -> dict[str, Any]:
    statements = page_statements(app, path, cookie)
    found = [(s, p) for s, p in statements if re.search(r"\bFROM slot\b", s) and "ORDER BY slot.start" in s]
    if not found:
        raise RuntimeError(f"{path}: no slot search query among its {len(statements)} statements")
    sql, params = found[0]
    ms, plan = explain(sql, params)
    generic_ms, generic = explain_generic(sql, params)
    return {
        "path": path,
        "statements": len(statements),
        "ms": ms,
        "line": plan_line(plan),
        "seq_scan": bool(re.search(r"Seq Scan on slot\b", plan)),
        "plan": plan,
        "generic_ms": generic_ms,
        "generic_line": plan_line(generic),
        "generic_seq_scan": bool(re.search(r"Seq Scan on slot\b", generic)),
        "generic_plan": generic,
        "sql": " ".join(sql.split()),
        "params": repr(params),
    }


@dataclass
class Page:
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    first_slot: int | None = None  # a search page: the slot it must list first


@dataclass
class PageRow:
    round: int
    name: str
    run: Run
    worker_cpu_ms: float  # the gunicorn workers' CPU per request
    pg_cpu_ms: float  # every PostgreSQL process's CPU per request
    cpu_text: str


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (gunicorn's workers)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, ValueError, IndexError):
                if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == pid:
                    out.append(int(entry.name))
    return out


def search_bench(url: str, world: World, seconds: int, rounds: int, connections: int, n_inproc: int) -> dict[str, Any]:
    from app import clock
    from app.db import db

    with app_on(url) as app:
        viewer = page_patient(world)
        search = f"/timer/bestill/{world.search_type_id}"
        lead = clock.utcnow() + timedelta(minutes=60)
        listed = [sid for start, sid in world.search_free if start >= lead]
        pages = {
            "overview": Page("/"),
            "search": Page(search, first_slot=listed[0]),
            # "Vis flere tider": the next 20 (htmx asks for the fragment), and much further on.
            PAGE2: Page(f"{search}?etter={listed[19]}", HTMX, first_slot=listed[20]),
            "search, page 101 (htmx)": Page(f"{search}?etter={listed[1999]}", HTMX, first_slot=listed[2000]),
        }
        served = ("overview", "search", PAGE2)
        log("search: query plans")
        plans = [
            slot_query_plan(app, pages[name].path, viewer.cookie)
            for name in ("search", PAGE2, "search, page 101 (htmx)")
        ]
        for p in plans:
            log(f"  {p['path']}: {p['ms']:.2f} ms, generic {p['generic_ms']:.2f} ms: {p['generic_line']}")
        overview_statements = len(page_statements(app, "/", viewer.cookie))
        log("search: timing requests in-process")
        timings = in_process(app, pages, viewer.cookie, n_inproc)
        db.session.close()
        prepared = prepared_plans("FROM slot", "ORDER BY slot.start")
    if not shutil.which("wrk"):
        return {
            "skipped_wrk": "wrk not found (apt-get install wrk)",
            "in_process": summarise(timings),
            "plans": plans,
            "prepared": prepared,
        }
    env = {**os.environ, "DATABASE_URL": url, "VARDE_DEMO": "1", "FLASK_APP": "wsgi"}
    servers: dict[str, Gunicorn] = {}
    rows: list[PageRow] = []
    try:
        servers["hello"] = Gunicorn("bench.hello:app", env)
        servers["varde"] = Gunicorn("wsgi:app", env)
        port = servers["varde"].port
        check_pages(port, pages, viewer)
        targets: list[tuple[str, str, str | None, dict[str, str]]] = [
            ("hello-world Flask route", f"http://127.0.0.1:{servers['hello'].port}/", None, {})
        ]
        targets += [
            (name, f"http://127.0.0.1:{port}{pages[name].path}", viewer.cookie, pages[name].headers) for name in served
        ]
        log("search: warming up")
        for _name, target, cookie, headers in targets:
            wrk_with(target, 2, connections, cookie, headers)
        workers = {
            name: children(servers["hello" if cookie is None else "varde"].proc.pid) for name, _t, cookie, _h in targets
        }
        for r in range(rounds):
            for name, target, cookie, headers in targets if r % 2 == 0 else list(reversed(targets)):
                with CpuWindow({"gunicorn workers": workers[name]}) as cpu:
                    run = wrk_with(target, seconds, connections, cookie, headers)
                    cpu.stop()
                done = max(run.rps * cpu.seconds, 1.0)
                worker_ms = cpu.used["gunicorn workers"] / done * 1000
                pg_ms = cpu.used["PostgreSQL"] / done * 1000
                log(
                    f"  round {r + 1}: {name}: {run.rps:,.0f} req/s, p50 {run.p50:.1f} ms, p99 {run.p99:.1f} ms; "
                    f"CPU per request: workers {worker_ms:.1f} ms, PostgreSQL {pg_ms:.1f} ms; {cpu.describe()}"
                )
                rows.append(PageRow(r, name, run, worker_ms, pg_ms, cpu.describe()))
        check_pages(port, pages, viewer)  # still logged in, still the expected times
    finally:
        for server in servers.values():
            server.stop()

    def runs(name: str) -> list[Run]:
        return [row.run for row in sorted(rows, key=lambda row: row.round) if row.name == name]

    def cpu(name: str, key: str) -> float:
        return statistics.median(getattr(row, key) for row in rows if row.name == name)

    ratios = [s.p99 / o.p99 for s, o in zip(runs("search"), runs("overview"), strict=True)]
    return {
        "seconds": seconds,
        "rounds": rounds,
        "connections": connections,
        "wrk": {
            name: {
                "rps": statistics.median(r.rps for r in runs(name)),
                "p50": statistics.median(r.p50 for r in runs(name)),
                "p99": statistics.median(r.p99 for r in runs(name)),
                "worker_cpu_ms": cpu(name, "worker_cpu_ms"),
                "pg_cpu_ms": cpu(name, "pg_cpu_ms"),
                "cpu_each": [row.cpu_text for row in rows if row.name == name],
            }
            for name in ("hello-world Flask route", *served)
        },
        "ratios": ratios,
        "ratio": statistics.median(ratios),
        "p50_ratios": [s.p50 / o.p50 for s, o in zip(runs("search"), runs("overview"), strict=True)],
        "page2_ratios": [s.p99 / o.p99 for s, o in zip(runs(PAGE2), runs("overview"), strict=True)],
        "in_process": summarise(timings),
        "plans": plans,
        "prepared": prepared,
        "statements": {"overview": overview_statements, "search": plans[0]["statements"]},
    }


def wrk_with(url: str, seconds: int, connections: int, cookie: str | None, headers: dict[str, str]) -> Run:
    """bench/record.py's wrk, with extra request headers (htmx's) when given."""
    if not headers:
        return wrk(url, seconds, connections, cookie)
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency"]
    for name, value in {**({"Cookie": f"{COOKIE}={cookie}"} if cookie else {}), **headers}.items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run([*cmd, url], check=True, capture_output=True, text=True, timeout=seconds + 60).stdout
    for problem in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: .*"):
        if m := re.search(problem, out):
            raise RuntimeError(f"{url}: {m.group(0)}\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)

    def ms(value: str, unit: str) -> float:
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return Run(rps, ms(*p50.groups()), ms(*p99.groups()))


def summarise(timings: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {
        name: {"n": len(ts), "p50": percentile(ts, 50), "p99": percentile(ts, 99), "max": max(ts)}
        for name, ts in timings.items()
    }


# --- report ----------------------------------------------------------------------------------------


def report(f: dict[str, Any]) -> tuple[str, str]:
    """(the report, the query plans for appointments.md)"""
    lines = [
        f"# Appointments benchmarks, {f['stamp']}",
        "",
        f"Commit {f['commit']}; Python {f['python']}, PostgreSQL {f.get('pg', '?')}, {os.cpu_count()} CPUs, "
        f"load average {f['load_start']} at the start, {f['load_end']} at the end; "
        f"{f['local_time']} in Norway (quiet hours decide which offers get a push).",
        "",
        *([f["label"], ""] if f.get("label") else []),
    ]
    plans: list[str] = []
    world = f.get("world")
    if world:
        rows = ", ".join(f"{v:,} {k}" for k, v in world["rows"].items())
        n = world["notes"]
        lines += [
            f"Data (one private schema): {rows}. {n['hot_waiting']:,} of the waiting entries are on "
            f"{n['hot_type']}, the rest over {n['other_types']} other visit types; {n['children_waiting']} are "
            "children whose parent hears of offers. Priorities 0–3, waiting 0–240 days, weekdays/hours/notice as "
            "patients choose them.",
            "",
        ]
    c = f.get("cancel")
    if c:
        verdict = "ok" if c["p95"] <= CANCEL_BUDGET_MS else "**missed**"
        b = c["baseline"]
        w = c["written"]
        lines += [
            f"## 1. Cancellation -> offers and their events written (budget: p95 <= {CANCEL_BUDGET_MS:.0f} ms)",
            "",
            "| transaction | n | p50 ms | p95 ms | p99 ms | max ms | CPU ms, this process (p50) | CPU ms, PostgreSQL backend (mean) | budget |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
            f"| `cancel_by_patient()` + commit | {c['n']} | {c['p50']:.1f} | **{c['p95']:.1f}** | {c['p99']:.1f} "
            f"| {c['max']:.1f} | {c['cpu_ms_p50']:.1f} | {c['pg_cpu_ms_mean']:.1f} | {verdict} |",
            f"| baseline: one audit row + commit | {c['n']} | {b['p50']:.1f} | {b['p95']:.1f} | {b['p99']:.1f} "
            f"| {b['max']:.1f} | {b['cpu_ms_p50']:.1f} | {b['pg_cpu_ms_mean']:.1f} | |",
            "",
            f"Within budget: {c['within_budget']:.1%}. The call itself p50 {c['call_p50']:.1f} ms, the commit p50 "
            f"{c['commit_p50']:.1f} ms (p95 {c['commit_p95']:.1f}; it flushes the notifications and deliveries and "
            f"enqueues the worker's wake-up). Each freed slot fits {world['notes']['fitting_min']:,}–"
            f"{world['notes']['fitting_max']:,} waiting entries (median {world['notes']['fitting_median']:,.0f}). "
            f"Written per cancellation (min / median / max; total): offers {w['offers']['min']} / "
            f"{w['offers']['median']:g} / {w['offers']['max']} ({w['offers']['total']}), events "
            f"{w['events']['min']} / {w['events']['median']:g} / {w['events']['max']} ({w['events']['total']}), "
            f"notifications ({w['notifications']['total']}), push deliveries {w['pushes']['min']} / "
            f"{w['pushes']['median']:g} / {w['pushes']['max']} ({w['pushes']['total']}); slot held for the round: "
            f"{w['held']['total']} of {c['n']}. {c['warm']} warm-up cancellations first (not counted); the baseline "
            f"and the cancellation alternate in order. CPU during the timed loop: {c['cpu_text']}.",
            "",
        ]
        if c["failed"] or c["mismatched"]:
            lines += [
                f"**FAILED RUN: {len(c['failed'])} cancellation(s) wrote no offers (appointments {c['failed'][:10]}), "
                f"{len(c['mismatched'])} wrote a different number of events than offers.**",
                "",
            ]
        p = c["profiled"]
        lines += [
            f"{p['n']} more cancellations with every statement timed (client side): wall p50 {p['wall_p50']:.1f} ms, "
            f"{p['statements_per_cancellation']:g} statements, {p['db_ms_p50']:.1f} ms of them in the database round "
            "trips (p50). The costliest statements (EXPLAIN ANALYZE of the last one's, best of 5, rolled back):",
            "",
            "| statement | per cancellation | mean ms | EXPLAIN ms | plan |",
            "|---|---:|---:|---:|---|",
        ]
        for s in p["top"][:10]:
            ex = f"{s['explain_ms']:.2f}" if "explain_ms" in s else ""
            lines.append(
                f"| `{s['sql'][:140]}` | {s['per_cancellation']:g} | {s['mean_ms']:.2f} | {ex} | {s.get('plan', '')[:400]} |"
            )
        cp = c.get("candidate_plan")
        if cp:
            lines += [
                "",
                f"The candidate query (offers.candidates): {cp['ms']:.2f} ms. {cp['line']}",
                "",
                f"Its generic plan (once prepared, see part 2): {cp['generic_ms']:.2f} ms. {cp['generic_line']}",
                "",
                "How PostgreSQL ran it on the bench's connection, once psycopg had prepared it (pg_prepared_statements): "
                + (
                    "; ".join(f"{p['generic']} generic and {p['custom']} custom plans" for p in cp["prepared"])
                    or "not prepared"
                )
                + ".",
            ]
            plans += ["### offers.candidates", "", "```sql", cp["sql"], "```", "", "```", cp["plan"], "```", ""]
            plans += ["Generic plan:", "", "```", cp["generic_plan"], "```", ""]
        for q in c["plans"]:
            plans += [
                f"### {short(q['sql'])[:100]}",
                "",
                "```sql",
                q["sql"],
                "```",
                "",
                f"parameters: `{q['params']}`",
                "",
            ]
            plans += ["```", q["plan"], "```", ""]
        lines.append("")
    s = f.get("search")
    if s:
        lines += [
            f"## 2. Free-slot search page against the overview (budget: search p99 <= {SEARCH_RATIO_BUDGET} x overview p99)",
            "",
        ]
        lines += [
            f"{world['notes']['search_type']}: {SEARCH_FREE:,} future free times in the 90-day booking horizon, "
            "the rest of the horizon booked, 3,000 past ones; "
            f"{world['rows']['slots']:,} slots in the table. The patient: a small record (about 50 results) and three "
            f"coming times. Statements per request: overview {s['statements']['overview']}, search {s['statements']['search']}.",
            "",
        ]
        if "wrk" in s:
            w = s["wrk"]
            verdict = "ok" if s["ratio"] <= SEARCH_RATIO_BUDGET else "**missed**"
            each = ", ".join(f"{x:.2f}" for x in s["ratios"])
            p50s = ", ".join(f"{x:.2f}" for x in s["p50_ratios"])
            cpu_ratio = w["search"]["worker_cpu_ms"] / w["overview"]["worker_cpu_ms"]
            lines += [
                f"gunicorn, 2 sync workers; `wrk -t2 -c{s['connections']} -d{s['seconds']}s`, {s['rounds']} round(s) "
                "in alternating order; medians over the rounds. CPU per request from /proc: the gunicorn workers', "
                "and every PostgreSQL process's on the machine.",
                "",
                "| page | req/s | p50 ms | p99 ms | CPU ms/request, workers | CPU ms/request, PostgreSQL "
                "| p99 search/overview (each round) | budget |",
                "|---|---:|---:|---:|---:|---:|---:|---|",
            ]
            page2 = s["page2_ratios"]
            page2_cells = (
                f"{statistics.median(page2):.2f} ({', '.join(f'{x:.2f}' for x in page2)}) | not the budget's page"
            )
            for name, label in (
                ("hello-world Flask route", "hello-world Flask route"),
                ("overview", "`/` (overview)"),
                ("search", "`/timer/bestill/<id>` (search)"),
                (PAGE2, "`/timer/bestill/<id>?etter=<20th>` with HX-Request (page 2, as htmx fetches it)"),
            ):
                r = w[name]
                cells = {"search": f"**{s['ratio']:.2f}** ({each}) | {verdict}", PAGE2: page2_cells}.get(name, " | ")
                lines.append(
                    f"| {label} | {r['rps']:,.0f} | {r['p50']:.1f} | {r['p99']:.1f} | {r['worker_cpu_ms']:.1f} "
                    f"| {r['pg_cpu_ms']:.1f} | {cells} |"
                )
            lines += [
                "",
                f"p50 search/overview each round: {p50s}; workers' CPU per request search/overview: {cpu_ratio:.2f}. "
                f"The machine during the search runs: {'; '.join(w['search']['cpu_each'])}.",
                "",
            ]
        else:
            lines += [f"Served pages skipped: {s['skipped_wrk']}.", ""]
        ip = s["in_process"]
        names = [k for k in ip if not k.endswith(" (CPU)")]
        ov = ip["overview"]
        lines += [
            f"In-process (Flask test client, one request at a time, {ip['overview']['n']} per page, alternating; "
            "CPU: this process's):",
            "",
            "| page | p50 ms | p99 ms | max ms | CPU ms p50 | p50 / overview | p99 / overview |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name in names:
            t = ip[name]
            lines.append(
                f"| {name} | {t['p50']:.1f} | {t['p99']:.1f} | {t['max']:.1f} | {ip[name + ' (CPU)']['p50']:.1f} "
                f"| {t['p50'] / ov['p50']:.2f} | {t['p99'] / ov['p99']:.2f} |"
            )
        lines += [
            "",
            "The slot query under EXPLAIN ANALYZE (best of 5): as planned for its parameters (what the first five "
            "executions on a connection get), and the generic plan PostgreSQL may cache once psycopg has prepared "
            "the statement (from the sixth; forced here with plan_cache_mode):",
            "",
        ]
        later = [p for p in s["prepared"] if "slot.id >" in p["statement"]]
        first = [p for p in s["prepared"] if "slot.id >" not in p["statement"]]

        def ran(found: list[dict[str, Any]]) -> str:
            if not found:
                return "not prepared"
            return ", ".join(f"{p['generic']} generic and {p['custom']} custom plans" for p in found)

        for q in s["plans"]:
            flag = " **Seq Scan on slot**" if q["seq_scan"] else ""
            gflag = " **Seq Scan on slot**" if q["generic_seq_scan"] else ""
            lines.append(f"- `{q['path']}`: {q['ms']:.2f} ms{flag}. {q['line']}")
            lines.append(f"  - generic plan: {q['generic_ms']:.2f} ms{gflag}. {q['generic_line']}")
            plans += [f"### {q['path']}", "", "```sql", q["sql"], "```", "", f"parameters: `{q['params']}`", ""]
            plans += ["```", q["plan"], "```", "", "Generic plan:", "", "```", q["generic_plan"], "```", ""]
        lines += [
            "",
            f"How PostgreSQL ran the slot query during the in-process requests, once psycopg had prepared it "
            f"(pg_prepared_statements): first page {ran(first)}; later pages {ran(later)}.",
        ]
        lines.append("")
    for note in f.get("skipped", []):
        lines += [f"Skipped: {note}", ""]
    return "\n".join(lines), "\n".join(plans)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="50 cancellations, 3-second wrk runs, one round")
    parser.add_argument("--cancellations", type=int, help="timed cancellations (default 200; --quick 50)")
    parser.add_argument("--seconds", type=int, help="seconds per wrk run (default 10; --quick 3)")
    parser.add_argument("--rounds", type=int, help="wrk rounds (default 3; --quick 1)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32, as bench/record.py)")
    parser.add_argument("--requests", type=int, help="in-process requests per page (default 200; --quick 50)")
    parser.add_argument("--skip-cancel", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--label", help="a line under the heading (what this run measures, e.g. a variant)")
    parser.add_argument("--no-append", action="store_true", help="do not write appointments.md and appointments.json")
    args = parser.parse_args()
    n = args.cancellations or (50 if args.quick else 200)
    seconds = args.seconds or (3 if args.quick else 10)
    rounds = args.rounds or (1 if args.quick else 3)
    requests = args.requests or (50 if args.quick else 200)

    figures: dict[str, Any] = {
        "stamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git("rev-parse", "--short", "HEAD")
        + (" (with uncommitted changes)" if git("status", "--porcelain", "--", "app") else ""),
        "python": sys.version.split()[0],
        "load_start": load(),
        "label": args.label,
        "quick": args.quick,
        "skipped": [],
        "budgets": {"cancel_p95_ms": CANCEL_BUDGET_MS, "search_p99_ratio": SEARCH_RATIO_BUDGET},
    }
    failed = False
    with tempfile.TemporaryDirectory() as instance:
        # Before app is imported: Config reads these once; gunicorn inherits them.
        os.environ.update({"VARDE_INSTANCE_PATH": instance, "SECRET_KEY": secrets.token_hex(32)})
        for name in ("REDIS_URL", "DATABASE_URL", "VARDE_PUSH_WAKE_WORKER", "VARDE_APPOINTMENT_OFFER_BATCH"):
            os.environ.pop(name, None)
        from app import clock

        figures["local_time"] = clock.utcnow().astimezone(clock.NORWAY).strftime("%H:%M")
        if not pg_reachable():
            figures["skipped"].append("PostgreSQL on 127.0.0.1:5432 does not answer: nothing was measured.")
        else:
            from bench.push import subscriber_keys

            url, schema = create_schema()
            try:
                with app_on(url) as app:
                    from app.db import db

                    figures["pg"] = db.session.execute(db.text("SHOW server_version")).scalar_one()
                    figures["offer_batch"] = app.config["APPOINTMENT_OFFER_BATCH"]
                    figures["wake_worker"] = app.config["PUSH_WAKE_WORKER"]
                    log(f"building the region in schema {schema}")
                    started = time.perf_counter()
                    world = build_world(WARM + n + PROFILED, subscriber_keys())
                    log(f"  built in {time.perf_counter() - started:.1f} s: {world.rows}")
                    figures["world"] = {"rows": world.rows, "notes": world.notes}
                    if not args.skip_cancel:
                        log(f"cancellations: {WARM} to warm up, {n} timed (with the baseline), {PROFILED} profiled")
                        cancel = cancellation_bench(world, n)
                        cancel["warm"] = WARM
                        figures["cancel"] = cancel
                        log(
                            f"  p50 {cancel['p50']:.1f} ms, p95 {cancel['p95']:.1f} ms, p99 {cancel['p99']:.1f} ms, "
                            f"max {cancel['max']:.1f} ms; baseline p50 {cancel['baseline']['p50']:.1f} ms, "
                            f"p95 {cancel['baseline']['p95']:.1f} ms; offers {cancel['written']['offers']['total']}, "
                            f"events {cancel['written']['events']['total']}"
                        )
                        if cancel["failed"] or cancel["mismatched"]:
                            failed = True
                            log(
                                f"FAILED RUN: {len(cancel['failed'])} of {n} cancellations wrote no offers, "
                                f"{len(cancel['mismatched'])} a different number of events than offers"
                            )
                if not args.skip_search:
                    log("search page against the overview")
                    figures["search"] = search_bench(url, world, seconds, rounds, args.connections, requests)
            finally:
                drop_schema(schema)
    figures["load_end"] = load()
    text, plans = report(figures)
    print(text)
    if not args.no_append:
        out = ROOT / "bench" / "results"
        out.mkdir(exist_ok=True)
        with (out / "appointments.md").open("a") as fh:
            fh.write(text + "\n")
            if plans:
                fh.write("\n".join(["<details><summary>Query plans</summary>", "", plans, "</details>", "", ""]))
        (out / "appointments.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
