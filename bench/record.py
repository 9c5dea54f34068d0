"""Benchmarks for the health-record issue.

1. Page cost does not grow with history (PostgreSQL). In a private schema: a patient with ten years
   of history (>= 2,000 results, >= 300 notes), one with about 50 results, and 1,000 others holding a
   copy of the small one's items, so that the table looks like a region's and the planner chooses
   what it would choose in production. The overview `/` and the results list `/journal/prover` under
   gunicorn with 2 sync workers and `wrk -t2 -c32 --latency`, big and small patient side by side,
   several rounds in alternating order, with a hello-world Flask route in the same run.
   Budget: p99 big/small <= 1.2. The same pages are also timed in-process (test client, one request
   at a time), and every SELECT each page runs is re-run under EXPLAIN ANALYZE for both patients, so
   a query whose cost grows with history is named; its plan goes to record.md (every plan: --explain).
2. FHIR import throughput: resources per second through app.fhir.ingest.import_bundle (what POST /fhir
   calls, given the raw bytes) for the Inferno US Core fixtures (patients 85 and 355; skipped when
   ../shared/fixtures is absent) and a generated ten-year bundle, on SQLite and PostgreSQL; the first
   import (new rows) and a repeat (all unchanged) apart; on PostgreSQL also one more ten-year bundle
   into a table that already holds ~110,000 items. Goal: >= 1,000 resources/s.

    .venv/bin/python bench/record.py [--quick] [--rounds N] [--seconds S] [--skip-pages] [--skip-import]

The report goes to stdout (progress to stderr) and is appended to bench/results/record.md.
Needs wrk (apt-get install wrk) and PostgreSQL on 127.0.0.1:5432 (VARDE_BENCH_PG_URL); without them
the parts that need them are skipped with a message.
"""

from __future__ import annotations

import argparse
import contextvars
import json
import os
import platform
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
PG_URL = os.environ.get("VARDE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
FIXTURES = ROOT.parent / "shared" / "fixtures" / "fhir" / "inferno-uscore"
FIXTURE_FILES = ("uscore_bundle_patient_85.json", "uscore_bundle_patient_355.json")
SYNTHEA = "https://github.com/synthetichealth/synthea"
COOKIE = "__Host-varde"
PAGES = {"overview": "/", "results": "/journal/prover"}
P99_BUDGET = 1.2
IMPORT_GOAL = 1000.0


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


# --- PostgreSQL schemas and the app -------------------------------------------------------------


def pg_reachable() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5432), 1).close()
        return True
    except OSError:
        return False


def create_schema() -> tuple[str, str]:
    """A private schema (as tests/conftest.py does); returns (url with its search_path, schema)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    schema = "bench_" + secrets.token_hex(5)
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    return url, schema


def drop_schema(schema: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_URL)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        engine.dispose()


@contextmanager
def app_on(url: str) -> Iterator[Any]:
    """An app on ``url`` (demo mode, for synthetic national ids) with every table created, in its context."""
    from app import create_app
    from app.db import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "DEMO_MODE": True})
    with app.app_context():
        db.create_all()
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()


_individual = iter(range(100, 500))


def add_person(given: str, family: str, birth: date) -> Any:
    """A person with a synthetic national id (accepted in demo mode only)."""
    from app.db import db
    from app.people.models import Person
    from app.people.nin import make_nin

    while (nin := make_nin(birth, next(_individual), synthetic=True)) is None:
        pass
    person = Person(national_id=nin, given_name=given, family_name=family, birth_date=birth)
    db.session.add(person)
    db.session.flush()
    return person


def add_patient_with_session(given: str, family: str, birth: date) -> tuple[Any, str]:
    """A patient with an account and a logged-in server-side session; returns (person, cookie token)."""
    import hashlib

    from app import clock
    from app.auth.models import Role, ServerSession
    from app.auth.services import create_local_user
    from app.db import db

    person = add_person(given, family, birth)
    user = create_local_user(
        username=person.national_id,
        password=None,
        password_hash="bench-no-password-login",
        display_name=person.display_name,
        person=person,
        role=Role.PATIENT,
        is_demo=True,
    )
    db.session.flush()
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
    return person, token


def add_source(name: str, source_system: str) -> Any:
    from app.db import db
    from app.fhir.clients import create_client
    from app.people.models import Organisation, OrganisationKind

    org = Organisation(name=name, kind=OrganisationKind.HOSPITAL)
    db.session.add(org)
    client, _token = create_client(org, f"{name} (bench)", source_system)
    db.session.commit()
    return client


# --- gunicorn and wrk ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    def __init__(self, target: str, env: dict[str, str]) -> None:
        self.port = free_port()
        cmd = [str(BIN / "gunicorn"), "-w", "2", "-k", "sync", "-b", f"127.0.0.1:{self.port}"]
        self.proc = subprocess.Popen([*cmd, "--log-level", "warning", target], cwd=ROOT, env=env)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn {target} exited with {self.proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn {target} did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class Run:
    rps: float
    p50: float
    p99: float


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, seconds: int, connections: int, cookie: str | None = None) -> Run:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency", url]
    if cookie:
        cmd[1:1] = ["-H", f"Cookie: {COOKIE}={cookie}"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=seconds + 60).stdout
    for problem in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: .*"):
        if m := re.search(problem, out):
            raise RuntimeError(f"{url}: {m.group(0)}\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    return Run(rps, _ms(*p50.groups()), _ms(*p99.groups()))


def fetch(port: int, path: str, cookie: str) -> tuple[int, str]:
    """One GET without following redirects (a redirect to login must not pass for a page)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Cookie": f"{COOKIE}={cookie}"})
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


# --- 1. page cost against history ---------------------------------------------------------------


@dataclass
class Patient:
    label: str
    person_id: int
    given: str
    cookie: str
    items: dict[str, int] = field(default_factory=dict)


def add_others(count: int, template_person_id: int) -> int:
    """``count`` more patients, each with a copy of the template patient's items (by SQL: fast).

    So that record_item looks like a region's, not like two patients': the planner then chooses for the
    big patient what it would choose in production, where one patient is a small part of the table.
    """
    from app.db import db
    from app.record.models import RecordItem

    if count <= 0:
        return 0
    db.session.execute(
        db.text(
            "INSERT INTO person (national_id, given_name, family_name, birth_date, created_at, updated_at) "
            "SELECT '9' || lpad(g::text, 10, '0'), 'Fyll', 'Fyllsen', DATE '1970-01-01', now(), now() "
            "FROM generate_series(1, :n) AS g"
        ),
        {"n": count},
    )
    columns = [c.name for c in RecordItem.__table__.columns if c.name != "id"]
    picks = {"person_id": "p.id", "source_id": "ri.source_id || '-' || p.id"}
    chosen = ", ".join(picks.get(c, f"ri.{c}") for c in columns)
    inserted = db.session.execute(
        db.text(
            f"INSERT INTO record_item ({', '.join(columns)}) SELECT {chosen} FROM record_item ri "
            "CROSS JOIN person p WHERE ri.person_id = :template AND p.family_name = 'Fyllsen'"
        ),
        {"template": template_person_id},
    ).rowcount
    db.session.commit()
    return inserted


def build_patients(big_results: int, big_notes: int, others: int) -> list[Patient]:
    from sqlalchemy import func, select

    from app.db import db
    from app.demo.fhir_bundles import history_bundle
    from app.fhir.ingest import import_bundle
    from app.record.models import RecordItem

    client = add_source("St. Olavs hospital", "bench-dips")
    patients = []
    for label, given, birth, size in (
        ("big", "Berit", date(1952, 3, 14), {"results": big_results, "notes": big_notes, "years": 10}),
        ("small", "Sander", date(1990, 10, 2), {"results": 50, "notes": 5, "years": 1}),
    ):
        person, cookie = add_patient_with_session(given, "Benkesen", birth)
        bundle = history_bundle(person, prefix=f"bench-{label}", seed=7, **size)
        started = time.perf_counter()
        result = import_bundle(bundle, client)
        log(
            f"  {label} patient: {result.resources} resources imported in {time.perf_counter() - started:.1f} s "
            f"({result.created} items)"
        )
        counts = db.session.execute(
            select(RecordItem.kind, func.count()).where(RecordItem.person_id == person.id).group_by(RecordItem.kind)
        ).all()
        patients.append(Patient(label, person.id, given, cookie, {k.value: n for k, n in counts}))
    started = time.perf_counter()
    copied = add_others(others, patients[1].person_id)
    log(
        f"  {others} other patients with {copied:,} items copied from the small one in {time.perf_counter() - started:.1f} s"
    )
    db.session.commit()
    # What autovacuum does soon after a bulk import; done now so that it does not run during a round.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(db.text("VACUUM ANALYZE"))
    big = patients[0].items
    if big.get("result", 0) < big_results or big.get("note", 0) < big_notes:
        raise RuntimeError(f"the big patient has too little history: {big}")
    return patients


def check_pages(port: int, patients: list[Patient]) -> None:
    """Every page answers 200 for both patients, and the big patient's results page lists results."""
    for p in patients:
        for name, path in PAGES.items():
            status, body = fetch(port, path, p.cookie)
            if status != 200:
                raise RuntimeError(f"{name} for the {p.label} patient: HTTP {status}\n{body[:500]}")
            if f"Hei, {p.given}" not in body and name == "overview":
                raise RuntimeError(f"the overview does not greet the {p.label} patient")
            if name == "results":
                rows = body.count('<li class="item-row"')
                if 'id="results-items"' not in body or rows < 10:
                    raise RuntimeError(f"the {p.label} patient's results page shows no results\n{body[:2000]}")


@dataclass
class PageRow:
    round: int
    name: str
    run: Run


def page_cost(seconds: int, rounds: int, connections: int, others: int, explain: bool) -> tuple[list[str], list[str]]:
    """Returns (report lines, explain lines)."""
    if not shutil.which("wrk"):
        return ["## Page cost against history", "", "Skipped: wrk not found (apt-get install wrk).", ""], []
    if not pg_reachable():
        return ["## Page cost against history", "", "Skipped: PostgreSQL on 127.0.0.1:5432 does not answer.", ""], []
    url, schema = create_schema()
    servers: dict[str, Gunicorn] = {}
    try:
        log(f"page cost: building two patients in schema {schema}")
        with app_on(url) as app:
            patients = build_patients(2000, 300, others)
            profile = query_profile(app, patients)
            log("page cost: timing requests in-process")
            timings = in_process(app, patients, 50 if seconds < 10 else 200)
        env = {**os.environ, "DATABASE_URL": url, "VARDE_DEMO": "1", "FLASK_APP": "wsgi"}
        servers["hello"] = Gunicorn("bench.hello:app", env)
        servers["varde"] = Gunicorn("wsgi:app", env)
        port = servers["varde"].port
        check_pages(port, patients)
        targets = [("hello-world Flask route", f"http://127.0.0.1:{servers['hello'].port}/", None)]
        for page, path in PAGES.items():
            for p in patients:
                targets.append((f"{page}, {p.label} patient", f"http://127.0.0.1:{port}{path}", p.cookie))
        log("page cost: warming up")
        for _name, target_url, cookie in targets:
            wrk(target_url, 2, connections, cookie)
        rows: list[PageRow] = []
        for r in range(rounds):
            order = targets if r % 2 == 0 else list(reversed(targets))
            for name, target_url, cookie in order:
                run = wrk(target_url, seconds, connections, cookie)
                log(f"  round {r + 1}: {name}: {run.rps:,.0f} req/s, p50 {run.p50:.1f} ms, p99 {run.p99:.1f} ms")
                rows.append(PageRow(r, name, run))
        check_pages(port, patients)  # still logged in at the end: no run measured the login page
    finally:
        for server in servers.values():
            server.stop()
        drop_schema(schema)
    report = page_report(rows, patients, rounds, seconds, connections, others, timings, profile)
    return report, profile_plans(profile, explain)


def page_report(
    rows: list[PageRow],
    patients: list[Patient],
    rounds: int,
    seconds: int,
    connections: int,
    others: int,
    timings: dict[tuple[str, str], list[float]],
    profile: list[Query],
) -> list[str]:
    def runs(name: str) -> list[Run]:
        return [row.run for row in sorted(rows, key=lambda row: row.round) if row.name == name]

    big, small = patients
    lines = [
        f"## Page cost against history (PostgreSQL; budget: p99 big/small <= {P99_BUDGET})",
        "",
        f"Big patient: {describe(big.items)}. Small patient: {describe(small.items)}. "
        f"{others:,} other patients with a copy of the small one's items ({others * sum(small.items.values()):,} items).",
        f"gunicorn, 2 sync workers; `wrk -t2 -c{connections} -d{seconds}s`, {rounds} round(s), alternating order; "
        "figures are the median over the rounds.",
        "",
        "| page | patient | req/s | p50 ms | p99 ms | p99 big/small (each round) | budget |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    hello = runs("hello-world Flask route")
    lines.append(
        f"| hello-world Flask route | – | {med(r.rps for r in hello):,.0f} | {med(r.p50 for r in hello):.1f} "
        f"| {med(r.p99 for r in hello):.1f} | | |"
    )
    for page in PAGES:
        big_runs, small_runs = runs(f"{page}, big patient"), runs(f"{page}, small patient")
        ratios = [b.p99 / s.p99 for b, s in zip(big_runs, small_runs, strict=True)]
        ratio = med(ratios)
        for label, rs in (("big", big_runs), ("small", small_runs)):
            cells = ""
            if label == "big":
                each = ", ".join(f"{x:.2f}" for x in ratios)
                verdict = "ok" if ratio <= P99_BUDGET else "**over**"
                cells = f"**{ratio:.2f}** ({each}) | {verdict}"
            else:
                cells = " | "
            lines.append(
                f"| {PAGES[page]} | {label} | {med(r.rps for r in rs):,.0f} | {med(r.p50 for r in rs):.1f} "
                f"| {med(r.p99 for r in rs):.1f} | {cells} |"
            )
    n = len(next(iter(timings.values())))
    lines += [
        "",
        f"The same pages in-process (Flask test client, one request at a time, {n} per page and patient, "
        "big and small alternating): the app's own time per request, without wrk, gunicorn or the network.",
        "",
        "| page | patient | median ms | p99 ms | median big/small | p99 big/small |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for page in PAGES:
        b, s = timings[(page, "big")], timings[(page, "small")]
        for label, ts in (("big", b), ("small", s)):
            ratios = f"{med(b) / med(s):.2f} | {pct(b, 99) / pct(s, 99):.2f}" if label == "big" else " | "
            lines.append(f"| {PAGES[page]} | {label} | {med(ts):.1f} | {pct(ts, 99):.1f} | {ratios} |")
    lines += ["", *profile_table(profile), ""]
    return lines


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def in_process(app: Any, patients: list[Patient], n: int) -> dict[tuple[str, str], list[float]]:
    """Milliseconds per request through the test client, big and small patient alternating."""
    timings: dict[tuple[str, str], list[float]] = {}
    for page, path in PAGES.items():
        clients = []
        for p in patients:
            client = app.test_client()
            client.set_cookie(COOKIE, p.cookie, secure=True, httponly=True, samesite="Lax")
            for _ in range(5):  # warm
                contextvars.Context().run(client.get, path)
            clients.append((p, client))
        for i in range(n):
            for p, client in clients if i % 2 == 0 else reversed(clients):
                started = time.perf_counter()
                response = contextvars.Context().run(client.get, path)
                timings.setdefault((page, p.label), []).append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"{path} for the {p.label} patient: HTTP {response.status_code}")
    return timings


def describe(items: dict[str, int]) -> str:
    order = ("result", "report", "note", "encounter", "medication", "immunization", "document")
    return ", ".join(f"{items[k]:,} {k}s" for k in order if items.get(k))


def med(values: Any) -> float:
    return statistics.median(list(values))


# --- the queries behind each page, timed with EXPLAIN ANALYZE -----------------------------------


@dataclass
class Query:
    page: str
    patient: str
    index: int
    sql: str
    params: Any
    key: tuple[str, int] = ("", 0)  # the statement's shape and its occurrence: pairs big with small
    ms: float | None = None  # EXPLAIN ANALYZE execution time (SELECTs only)
    rows: int = 0
    plan: str = ""


def shape(sql: str) -> str:
    """The statement without its parameters; an IN list of any length counts as one."""
    text = re.sub(r"%\(\w+\)s(::\w+(\(\d+\))?)?", "?", " ".join(sql.split()))
    return re.sub(r"\(\?(, \?)*\)", "(?…)", text)


def query_profile(app: Any, patients: list[Patient]) -> list[Query]:
    """Each page once per patient through the test client; every SELECT re-run under EXPLAIN ANALYZE."""
    from sqlalchemy import event

    from app.db import db

    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool) -> None:
        captured.append((statement, parameters))

    queries: list[Query] = []
    engine = db.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        for page, path in PAGES.items():
            for p in patients:
                client = app.test_client()
                client.set_cookie(COOKIE, p.cookie, secure=True, httponly=True, samesite="Lax")
                # Each request in a context of its own, as under gunicorn: otherwise it would share the
                # bench's app context (g, Flask-Login's cached user, the DB session) with the last one.
                contextvars.Context().run(client.get, path)  # warm: statement caches, session touched
                captured.clear()
                response = contextvars.Context().run(client.get, path)
                if response.status_code != 200:
                    where = response.headers.get("Location")
                    raise RuntimeError(f"{path} for the {p.label} patient: HTTP {response.status_code} {where}")
                persons = {
                    v for _s, ps in captured if isinstance(ps, dict) for k, v in ps.items() if k.startswith("person_id")
                }
                if persons != {p.person_id}:
                    raise RuntimeError(
                        f"{path} for the {p.label} patient (person {p.person_id}) read persons {persons}"
                    )
                seen: dict[str, int] = {}
                for i, (sql, params) in enumerate(list(captured)):
                    s = shape(sql)
                    seen[s] = seen.get(s, 0) + 1
                    queries.append(Query(page, p.label, i, sql, params, (s, seen[s])))
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for q in queries:
            if not q.sql.lstrip().upper().startswith("SELECT"):
                continue
            best: tuple[float, str] | None = None
            for _ in range(5):
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + q.sql, q.params)
                plan = "\n".join(row[0] for row in cursor.fetchall())
                ms = float(re.search(r"Execution Time: ([\d.]+) ms", plan).group(1))
                if best is None or ms < best[0]:
                    best = (ms, plan)
            q.ms, q.plan = best
            top = re.search(r"actual time=[\d.]+\.\.[\d.]+ rows=(\d+)", q.plan)
            q.rows = int(top.group(1)) if top else 0
        raw.rollback()
    finally:
        raw.close()
    return queries


def short_sql(sql: str) -> str:
    text = re.sub(r"\b(record_item|organisation|server_session|account|person|audit_event)\.", "", shape(sql))
    verb = text.split(" ", 1)[0]
    if verb != "SELECT":
        m = re.search(r"^(INSERT INTO|UPDATE|DELETE FROM) (\w+)", text)
        return f"{m.group(1)} {m.group(2)}" if m else verb
    m = re.search(r"\bFROM (\w+)", text)
    out = m.group(1) if m else "?"
    if where := re.search(r"\bWHERE (.*?)(?: ORDER BY| GROUP BY| LIMIT|$)", text):
        out += f" WHERE {where.group(1)[:110]}"
    if order := re.search(r"\bORDER BY (.*?)(?: LIMIT|$)", text):
        out += f" ORDER BY {order.group(1)[:60]}"
    return out.replace("|", "/")


def grows(big: Query, small: Query | None) -> bool:
    if big.ms is None or small is None or small.ms is None:
        return False
    return big.ms > 2 * small.ms and big.ms - small.ms > 0.2


def pairs(queries: list[Query], page: str) -> list[tuple[Query | None, Query | None]]:
    """(big, small) statements of one page, matched by shape and occurrence, in the big request's order."""
    big = [q for q in queries if q.page == page and q.patient == "big"]
    small = {q.key: q for q in queries if q.page == page and q.patient == "small"}
    out: list[tuple[Query | None, Query | None]] = [(b, small.pop(b.key, None)) for b in big]
    return out + [(None, s) for s in small.values()]


def profile_table(queries: list[Query]) -> list[str]:
    lines = [
        "The statements of one request per page and patient; SELECTs re-run under EXPLAIN ANALYZE "
        "(execution time in the database, best of 5, ms):",
        "",
        "| page | statement | big ms | small ms | big/small | rows (big) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for page in PAGES:
        matched = pairs(queries, page)
        for b, s in matched:
            q = b or s
            if b is None or s is None:
                who = "only for the big patient" if s is None else "only for the small patient"
                lines.append(f"| {PAGES[page]} | `{short_sql(q.sql)}` ({who}) | | | | |")
                continue
            if b.ms is None:
                lines.append(f"| {PAGES[page]} | `{short_sql(b.sql)}` | | | | |")
                continue
            ratio = f"{b.ms / s.ms:.1f}" if s.ms else "–"
            flag = " **grows**" if grows(b, s) else ""
            lines.append(
                f"| {PAGES[page]} | `{short_sql(b.sql)}` | {b.ms:.3f} | {s.ms:.3f} | {ratio}{flag} | {b.rows} |"
            )
        n_big = sum(1 for b, _s in matched if b)
        n_small = sum(1 for _b, s in matched if s)
        lines.append(f"| {PAGES[page]} | *{n_big} statements (big), {n_small} (small)* | | | | |")
    return lines


def profile_plans(queries: list[Query], everything: bool) -> list[str]:
    """Plans of the queries whose cost grows with history (every SELECT's with --explain)."""
    lines: list[str] = []
    for page in PAGES:
        for b, s in pairs(queries, page):
            if b is None or b.ms is None or not (everything or grows(b, s)):
                continue
            title = f"### {PAGES[page]}: {short_sql(b.sql)[:80]}"
            lines += [title + (" (grows with history)" if grows(b, s) else ""), ""]
            lines += ["```sql", " ".join(b.sql.split()), "```", "", f"parameters (big): `{b.params}`", ""]
            lines += ["Big patient:", "", "```", b.plan, "```", ""]
            if s is not None:
                lines += ["Small patient:", "", "```", s.plan, "```", ""]
    return lines


# --- 2. FHIR import throughput ------------------------------------------------------------------


@dataclass
class ImportRow:
    database: str
    bundle: str
    resources: int
    items: int
    cold_s: float
    repeat_s: float
    validate_s: float


def fixture_bundles() -> list[tuple[str, bytes]]:
    out = []
    for name in FIXTURE_FILES:
        path = FIXTURES / name
        if path.is_file():
            out.append((name.removesuffix(".json"), path.read_bytes()))
        else:
            log(f"import: {path} is not here: skipped")
    return out


def fixture_person(raw: bytes) -> None:
    """The fixture's patient, known to Varde by its Synthea identifier (as a source's own id would be)."""
    from app.db import db
    from app.people.models import PersonIdentifier

    bundle = json.loads(raw)
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    synthea = next(i["value"] for i in patient["identifier"] if i.get("system") == SYNTHEA)
    name = patient.get("name", [{}])[0]
    person = add_person(
        (name.get("given") or ["Ukjent"])[0], name.get("family") or "Ukjent", date.fromisoformat(patient["birthDate"])
    )
    db.session.add(PersonIdentifier(person_id=person.id, system=SYNTHEA, value=synthea))
    db.session.commit()


def import_throughput_on(database: str, url: str, fixtures: list[tuple[str, bytes]], grown: int) -> list[ImportRow]:
    """Each bundle imported cold and again; then, with ``grown`` > 0 (PostgreSQL), one more 10-year
    bundle into a table that already holds ``grown`` copies of the first one's items from the same source."""
    from app.db import db
    from app.fhir.validate import check_bundle, parse_json, validate_entries

    rows: list[ImportRow] = []
    with app_on(url) as app:
        client = add_source("Bench sykehus", "bench-import")
        for _name, raw in fixtures:
            fixture_person(raw)
        person = add_person("Tiår", "Historikk", date(1950, 6, 1))
        warm = add_person("Varm", "Opp", date(1980, 1, 1))
        db.session.commit()
        # Warm up this engine (SQLAlchemy compiles each statement once per engine) with a small import.
        from app.demo.fhir_bundles import history_bundle
        from app.fhir.ingest import import_bundle

        import_bundle(history_bundle(warm, prefix="bench-warm", results=20, notes=3, years=1), client)
        bundles = [*fixtures, ("generated 10-year bundle", _history_bytes(person))]
        for name, raw in bundles:
            entries = check_bundle(parse_json(raw), app.config["FHIR_MAX_ENTRIES"])
            validate_entries(entries)  # warm: fhir.resources builds its models on first use
            started = time.perf_counter()
            validate_entries(entries)
            validate_s = time.perf_counter() - started
            rows.append(import_twice(database, name, raw, client, validate_s))
        if grown:
            started = time.perf_counter()
            copied = add_others(grown, person.id)
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(db.text("VACUUM ANALYZE"))
            log(f"  {database}: {copied:,} more items from the same source in {time.perf_counter() - started:.1f} s")
            newcomer = add_person("Ny", "Historikk", date(1951, 7, 2))
            db.session.commit()
            total = db.session.execute(db.text("SELECT count(*) FROM record_item")).scalar_one()
            name = f"generated 10-year bundle, into {total:,} items"
            rows.append(import_twice(database, name, _history_bytes(newcomer), client, validate_s))
    return rows


def import_twice(database: str, name: str, raw: bytes, client: Any, validate_s: float) -> ImportRow:
    from app.fhir.ingest import import_bundle

    started = time.perf_counter()
    first = import_bundle(raw, client)
    cold_s = time.perf_counter() - started
    repeats = []
    for _ in range(3):  # the median of three: one import on a busy machine can be far off
        started = time.perf_counter()
        again = import_bundle(raw, client)
        repeats.append(time.perf_counter() - started)
        if again.created or again.updated or again.unchanged != first.created:
            raise RuntimeError(f"{name}: the repeat import was not all unchanged: {again}")
    repeat_s = statistics.median(repeats)
    log(
        f"  {database}, {name}: {first.resources} resources, cold {first.resources / cold_s:,.0f}/s, "
        f"repeat {first.resources / repeat_s:,.0f}/s, validation alone {first.resources / validate_s:,.0f}/s"
    )
    return ImportRow(database, name, first.resources, first.created, cold_s, repeat_s, validate_s)


def _history_bytes(person: Any) -> bytes:
    from app.demo.fhir_bundles import history_bundle

    bundle = history_bundle(person, prefix="bench-import", results=2000, notes=300, years=10, seed=11)
    return json.dumps(bundle).encode()


def import_throughput(grown: int, runs: int) -> list[str]:
    fixtures = fixture_bundles()
    rows: list[ImportRow] = []
    pg = pg_reachable()
    if not pg:
        log("import: PostgreSQL on 127.0.0.1:5432 does not answer: skipped")
    for run in range(runs):  # each run on fresh databases: a cold import happens once per database
        last = run == runs - 1
        with tempfile.TemporaryDirectory() as tmp:
            log(f"import, run {run + 1} of {runs}: SQLite")
            rows += import_throughput_on("SQLite", f"sqlite:///{tmp}/import.sqlite", fixtures, 0)
        if pg:
            url, schema = create_schema()
            try:
                log(f"import, run {run + 1} of {runs}: PostgreSQL (schema {schema})")
                rows += import_throughput_on("PostgreSQL", url, fixtures, grown if last else 0)
            finally:
                drop_schema(schema)
    lines = [
        f"## FHIR import throughput (goal: >= {IMPORT_GOAL:,.0f} resources/s)",
        "",
        "`import_bundle(raw bytes, client)` as POST /fhir calls it, one transaction per bundle. "
        f"Cold: every item new. Repeat: the same bundle again, all unchanged. {runs} run(s) on fresh databases "
        "(a repeat is the median of three imports); seconds are medians over the runs. "
        "Validation alone: fhir.resources validating every entry (part of both). "
        "The last PostgreSQL row imports one more 10-year bundle into a table that already holds copies of the "
        "first one's items from the same source (a region after a while), vacuumed and analysed (last run only).",
        "",
        "| database | bundle | resources | items stored | cold s | cold res/s | cold res/s, each run "
        "| repeat s | repeat res/s | validation alone res/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    keys = list(dict.fromkeys((r.database, r.bundle) for r in rows))
    for key in keys:
        same = [r for r in rows if (r.database, r.bundle) == key]
        r = same[0]
        cold_s = med(x.cold_s for x in same)
        repeat_s = med(x.repeat_s for x in same)
        each = ", ".join(f"{r.resources / x.cold_s:,.0f}" for x in same)
        lines.append(
            f"| {r.database} | {r.bundle} | {r.resources:,} | {r.items:,} | {cold_s:.2f} | {mark(r.resources / cold_s)} "
            f"| {each} | {repeat_s:.2f} | {mark(r.resources / repeat_s)} "
            f"| {r.resources / med(x.validate_s for x in same):,.0f} |"
        )
    if not fixtures:
        lines += ["", f"The Inferno fixtures were not found at {FIXTURES}: only the generated bundle was measured."]
    return [*lines, ""]


def mark(rate: float) -> str:
    return f"{rate:,.0f}" if rate >= IMPORT_GOAL else f"**{rate:,.0f}** (under goal)"


# --- main ---------------------------------------------------------------------------------------


def header() -> list[str]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"

    dirty = " (with uncommitted changes)" if git("status", "--porcelain", "--", "app") else ""
    pg = "?"
    if pg_reachable():
        with suppress(Exception):
            from sqlalchemy import create_engine, text

            engine = create_engine(PG_URL)
            with engine.connect() as conn:
                pg = conn.execute(text("SHOW server_version")).scalar_one()
            engine.dispose()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"# Health record benchmarks, {stamp}",
        "",
        f"Commit {git('rev-parse', '--short', 'HEAD')}{dirty}; Python {platform.python_version()}, "
        f"PostgreSQL {pg}, {os.cpu_count()} CPUs, load average {load()} at the start.",
        "",
    ]


def load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3-second wrk runs, one round")
    parser.add_argument("--rounds", type=int, help="wrk rounds (default 3)")
    parser.add_argument("--seconds", type=int, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32, as bench/run.py)")
    parser.add_argument(
        "--others", type=int, default=1000, help="other patients in the table, ~108 items each (default 1000)"
    )
    parser.add_argument(
        "--grown", type=int, default=25, help="copies of the 10-year bundle's items before the last import (PostgreSQL)"
    )
    parser.add_argument("--import-runs", type=int, help="import runs on fresh databases (default 3, --quick 1)")
    parser.add_argument("--skip-pages", action="store_true")
    parser.add_argument("--no-plans", action="store_true", help="print no query plans on stdout (still in record.md)")
    parser.add_argument("--skip-import", action="store_true")
    parser.add_argument("--explain", action="store_true", help="print every SELECT's plan, not only growing ones")
    parser.add_argument("--no-append", action="store_true", help="do not append to bench/results/record.md")
    args = parser.parse_args()
    seconds = args.seconds or (3 if args.quick else 10)
    rounds = args.rounds or (1 if args.quick else 3)

    with tempfile.TemporaryDirectory() as instance:
        # Before app is imported: Config reads these once. gunicorn inherits them.
        os.environ.update({"VARDE_INSTANCE_PATH": instance, "SECRET_KEY": secrets.token_hex(32)})
        os.environ.pop("REDIS_URL", None)
        lines = header()
        plans: list[str] = []
        if not args.skip_pages:
            page_lines, plans = page_cost(seconds, rounds, args.connections, args.others, args.explain)
            lines += page_lines
        if not args.skip_import:
            lines += import_throughput(args.grown, args.import_runs or (1 if args.quick else 3))
        lines += [f"Load average {load()} at the end (1, 5, 15 minutes; this machine has {os.cpu_count()} CPUs).", ""]
    report = "\n".join(lines)
    print(report)
    if plans and not args.no_plans:
        print("\n".join(["## Query plans", "", *plans]))
    if not args.no_append:
        out = ROOT / "bench" / "results"
        out.mkdir(exist_ok=True)
        with (out / "record.md").open("a") as fh:
            fh.write(report + "\n")
            if plans:
                fh.write("\n".join(["<details><summary>Query plans</summary>", "", *plans, "</details>", "", ""]))


if __name__ == "__main__":
    main()
