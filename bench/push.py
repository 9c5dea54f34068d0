"""Benchmarks for the push-notification issue, each side by side with its baseline in the same run.

(a) Delivery throughput to a local push service (tests/push_service.py in a process of its own,
    --no-verify: it only counts and answers 201; it shares the machine's cores, as it would share a
    real server's network stack). N pending deliveries are created in bulk (accounts, subscriptions
    with real P-256 keys, notifications of several kinds, locales and some about a child), then the
    worker path, ``deliver_due()``, drains them in 2 processes (PostgreSQL) and in 1 and 2 (SQLite,
    the default configuration), timed from "go" until every row is SENT. Baselines in the same run:
    ``openssl speed -multi 2 ecdhp256`` (the two-process ECDH rate, before and after the worker runs)
    and N sequential ``pywebpush.webpush()`` calls with one reused Vapid object.
    Goal: >= 0.15 x the two-process ECDH rate (PostgreSQL, 2 processes).
(b) Latency from an event's commit to the push service accepting its push, with the real worker
    running: ``huey_consumer app.tasks.huey`` as ``make run`` starts it (SqliteHuey in the instance
    folder, 2 thread workers, --delay 0.1 --max-delay 0.5), PUSH_WAKE_WORKER on. Events are emitted
    one per commit at a steady rate; the commit time (an after_commit hook that runs before the
    worker is woken) is matched to the time the push service (in a thread here, verifying VAPID and
    decrypting every body) accepted the push, by the notification token in the decrypted payload.
    Budget: p95 <= 1 s.

    .venv/bin/python bench/push.py [--quick] [--deliveries N] [--sequential N] [--events N] [--rate R]
                                   [--skip-sqlite] [--skip-latency] [--label TEXT] [--no-append]

(also run by ``make bench`` through bench/run.py)

The report goes to stdout (progress to stderr), is appended to bench/results/push.md, and the
figures of this run are written to bench/results/push.json. Needs PostgreSQL on 127.0.0.1:5432
(VARDE_BENCH_PG_URL; a private schema, dropped afterwards) and openssl; without them the parts that
need them are skipped with a message. The machine is shared: each figure comes with the CPU the
processes involved used during it, and what everything else on the machine used.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
PG_URL = os.environ.get("VARDE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
THROUGHPUT_GOAL = 0.15  # x the two-process ECDH rate
LATENCY_BUDGET = 1.0  # seconds, p95
KINDS = ("result_released", "note_released", "message_received", "document_released", "appointment_reminder")
GIVEN = ("Kari", "Ola", "Anne Marie", "Nils", "Ingrid", "Per Olav", "Sofie", "Emil", "Åse", "Øystein")
LOCALES = (None, "nb", "en")  # None: the default (nb)
SUBJECT = "mailto:bench@varde.example"


# The PostgreSQL schema and app helpers are bench/record.py's (same database, same conventions).
from bench.record import app_on, create_schema, drop_schema, log, pg_reachable  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


# --- CPU accounting (Linux /proc) ----------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def postgres_cpu() -> dict[int, float]:
    """CPU seconds of every PostgreSQL process on this machine (server and backends)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError):
                if (entry / "comm").read_text().strip().startswith("postgres"):
                    out[int(entry.name)] = proc_cpu(int(entry.name))
    return out


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy since boot (all cores)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / TICK


@dataclass
class CpuWindow:
    """What the processes of one measurement, and everything else, used during it (core-seconds)."""

    pids: dict[str, list[int]]
    start: dict[str, float] = field(default_factory=dict)
    pg_start: dict[int, float] = field(default_factory=dict)
    busy_start: float = 0.0
    t0: float = 0.0
    used: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def __enter__(self) -> CpuWindow:
        if not any(os.getpid() in pids for pids in self.pids.values()):
            self.pids["bench (this process)"] = [os.getpid()]
        self.start = {name: sum(proc_cpu(p) for p in pids) for name, pids in self.pids.items()}
        self.pg_start = postgres_cpu()
        self.busy_start = machine_busy()
        self.t0 = time.perf_counter()
        return self

    def stop(self) -> None:
        self.seconds = time.perf_counter() - self.t0
        self.used = {name: sum(proc_cpu(p) for p in pids) - self.start[name] for name, pids in self.pids.items()}
        self.used["PostgreSQL"] = sum(cpu - self.pg_start.get(pid, 0.0) for pid, cpu in postgres_cpu().items())
        busy = machine_busy() - self.busy_start
        self.used["everything else on the machine"] = max(busy - sum(self.used.values()), 0.0)
        self.used["machine, all"] = busy

    def __exit__(self, *exc: object) -> None:
        if not self.used:
            self.stop()

    def shares(self) -> dict[str, float]:
        """Share of the machine's cores per name (1.0 = all cores busy for the whole window)."""
        cores = os.cpu_count() or 1
        return {name: used / (self.seconds * cores) for name, used in self.used.items() if used > 0.0005}

    def describe(self) -> str:
        cores = os.cpu_count() or 1
        parts = [f"{name} {share:.0%}" for name, share in self.shares().items() if name != "machine, all"]
        total = self.used.get("machine, all", 0.0) / (self.seconds * cores)
        return f"{', '.join(parts)} (machine busy {total:.0%} of {cores} cores)"


# --- 1. baselines ------------------------------------------------------------------------------------


def openssl_ecdh(seconds: int, processes: int = 2) -> float | None:
    """``openssl speed -multi 2 ecdhp256``: ECDH P-256 derivations per second, two processes together.
    With ``processes=1``: plain ``openssl speed ecdhp256``, per second of the process's own CPU time
    (openssl's default divisor), so what one derivation costs even on a busy machine."""
    multi = ["-multi", str(processes)] if processes > 1 else []
    try:
        out = subprocess.run(
            ["openssl", "speed", "-seconds", str(seconds), *multi, "ecdhp256"],
            capture_output=True,
            text=True,
            timeout=seconds * 4 + 60,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as error:
        log(f"openssl speed failed: {error}")
        return None
    rates = re.findall(r"256 bits ecdh \(nistp256\)\s+[\d.]+s\s+([\d.]+)", out)
    return float(rates[-1]) if rates else None


class PushProcess:
    """tests/push_service.py in a process of its own, --no-verify (it counts and answers 201)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.push_service", "--port", "0", "--no-verify"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError(f"the push service did not start: {line!r}")
        self.origin = line.split()[1]

    def summary(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.origin}/count", timeout=10) as response:
            return json.loads(response.read())

    def count(self) -> int:
        return self.summary()["received"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def subscriber_keys() -> dict[str, str]:
    """A browser's subscription keys: a real P-256 public key and a 16-byte auth secret."""
    from tests.push_service import Subscriber

    return Subscriber().keys


def sample_payload(token: str) -> bytes:
    return json.dumps(
        {
            "id": token,
            "title": "Du har et nytt prøvesvar",
            "body": "Trykk for å åpne Varde.",
            "url": f"/varsler/{token}",
            "tag": "varde-results",
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


def sequential_pywebpush(push: PushProcess, n: int) -> tuple[float, CpuWindow]:
    """``pywebpush.webpush()`` one after another (requests, no session), one reused Vapid object and a
    new claims dict per call (webpush() writes aud and exp into it): the plain way to use the library."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from py_vapid import Vapid02
    from pywebpush import webpush

    vapid = Vapid02(private_key=ec.generate_private_key(ec.SECP256R1()))
    keys = subscriber_keys()
    subs = [{"endpoint": f"{push.origin}/push/seq-{i}", "keys": keys} for i in range(n)]
    data = [sample_payload(secrets.token_urlsafe(16)).decode() for _ in range(n)]

    def send(i: int) -> None:
        response = webpush(subs[i], data[i], vapid_private_key=vapid, vapid_claims={"sub": SUBJECT}, ttl=60, timeout=10)
        if response.status_code != 201:
            raise RuntimeError(f"sequential pywebpush: HTTP {response.status_code}")

    for i in range(min(50, n)):  # warm up (imports, the connection pool)
        send(i)
    before = push.count()
    with CpuWindow({"pywebpush (this process)": [os.getpid()], "push service": [push.proc.pid]}) as cpu:
        started = time.perf_counter()
        for i in range(n):
            send(i)
        elapsed = time.perf_counter() - started
        cpu.stop()
    if push.count() - before != n:
        raise RuntimeError(f"sequential pywebpush: the push service counted {push.count() - before}, not {n}")
    return n / elapsed, cpu


# --- 2. Varde's worker: bulk deliveries and deliver_due() in worker processes -------------------------


@dataclass
class NextIds:
    """Explicit primary keys for bulk inserts (the tables are fresh; sequences are set afterwards)."""

    person: int = 0
    account: int = 0
    event: int = 0
    notification: int = 0
    subscription: int = 0
    delivery: int = 0


def populate(ids: NextIds, origin: str, accounts: int, per_account: int, devices: int, keys: dict[str, str]) -> int:
    """``accounts`` patients, each with ``devices`` subscriptions at the push service (one key pair shared,
    endpoints unique) and ``per_account`` notifications, each with a pending delivery per device, due now.
    Kinds, locales (nb, en, unset) and first names vary; one notification in ten is about a child (the
    payload then names them). Returns the number of deliveries."""
    from sqlalchemy import insert

    from app import clock
    from app.auth.models import Role, User
    from app.db import db
    from app.notify.models import DeliveryState, Event, Notification, PushDelivery, PushSubscription
    from app.people.models import Person, Relation, RelationKind

    now = clock.utcnow()
    due = now - timedelta(seconds=1)
    persons, users, subs, events, notes, deliveries, relations = [], [], [], [], [], [], []
    for a in range(accounts):
        ids.person += 1
        ids.account += 1
        person_id, account_id = ids.person, ids.account
        given = GIVEN[person_id % len(GIVEN)]
        persons.append(
            {
                "id": person_id,
                "national_id": f"8{person_id:010d}",
                "given_name": given,
                "family_name": "Benkesen",
                "birth_date": date(1960 + person_id % 40, 1 + person_id % 12, 1 + person_id % 28),
                "created_at": now,
                "updated_at": now,
            }
        )
        users.append(
            {
                "id": account_id,
                "person_id": person_id,
                "role": Role.PATIENT,
                "display_name": f"{given} Benkesen",
                "locale": LOCALES[a % len(LOCALES)],
                "is_demo": False,
                "active": True,
                "created_at": now,
            }
        )
        # Each account's child (5 years old, with the parent relation), whom one notice in ten is about.
        ids.person += 1
        child_id = ids.person
        persons.append(
            {
                "id": child_id,
                "national_id": f"8{child_id:010d}",
                "given_name": GIVEN[child_id % len(GIVEN)],
                "family_name": "Benkesen",
                "birth_date": date(now.year - 5, 1 + child_id % 12, 1 + child_id % 28),
                "created_at": now,
                "updated_at": now,
            }
        )
        relations.append(
            {"holder_id": person_id, "subject_id": child_id, "kind": RelationKind.PARENT, "created_at": now}
        )
        sub_ids = []
        for d in range(devices):
            ids.subscription += 1
            sub_ids.append(ids.subscription)
            subs.append(
                {
                    "id": ids.subscription,
                    "account_id": account_id,
                    "endpoint": f"{origin}/push/b{ids.subscription}",
                    "p256dh": keys["p256dh"],
                    "auth": keys["auth"],
                    "label": f"Bench device {d}",
                    "created_at": now,
                    "last_seen_at": now,
                }
            )
        for k in range(per_account):
            ids.event += 1
            ids.notification += 1
            kind = KINDS[(a + k) % len(KINDS)]
            # About their child, one in ten (the payload then names them; the worker checks access).
            subject = child_id if k % 10 == 9 else person_id
            url = f"/journal/{ids.event}"
            events.append(
                {
                    "id": ids.event,
                    "person_id": subject,
                    "kind": kind,
                    "object_type": "record_item",
                    "object_id": ids.event,
                    "url": url,
                    "data": {},
                    "created_at": now,
                    "delivered_at": now,
                }
            )
            notes.append(
                {
                    "id": ids.notification,
                    "token": secrets.token_urlsafe(16),
                    "event_id": ids.event,
                    "account_id": account_id,
                    "subject_person_id": subject,
                    "kind": kind,
                    "object_type": "record_item",
                    "object_id": ids.event,
                    "url": url,
                    "created_at": now,
                }
            )
            for sub_id in sub_ids:
                ids.delivery += 1
                deliveries.append(
                    {
                        "id": ids.delivery,
                        "notification_id": ids.notification,
                        "subscription_id": sub_id,
                        "state": DeliveryState.PENDING,
                        "attempts": 0,
                        "next_attempt_at": due,
                        "created_at": now,
                    }
                )
    for model, rows in (
        (Person, persons),
        (Relation, relations),
        (User, users),
        (PushSubscription, subs),
        (Event, events),
        (Notification, notes),
        (PushDelivery, deliveries),
    ):
        for i in range(0, len(rows), 5000):
            db.session.execute(insert(model.__table__), rows[i : i + 5000])
    if db.engine.dialect.name == "postgresql":
        for table in ("person", "account", "push_subscription", "event", "notification", "push_delivery"):
            db.session.execute(
                db.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            )
    db.session.commit()
    return len(deliveries)


WORKER_CODE = """
import json, sys, time
from collections import Counter
from app import create_app

app = create_app({"SQLALCHEMY_DATABASE_URI": sys.argv[1]})
with app.app_context():
    from app.notify.delivery import deliver_due

    warm = deliver_due()
    print(json.dumps({"ready": warm}), flush=True)
    sys.stdin.readline()
    started = time.time()
    totals = Counter()
    while True:
        got = deliver_due()
        totals.update(got)
        if not any(got.values()):
            break
    print(json.dumps({"started": started, "ended": time.time(), "totals": totals}), flush=True)
    sys.stdin.readline()  # stay until the parent has read this process's CPU time
"""


class Worker:
    """A process that runs ``deliver_due()`` as the worker does: warm-up first, then on "go" until nothing is due."""

    def __init__(self, url: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER_CODE, url],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.warm = self._read()["ready"]

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(30)
            raise RuntimeError(f"a worker exited with {self.proc.returncode}")
        return json.loads(line)

    def say(self, word: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(word + "\n")
        self.proc.stdin.flush()

    def result(self) -> dict[str, Any]:
        return self._read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            with suppress(OSError):
                self.say("quit")
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class WorkerRun:
    database: str
    processes: int
    deliveries: int
    seconds: float
    rate: float
    cpu: dict[str, float]
    cpu_text: str
    connections: int
    us_per_push: dict[str, float]  # CPU microseconds per push, by process group


def worker_throughput(
    label: str, url: str, processes: int, n: int, push: PushProcess, env: dict[str, str]
) -> WorkerRun:
    from sqlalchemy import func, select

    from app.db import db
    from app.notify.models import DeliveryState, PushDelivery

    devices, per_account = 2, 10
    accounts = max(1, n // (devices * per_account))
    keys = subscriber_keys()
    with app_on(url):
        ids = NextIds()
        workers: list[Worker] = []
        try:
            for _ in range(processes):  # each warms up on deliveries of its own, one after the other
                populate(ids, push.origin, 10, 10, 2, keys)
                workers.append(Worker(url, env))
                if workers[-1].warm["sent"] == 0:
                    raise RuntimeError(f"{label}: a worker's warm-up sent nothing: {workers[-1].warm}")
            first = ids.delivery + 1
            started = time.perf_counter()
            total = populate(ids, push.origin, accounts, per_account, devices, keys)
            if db.engine.dialect.name == "postgresql":
                with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    # only this schema's tables (search_path): other schemas may belong to test runs
                    conn.execute(
                        db.text("VACUUM ANALYZE person, account, push_subscription, event, notification, push_delivery")
                    )
            log(f"  {label}: {total:,} pending deliveries created in {time.perf_counter() - started:.1f} s")
            db.session.commit()
            before = push.summary()
            pids = {
                f"Varde worker ({processes} process{'es' if processes > 1 else ''})": [w.proc.pid for w in workers],
                "push service": [push.proc.pid],
            }
            with CpuWindow(pids) as cpu:
                go = time.time()
                for w in workers:
                    w.say("go")
                results = [w.result() for w in workers]
                cpu.stop()
            ended = max(r["ended"] for r in results)
            seconds = ended - go
            after = push.summary()
        finally:
            for w in workers:
                w.stop()
        db.session.expire_all()
        states = dict(
            db.session.execute(
                select(PushDelivery.state, func.count()).where(PushDelivery.id >= first).group_by(PushDelivery.state)
            ).all()
        )
    totals = Counter()
    for r in results:
        totals.update(r["totals"])
    counted = after["received"] - before["received"]
    if states.get(DeliveryState.SENT) != total or counted < total or totals["sent"] != total:
        raise RuntimeError(
            f"{label}: not every delivery was sent: states {states}, worker totals {dict(totals)}, "
            f"push service counted {counted} of {total}"
        )
    rate = total / seconds
    log(f"  {label}: {total:,} sent in {seconds:.2f} s = {rate:,.0f}/s; CPU: {cpu.describe()}")
    return WorkerRun(
        label,
        processes,
        total,
        seconds,
        rate,
        cpu.shares(),
        cpu.describe(),
        after["connections"] - before["connections"],
        {name: used / total * 1e6 for name, used in cpu.used.items()},
    )


# --- 3. latency with the real worker (huey_consumer) ---------------------------------------------------


def wait_for_all(service: Any, expected: dict[str, tuple[float, int]], timeout: float) -> None:
    """Until every expected notification has reached each of its devices (duplicates may come too)."""
    deadline = time.monotonic() + timeout
    while True:
        got = Counter(m.json()["id"] for m in service.received)
        missing = [t for t, (_at, devices) in expected.items() if got[t] < devices]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"latency: {len(missing)} of {len(expected)} notifications not delivered in {timeout} s")
        time.sleep(0.05)


@dataclass
class LatencyRun:
    events: int
    rate: float
    p50: float
    p95: float
    p99: float
    max: float
    within_budget: float
    duplicates: int
    cpu_text: str


def latency(url: str, env: dict[str, str], events: int, rate: float) -> LatencyRun:
    from sqlalchemy import event as sa_event
    from sqlalchemy import insert
    from sqlalchemy.orm import Session

    from app import clock
    from app.auth.models import Role, User
    from app.db import db
    from app.notify import events as notify_events
    from app.notify.models import NotificationSettings, PushSubscription
    from app.people.models import Person
    from tests.push_service import PushService

    committed: list[float] = []

    def stamp(session: Session) -> None:
        committed.append(time.time())

    consumer = None
    with PushService(verify=True, decrypt=True, keep=True) as service, app_on(url) as app:
        if not app.config["PUSH_WAKE_WORKER"]:
            raise RuntimeError("PUSH_WAKE_WORKER is off in this environment: the benchmark needs it on")
        people = []
        for i in range(40):
            person_id = db.session.execute(  # Core: synthetic ids without the ORM's national id check
                insert(Person.__table__)
                .values(
                    national_id=f"7{i:010d}",
                    given_name=GIVEN[i % len(GIVEN)],
                    family_name="Ventesen",
                    birth_date=date(1970 + i % 30, 1 + i % 12, 1 + i % 28),
                    created_at=clock.utcnow(),
                    updated_at=clock.utcnow(),
                )
                .returning(Person.__table__.c.id)
            ).scalar_one()
            user = User(person_id=person_id, role=Role.PATIENT, display_name="Bench", locale=LOCALES[i % 3])
            db.session.add(user)
            db.session.flush()
            # Quiet hours off: at night every push would otherwise wait until 07:00.
            db.session.add(NotificationSettings(account_id=user.id, quiet_enabled=False))
            for d in range(1 + i % 2):  # one or two devices
                _subscriber, subscription = service.subscribe(f"lat-{i}-{d}")
                keys = subscription["keys"]
                db.session.add(
                    PushSubscription(
                        account_id=user.id,
                        endpoint=subscription["endpoint"],
                        p256dh=keys["p256dh"],
                        auth=keys["auth"],
                        label=f"Bench device {d}",
                    )
                )
            people.append((person_id, 1 + i % 2))
        db.session.commit()
        log_path = Path(env["VARDE_INSTANCE_PATH"]) / "huey_consumer.log"
        with log_path.open("w") as log_file:
            consumer = subprocess.Popen(
                [
                    str(BIN / "huey_consumer"),
                    "app.tasks.huey",
                    "--workers",
                    "2",
                    "--worker-type",
                    "thread",
                    "--delay",
                    "0.1",
                    "--max-delay",
                    "0.5",
                    "--quiet",
                ],
                cwd=ROOT,
                env={**env, "DATABASE_URL": url, "VARDE_DEMO": "1"},
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        # before the app's own after_commit hook (which wakes the worker): the moment of the commit
        sa_event.listen(Session, "after_commit", stamp, insert=True)
        try:
            expected: dict[str, tuple[float, int]] = {}

            def emit_one(i: int) -> None:
                person_id, devices = people[i % len(people)]
                kind = KINDS[i % len(KINDS)]
                event = notify_events.emit(person_id, kind, object_type="record_item", object_id=i, url=f"/j/{i}")
                db.session.commit()
                expected[event.notifications[0].token] = (committed[-1], devices)

            # Warm-up: the consumer starts, builds its app, sends the first ones (not counted).
            for i in range(3):
                emit_one(i)
            wait_for_all(service, expected, 60)
            expected.clear()
            service.reset()
            pids = {"huey_consumer (2 threads)": [consumer.pid]}
            with CpuWindow(pids) as cpu:
                started = time.perf_counter()
                for i in range(events):
                    pause = started + i / rate - time.perf_counter()
                    if pause > 0:
                        time.sleep(pause)
                    emit_one(i)
                wait_for_all(service, expected, 120)
                cpu.stop()
            service.assert_no_rejections()
            arrived: dict[str, list[float]] = {}
            for message in service.received:
                arrived.setdefault(message.json()["id"], []).append(message.at)
        finally:
            sa_event.remove(Session, "after_commit", stamp)
            if consumer.poll() is None:
                consumer.send_signal(signal.SIGINT)
                try:
                    consumer.wait(20)
                except subprocess.TimeoutExpired:
                    consumer.kill()
                    consumer.wait(5)
    # every device's push counts: the last device of a notification is when it has reached them all
    latencies = []
    duplicates = 0
    for token, (at, devices) in expected.items():
        got = sorted(arrived.get(token, []))
        if len(got) < devices:
            raise RuntimeError(f"latency: notification {token[:6]}… reached {len(got)} of {devices} devices")
        duplicates += len(got) - devices
        latencies += [t - at for t in got[:devices]]
    run = LatencyRun(
        events=events,
        rate=rate,
        p50=percentile(latencies, 50),
        p95=percentile(latencies, 95),
        p99=percentile(latencies, 99),
        max=max(latencies),
        within_budget=sum(1 for x in latencies if x <= LATENCY_BUDGET) / len(latencies),
        duplicates=duplicates,
        cpu_text=cpu.describe(),
    )
    log(
        f"  latency: {len(latencies)} pushes, p50 {run.p50 * 1000:.0f} ms, p95 {run.p95 * 1000:.0f} ms, "
        f"p99 {run.p99 * 1000:.0f} ms, max {run.max * 1000:.0f} ms"
    )
    return run


# --- report ----------------------------------------------------------------------------------------


def git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def report(figures: dict[str, Any]) -> str:
    ecdh = figures.get("openssl_ecdh_2proc")
    lines = [
        f"# Push delivery benchmarks, {figures['stamp']}",
        "",
        f"Commit {figures['commit']}; Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {figures['load_start']} at the start, {figures['load_end']} at the end.",
        "",
        *([figures["label"], ""] if figures.get("label") else []),
        f"## (a) Delivery throughput (goal: >= {THROUGHPUT_GOAL} x the two-process ECDH rate)",
        "",
        "| measurement | per second | x ECDH (2 processes) | CPU during it (share of all cores) |",
        "|---|---:|---:|---|",
    ]
    if ecdh:
        each = ", ".join(f"{x:,.0f}" for x in figures["openssl_ecdh_each"])
        lines.append(f"| `openssl speed -multi 2 ecdhp256` (mean of {each}) | {ecdh:,.0f} | 1.00 | |")
    seq = figures.get("sequential_pywebpush")
    if seq:
        ratio = f"{seq['rate'] / ecdh:.3f}" if ecdh else "–"
        lines.append(
            f"| sequential `pywebpush.webpush()`, {seq['n']:,} calls | {seq['rate']:,.0f} | {ratio} | {seq['cpu_text']} |"
        )
    for run in figures.get("workers", []):
        ratio = run["rate"] / ecdh if ecdh else None
        mark = ""
        if ratio is not None and run["database"].startswith("PostgreSQL"):
            mark = " ok" if ratio >= THROUGHPUT_GOAL else " **under goal**"
        lines.append(
            f"| Varde `deliver_due()`, {run['database']}, {run['deliveries']:,} deliveries in {run['seconds']:.2f} s "
            f"| **{run['rate']:,.0f}** | {f'{ratio:.3f}' if ratio is not None else '–'}{mark} | {run['cpu_text']} |"
        )
    if figures.get("workers"):
        one = figures.get("openssl_ecdh_1proc")
        lines += [
            "",
            "What each push cost in CPU time (microseconds; from /proc, so what other processes on the machine did "
            "is not in it), and the ratio that CPU cost gives on an idle machine: 2 cores / CPU per push against "
            "2 x the one-process ECDH rate"
            + (
                f" ({one:,.0f}/s per CPU second, mean of {', '.join(f'{x:,.0f}' for x in figures['openssl_ecdh_1proc_each'])})"
                if one
                else ""
            )
            + ".",
            "",
            "| run | Varde worker | push service | PostgreSQL | total | ECDH derivations' worth | x ECDH, from CPU cost "
            "| connections opened |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for run in figures["workers"]:
            per = run["us_per_push"]
            worker = sum(v for k, v in per.items() if k.startswith("Varde worker"))
            total = run["cpu_us_per_push"]
            worth = f"{total * one / 1e6:.1f}" if one else "–"
            cpu_ratio = f"{run['cpu_ratio_to_ecdh']:.3f}" if run.get("cpu_ratio_to_ecdh") else "–"
            lines.append(
                f"| {run['database']} | {worker:,.0f} | {per.get('push service', 0):,.0f} | {per.get('PostgreSQL', 0):,.0f} "
                f"| {total:,.0f} | {worth} | {cpu_ratio} | {run['connections']:,} |"
            )
    lines += [
        "",
        "The push service runs in a process of its own (`python -m tests.push_service --no-verify`) on the same "
        'cores; pushes per second is deliveries from "go" until every row is SENT (and counted by the service). '
        "Workers are warmed up on deliveries of their own first. PUSH_BATCH, PUSH_CONCURRENCY: the defaults "
        f"({figures.get('batch')}, {figures.get('concurrency')}).",
        "",
    ]
    lat = figures.get("latency")
    if lat:
        verdict = "ok" if lat["p95"] <= LATENCY_BUDGET else "**over budget**"
        lines += [
            f"## (b) Event committed -> push accepted, with the worker running (budget: p95 <= {LATENCY_BUDGET:.0f} s)",
            "",
            "| events | emitted per second | p50 ms | p95 ms | p99 ms | max ms | within 1 s | budget |",
            "|---:|---:|---:|---:|---:|---:|---:|---|",
            f"| {lat['events']} | {lat['rate']:.0f} | {lat['p50'] * 1000:.0f} | **{lat['p95'] * 1000:.0f}** "
            f"| {lat['p99'] * 1000:.0f} | {lat['max'] * 1000:.0f} | {lat['within_budget']:.1%} | {verdict} |",
            "",
            "`huey_consumer app.tasks.huey --workers 2 --worker-type thread --delay 0.1 --max-delay 0.5` (as `make run`), "
            "PostgreSQL; one event per commit (40 patients, one or two devices each, so one push per device); the push "
            "service in a thread of the emitting process verifies VAPID and decrypts every body. Latency per device: "
            "commit (after_commit, before the worker is woken) to the service accepting the push; matched by the "
            f"notification token in the payload. Duplicates: {lat['duplicates']}. CPU: {lat['cpu_text']}.",
            "",
        ]
    for note in figures.get("skipped", []):
        lines += [f"Skipped: {note}", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer deliveries and events, shorter openssl runs")
    parser.add_argument(
        "--deliveries", type=int, help="pending deliveries per worker run (default 40,000; --quick 6,000)"
    )
    parser.add_argument("--sequential", type=int, help="sequential pywebpush calls (default 2,000; --quick 500)")
    parser.add_argument("--events", type=int, help="events for the latency run (default 200; --quick 60)")
    parser.add_argument("--rate", type=float, default=15.0, help="events per second in the latency run (default 15)")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--no-append", action="store_true", help="do not write bench/results/push.md and push.json")
    parser.add_argument("--label", help="a line under the heading (what this run measures, e.g. a variant)")
    args = parser.parse_args()
    n = args.deliveries or (6000 if args.quick else 40000)
    n_seq = args.sequential or (500 if args.quick else 2000)
    events = args.events or (60 if args.quick else 200)
    openssl_seconds = 2 if args.quick else 5

    figures: dict[str, Any] = {
        "stamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git("rev-parse", "--short", "HEAD")
        + (" (with uncommitted changes)" if git("status", "--porcelain", "--", "app") else ""),
        "load_start": load(),
        "label": args.label,
        "skipped": [],
        "workers": [],
    }
    pg = pg_reachable()
    with tempfile.TemporaryDirectory() as instance:
        # Before app is imported: Config reads these once; the workers and the consumer inherit them.
        os.environ.update({"VARDE_INSTANCE_PATH": instance, "SECRET_KEY": secrets.token_hex(32)})
        for name in (
            "REDIS_URL",
            "DATABASE_URL",
            "VARDE_PUSH_WAKE_WORKER",
            "VARDE_PUSH_BATCH",
            "VARDE_PUSH_CONCURRENCY",
        ):
            os.environ.pop(name, None)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        from app.config import Config

        figures["batch"], figures["concurrency"] = Config.PUSH_BATCH, Config.PUSH_CONCURRENCY
        push = PushProcess()
        try:
            log(f"openssl speed -multi 2 ecdhp256 ({openssl_seconds} s), and one process")
            ecdh = [openssl_ecdh(openssl_seconds)]
            ecdh1 = [openssl_ecdh(openssl_seconds, 1)]
            log(f"  {ecdh[0]}, one process {ecdh1[0]}")
            log(f"sequential pywebpush: {n_seq:,} calls")
            seq_rate, seq_cpu = sequential_pywebpush(push, n_seq)
            log(f"  {seq_rate:,.0f}/s; CPU: {seq_cpu.describe()}")
            figures["sequential_pywebpush"] = {"n": n_seq, "rate": seq_rate, "cpu_text": seq_cpu.describe()}
            if pg:
                url, schema = create_schema()
                try:
                    log(f"worker throughput, PostgreSQL, 2 processes (schema {schema})")
                    run = worker_throughput("PostgreSQL, 2 processes", url, 2, n, push, env)
                    figures["workers"].append(asdict(run))
                finally:
                    drop_schema(schema)
            else:
                figures["skipped"].append("PostgreSQL on 127.0.0.1:5432 does not answer: no PostgreSQL worker run.")
            if not args.skip_sqlite:
                for processes in (1, 2):
                    label = f"SQLite, {processes} process{'es' if processes > 1 else ''}"
                    log(f"worker throughput, {label}")
                    database = f"sqlite:///{instance}/push-{processes}.sqlite"
                    run = worker_throughput(label, database, processes, n, push, env)
                    figures["workers"].append(asdict(run))
            log(f"openssl speed -multi 2 ecdhp256 ({openssl_seconds} s), and one process, again")
            ecdh.append(openssl_ecdh(openssl_seconds))
            ecdh1.append(openssl_ecdh(openssl_seconds, 1))
            log(f"  {ecdh[1]}, one process {ecdh1[1]}")
        finally:
            push.stop()
        measured = [x for x in ecdh if x]
        if measured:
            figures["openssl_ecdh_each"] = measured
            figures["openssl_ecdh_2proc"] = statistics.mean(measured)
            if one := [x for x in ecdh1 if x]:
                figures["openssl_ecdh_1proc_each"] = one
                figures["openssl_ecdh_1proc"] = statistics.mean(one)
        else:
            figures["skipped"].append("openssl speed did not run: no ECDH baseline.")
        if args.skip_latency:
            pass
        elif pg:
            url, schema = create_schema()
            try:
                log(f"latency: {events} events at {args.rate:.0f}/s with huey_consumer running (schema {schema})")
                figures["latency"] = asdict(latency(url, env, events, args.rate))
            finally:
                drop_schema(schema)
        else:
            figures["skipped"].append("PostgreSQL on 127.0.0.1:5432 does not answer: no latency run.")
    figures["load_end"] = load()
    ecdh_rate, ecdh_one = figures.get("openssl_ecdh_2proc"), figures.get("openssl_ecdh_1proc")
    for run in figures["workers"]:
        run["ratio_to_ecdh"] = run["rate"] / ecdh_rate if ecdh_rate else None
        cpu = sum(v for k, v in run["us_per_push"].items() if k != "machine, all" and not k.startswith("everything"))
        run["cpu_us_per_push"] = cpu
        # On an idle 2-core machine: pushes/s ~ 2 / CPU per push, two-process ECDH ~ 2 x one-process rate.
        run["cpu_ratio_to_ecdh"] = 1e6 / (cpu * ecdh_one) if ecdh_one and cpu else None
    text = report(figures)
    print(text)
    if not args.no_append:
        out = ROOT / "bench" / "results"
        out.mkdir(exist_ok=True)
        with (out / "push.md").open("a") as fh:
            fh.write(text + "\n")
        (out / "push.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
