"""Benchmarks for the foundation issue, each side by side with its baseline in the same run.

1. Weight: the first load of the overview page in Debian's chromium with an empty cache, counting
   every byte the server sent (HTML, CSS, JS, icons, manifest, service worker and what it
   precaches), raw and gzip-compressed (as the reverse proxy sends it). Budget: 60 KB compressed.
2. Throughput: the overview page (logged in, SQLite and PostgreSQL) and a hello-world Flask route,
   each under gunicorn with 2 sync workers, `wrk -t2 -c32 -d10s`, alternating, two rounds.
   Goal: at least 0.25 of the hello-world rate.
3. The health-record benchmarks of bench/record.py (page cost against history, FHIR import
   throughput), run in a process of their own; they also append to bench/results/record.md.
4. The push benchmarks of bench/push.py (delivery throughput against openssl's two-process ECDH
   rate, event-to-push latency with the worker running), in a process of their own; they also
   append to bench/results/push.md and write bench/results/push.json.
5. The appointments benchmarks of bench/appointments.py (cancellation to offers written against a
   trivial transaction, the free-slot search page against the overview), in a process of their own;
   they also append to bench/results/appointments.md and write bench/results/appointments.json.
6. The secure-messages benchmarks of bench/messages.py (the conversation list and a staff inbox
   against the overview, the poll with nothing new against a hello-world route), in a process of
   their own; they also append to bench/results/messages.md and write bench/results/messages.json.

    make bench        (or: .venv/bin/python bench/run.py [--quick])
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_database(env: dict[str, str]) -> str:
    """Migrate, add one patient with a logged-in session; return the session cookie value."""
    code = r"""
import hashlib, secrets, sys
from flask_migrate import upgrade
from app import create_app, clock
from app.db import db
from app.auth.models import ServerSession
from app.auth.services import create_local_user
from app.people.models import Person
from datetime import date
app = create_app()
with app.app_context():
    upgrade()
    person = Person(national_id="02016126007", given_name="Kari", family_name="Nordmann", birth_date=date(1961, 1, 2))
    user = create_local_user(username=person.national_id, password="bench-only", display_name="Kari Nordmann", person=person)
    db.session.commit()
    token = secrets.token_urlsafe(32)
    now = clock.utcnow()
    db.session.add(ServerSession(id=hashlib.sha256(token.encode()).hexdigest(), user_id=user.id,
        data={"_user_id": str(user.id), "_fresh": True}, created_at=now, authenticated_at=now, last_seen_at=now))
    db.session.commit()
    print(token)
"""
    out = subprocess.run(
        [str(BIN / "python"), "-c", code], env=env, cwd=ROOT, check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1]


class Gunicorn:
    def __init__(self, target: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "-w",
                "2",
                "-k",
                "sync",
                "-b",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "warning",
                target,
            ],
            cwd=ROOT,
            env=env,
        )
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"gunicorn {target} did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def wrk(url: str, seconds: int, cookie: str | None = None) -> tuple[float, float]:
    cmd = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", url]
    if cookie:
        cmd[1:1] = ["-H", f"Cookie: __Host-varde={cookie}"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"{url}: {non2xx.group(1)} error responses\n{out}")
    return rps, p99_ms


def throughput(seconds: int, rounds: int) -> list[tuple[str, float, float]]:
    if not shutil.which("wrk"):
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return []
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = {**os.environ, "VARDE_INSTANCE_PATH": tmp, "SECRET_KEY": secrets.token_hex(32), "FLASK_APP": "wsgi"}
        servers = {"hello-world Flask route": (Gunicorn("bench.hello:app", base), None)}
        sqlite_env = {**base, "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite"}
        servers["overview, SQLite"] = (Gunicorn("wsgi:app", sqlite_env), prepare_database(sqlite_env))
        pg_schema = None
        try:
            socket.create_connection(("127.0.0.1", 5432), 1).close()
            pg_schema = "bench_" + secrets.token_hex(4)
            subprocess.run(
                ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc", f"CREATE SCHEMA {pg_schema}"],
                check=True,
            )
            pg_env = {**base, "DATABASE_URL": f"{PG_URL}?options=-csearch_path%3D{pg_schema}"}
            cookie = prepare_database(pg_env)
            servers["overview, PostgreSQL"] = (Gunicorn("wsgi:app", pg_env), cookie)
        except OSError:
            print("PostgreSQL not reachable: the PostgreSQL row is skipped", file=sys.stderr)
        try:
            for server, cookie in servers.values():  # warm up
                wrk(f"http://127.0.0.1:{server.port}/", 2, cookie)
            for _ in range(rounds):
                for name, (server, cookie) in servers.items():
                    rps, p99 = wrk(f"http://127.0.0.1:{server.port}/", seconds, cookie)
                    rows.append((name, rps, p99))
        finally:
            for server, _cookie in servers.values():
                server.stop()
            if pg_schema:
                subprocess.run(
                    [
                        "psql",
                        "-h",
                        "127.0.0.1",
                        "-U",
                        "postgres",
                        "-d",
                        "test",
                        "-qc",
                        f"DROP SCHEMA {pg_schema} CASCADE",
                    ],
                    check=False,
                )
    return rows


def first_load_weight() -> list[tuple[str, int, int]]:
    """Every response the server sends while chromium loads the overview for the first time."""
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from tests.browser.conftest import CHROMIUM, FLAGS, PHONE

    sent: list[tuple[str, int, int]] = []

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update({"VARDE_INSTANCE_PATH": tmp, "DATABASE_URL": f"sqlite:///{tmp}/weight.sqlite"})
        env = {**os.environ, "SECRET_KEY": secrets.token_hex(32)}
        os.environ["SECRET_KEY"] = env["SECRET_KEY"]
        cookie = prepare_database(env)
        from app import create_app

        app = create_app()

        def recorder(environ, start_response):
            path = environ.get("PATH_INFO", "")
            chunks = []
            for chunk in app(environ, start_response):
                chunks.append(chunk)
            body = b"".join(chunks)
            # What a compressing proxy sends: gzip for text, images as they are (never larger).
            sent.append((path, len(body), min(len(body), len(gzip.compress(body, 6)))))
            return [body]

        server = make_server("127.0.0.1", 0, recorder, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        origin = f"http://127.0.0.1:{server.server_port}"
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                str(Path(tmp) / "profile"), executable_path=CHROMIUM, args=FLAGS, viewport=PHONE, locale="nb-NO"
            )
            context.add_cookies(
                [
                    {
                        "name": "__Host-varde",
                        "value": cookie,
                        "domain": "127.0.0.1",
                        "path": "/",
                        "secure": True,
                        "httpOnly": True,
                        "sameSite": "Lax",
                    }
                ]
            )
            page = context.pages[0]
            page.goto(origin + "/", wait_until="networkidle")
            page.evaluate("navigator.serviceWorker.ready")
            page.wait_for_timeout(1500)  # the manifest icon and the precache
            context.close()
        server.shutdown()
    return sent


def record_benchmarks(quick: bool) -> list[str]:
    """bench/record.py (the health-record issue) in a process of its own; its report one heading level down."""
    cmd = [sys.executable, str(ROOT / "bench" / "record.py"), "--no-plans", *(["--quick"] if quick else [])]
    out = subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True, timeout=1800).stdout
    return ["#" + line if line.startswith("#") else line for line in out.strip().splitlines()]


def push_benchmarks(quick: bool) -> list[str]:
    """bench/push.py (the push-notification issue) in a process of its own; its report one heading level down."""
    cmd = [sys.executable, str(ROOT / "bench" / "push.py"), *(["--quick"] if quick else [])]
    out = subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True, timeout=1800).stdout
    return ["#" + line if line.startswith("#") else line for line in out.strip().splitlines()]


def appointments_benchmarks(quick: bool) -> list[str]:
    """bench/appointments.py (the appointments issue) in a process of its own; its report one heading level down."""
    cmd = [sys.executable, str(ROOT / "bench" / "appointments.py"), *(["--quick"] if quick else [])]
    out = subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True, timeout=1800).stdout
    return ["#" + line if line.startswith("#") else line for line in out.strip().splitlines()]


def messages_benchmarks(quick: bool) -> list[str]:
    """bench/messages.py (the secure-messages issue) in a process of its own; its report one heading level down."""
    cmd = [sys.executable, str(ROOT / "bench" / "messages.py"), *(["--quick"] if quick else [])]
    out = subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True, timeout=1800).stdout
    return ["#" + line if line.startswith("#") else line for line in out.strip().splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="3-second runs, one round")
    args = parser.parse_args()
    seconds, rounds = (3, 1) if args.quick else (10, 2)

    lines = ["# Varde benchmarks", ""]
    sent = first_load_weight()
    raw, packed = sum(r for _, r, _ in sent), sum(g for _, _, g in sent)
    lines += [
        "## First load of the overview page (budget: 60 KB compressed)",
        "",
        "| path | bytes | gzip |",
        "|---|---:|---:|",
    ]
    lines += [f"| {path} | {r} | {g} |" for path, r, g in sent]
    lines += [f"| **total ({len(sent)} responses)** | **{raw}** | **{packed}** ({packed / 1024:.1f} KB) |", ""]

    rows = throughput(seconds, rounds)
    if rows:
        hello = [rps for name, rps, _ in rows if name.startswith("hello")]
        lines += ["## Throughput: gunicorn, 2 sync workers, wrk -t2 -c32 (goal: ≥ 0.25 × hello-world)", ""]
        lines += ["| run | req/s | p99 ms | × hello-world (same round) |", "|---|---:|---:|---:|"]
        per_round = len(rows) // rounds
        for i, (name, rps, p99) in enumerate(rows):
            baseline = hello[i // per_round]
            lines.append(f"| {name} | {rps:,.0f} | {p99:.1f} | {rps / baseline:.2f} |")
    lines += ["", *record_benchmarks(args.quick)]
    lines += ["", *push_benchmarks(args.quick)]
    lines += ["", *appointments_benchmarks(args.quick)]
    lines += ["", *messages_benchmarks(args.quick)]
    report = "\n".join(lines)
    print(report)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.md").write_text(report + "\n")


if __name__ == "__main__":
    main()
