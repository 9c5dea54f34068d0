"""Settings. Everything comes from the environment; secrets are generated into instance/ when unset.

Every setting is listed in the README. No secret is ever written in the code.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def _list(name: str, default: str) -> list[str]:
    value = os.environ.get(name, default)
    return [part.strip().lower() for part in value.split(",") if part.strip()]


class Config:
    """Production-shaped defaults, read from the environment when the class is built."""

    TESTING = False
    INSTANCE_PATH = os.environ.get("VARDE_INSTANCE_PATH", str(ROOT / "instance"))
    SECRET_KEY: str | None = os.environ.get("SECRET_KEY") or None
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or ""  # default filled in by create_app
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": _bool("VARDE_DB_PRE_PING", True)}
    REDIS_URL = os.environ.get("REDIS_URL") or None

    # Demo mode: synthetic national ids are accepted and demo accounts may skip the second factor.
    DEMO_MODE = _bool("VARDE_DEMO")

    # VAPID key pair for web push. Unset: generated into instance/ on first start.
    VAPID_PRIVATE_KEY = os.environ.get("VAPID_PRIVATE_KEY") or None
    VAPID_PUBLIC_KEY = os.environ.get("VAPID_PUBLIC_KEY") or None
    VAPID_SUBJECT = os.environ.get("VAPID_SUBJECT", "mailto:drift@varde.example")

    # Sessions (server-side, see app/auth/sessions.py).
    SESSION_COOKIE_NAME = "__Host-varde"
    SESSION_IDLE_TIMEOUT = timedelta(minutes=_int("VARDE_SESSION_IDLE_MINUTES", 30))
    SESSION_ABSOLUTE_TIMEOUT = timedelta(hours=_int("VARDE_SESSION_ABSOLUTE_HOURS", 12))
    # One new session in this many also deletes the expired ones (an indexed DELETE).
    SESSION_PRUNE_ONE_IN = _int("VARDE_SESSION_PRUNE_ONE_IN", 200)
    # A pending login (password given, second factor not yet) must finish within this time. Long
    # enough to install an authenticator app from the app store on first login.
    LOGIN_PENDING_TIMEOUT = timedelta(minutes=30)

    # Login rate limits ("N per M minutes/hours", the `limits` notation). Failed attempts count;
    # a successful one is given back. See app/auth/throttle.py for why there are three.
    LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS = os.environ.get(
        "VARDE_LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS", "5 per 15 minutes"
    )
    LOGIN_LIMIT_PER_ACCOUNT = os.environ.get("VARDE_LOGIN_LIMIT_PER_ACCOUNT", "20 per hour")
    LOGIN_LIMIT_PER_ADDRESS = os.environ.get("VARDE_LOGIN_LIMIT_PER_ADDRESS", "50 per 15 minutes")

    # Largest request body accepted, in bytes (attachments get their own limits later).
    MAX_CONTENT_LENGTH = _int("VARDE_MAX_CONTENT_LENGTH", 1024 * 1024)
    MAX_FORM_MEMORY_SIZE = MAX_CONTENT_LENGTH

    # FHIR ingest: largest bundle (bytes and entries) a source system may send to POST /fhir.
    FHIR_MAX_BYTES = _int("VARDE_FHIR_MAX_BYTES", 32 * 1024 * 1024)
    FHIR_MAX_ENTRIES = _int("VARDE_FHIR_MAX_ENTRIES", 20000)

    # Release rules: days a held item waits for the clinician before it is released by itself.
    RELEASE_HOLD_DAYS = _int("VARDE_RELEASE_HOLD_DAYS", 14)
    # Items older than this when they arrive (a history import) are released without an event,
    # so a patient is not notified about years-old results.
    RELEASE_EVENT_MAX_AGE_DAYS = _int("VARDE_RELEASE_EVENT_MAX_AGE_DAYS", 30)

    # Background worker (Huey): Redis when REDIS_URL is set, else a SQLite file in instance/.
    HUEY_IMMEDIATE = _bool("VARDE_HUEY_IMMEDIATE", False)

    # Web push delivery (app/notify/delivery.py).
    PUSH_WAKE_WORKER = _bool("VARDE_PUSH_WAKE_WORKER", True)  # enqueue a send after each commit with pushes
    PUSH_TIMEOUT_SECONDS = _int("VARDE_PUSH_TIMEOUT_SECONDS", 10)  # per request to a push service
    PUSH_CONCURRENCY = _int("VARDE_PUSH_CONCURRENCY", 64)  # requests in flight per worker
    PUSH_BATCH = _int("VARDE_PUSH_BATCH", 1000)  # deliveries claimed at a time
    PUSH_LEASE_SECONDS = _int("VARDE_PUSH_LEASE_SECONDS", 120)  # a crashed worker's claim runs out after this
    PUSH_MAX_ATTEMPTS = _int("VARDE_PUSH_MAX_ATTEMPTS", 8)  # 5xx, timeouts and refusals, then give up
    PUSH_BACKOFF_SECONDS = _int("VARDE_PUSH_BACKOFF_SECONDS", 5)  # first retry; doubles each time, with jitter
    PUSH_BACKOFF_MAX_SECONDS = _int("VARDE_PUSH_BACKOFF_MAX_SECONDS", 3600)
    # A device that has not opened Varde for this long is forgotten (some push services keep
    # answering 201 for subscriptions nobody holds any more).
    PUSH_SUBSCRIPTION_MAX_AGE_DAYS = _int("VARDE_PUSH_SUBSCRIPTION_MAX_AGE_DAYS", 60)
    # The worker POSTs to a subscription's endpoint, so only known push services are accepted
    # (a leading dot: any host under that domain). Chrome/Android, Firefox, Safari, Edge.
    PUSH_SERVICE_HOSTS = _list(
        "VARDE_PUSH_SERVICE_HOSTS",
        "fcm.googleapis.com,updates.push.services.mozilla.com,.push.apple.com,.notify.windows.com",
    )
    # Hosts allowed over plain http (a local push service in tests and benchmarks only).
    PUSH_INSECURE_HOSTS = _list("VARDE_PUSH_INSECURE_HOSTS", "")

    # Appointments (app/appointments/).
    # A patient may cancel or move a time themselves until this many hours before it (a visit type
    # may set its own); after that the page says whom to call.
    APPOINTMENT_CANCEL_CUTOFF_HOURS = _int("VARDE_APPOINTMENT_CANCEL_CUTOFF_HOURS", 24)
    # Earlier-time offers: how many waiting patients one round offers a freed slot to, and how long
    # an offer stays open at most (it is also never open longer than half the time left to the slot).
    APPOINTMENT_OFFER_BATCH = _int("VARDE_APPOINTMENT_OFFER_BATCH", 3)
    APPOINTMENT_OFFER_MAX_MINUTES = _int("VARDE_APPOINTMENT_OFFER_MAX_MINUTES", 120)
    # An offer is not made for a slot closer than this (nobody can get there in time).
    APPOINTMENT_OFFER_MIN_LEAD_MINUTES = _int("VARDE_APPOINTMENT_OFFER_MIN_LEAD_MINUTES", 60)
    # Reminders, in hours before the appointment.
    APPOINTMENT_REMINDER_HOURS = [int(h) for h in _list("VARDE_APPOINTMENT_REMINDER_HOURS", "72,24")]
    # Self-booking shows free times this many days ahead.
    APPOINTMENT_BOOKING_DAYS = _int("VARDE_APPOINTMENT_BOOKING_DAYS", 90)

    # Secure messages (app/messages/).
    MESSAGE_MAX_CHARS = _int("VARDE_MESSAGE_MAX_CHARS", 2000)  # one message's text
    MESSAGE_MAX_ATTACHMENTS = _int("VARDE_MESSAGE_MAX_ATTACHMENTS", 5)  # files per message
    MESSAGE_ATTACHMENT_MAX_BYTES = _int("VARDE_MESSAGE_ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024)  # per file
    # Where attachments are kept (outside the web root). Several servers must share it.
    MESSAGE_ATTACHMENT_DIR = os.environ.get("VARDE_MESSAGE_ATTACHMENT_DIR") or None  # default: instance/attachments
    # A visit or a time at a unit within this many months lets the patient write to it.
    MESSAGE_RELATION_MONTHS = _int("VARDE_MESSAGE_RELATION_MONTHS", 12)
    # Messages one account may send from the patient's side (the `limits` notation).
    MESSAGE_LIMIT_PER_ACCOUNT = os.environ.get("VARDE_MESSAGE_LIMIT_PER_ACCOUNT", "20 per hour")
    # How often an open conversation page asks whether anything is new, in seconds.
    MESSAGE_POLL_SECONDS = _int("VARDE_MESSAGE_POLL_SECONDS", 15)

    # Relatives. From what age a young person may log in themselves with limited content (12 at
    # the earliest, as § 3-4 lets parents see everything before); "" or "off": only from 16.
    YOUTH_OWN_ACCESS_FROM_AGE = (
        None
        if os.environ.get("VARDE_YOUTH_OWN_ACCESS_FROM_AGE", "12").strip().lower() in ("", "off")
        else max(12, _int("VARDE_YOUTH_OWN_ACCESS_FROM_AGE", 12))
    )
    # How long a one-time code for a proxy works, in days.
    PROXY_CODE_DAYS = _int("VARDE_PROXY_CODE_DAYS", 7)
    # The legal deadline for answering a request for a copy of the record (pbrl. § 5-1), in days.
    COPY_REQUEST_DAYS = _int("VARDE_COPY_REQUEST_DAYS", 30)

    # Number of reverse proxies in front of Varde whose X-Forwarded-* headers are trusted.
    TRUST_PROXIES = _int("VARDE_TRUST_PROXIES", 0)

    # HSTS max-age in seconds (two years).
    HSTS_MAX_AGE = _int("VARDE_HSTS_MAX_AGE", 63072000)

    # Static URLs carry a content hash (app/web/assets.py), so browsers may keep them for a year.
    SEND_FILE_MAX_AGE_DEFAULT = 31536000

    BABEL_DEFAULT_LOCALE = "nb"
    BABEL_DEFAULT_TIMEZONE = "Europe/Oslo"
    LANGUAGES = {"nb": "Norsk bokmål", "en": "English"}

    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session, which has its own timeouts
    WTF_CSRF_HEADERS = ["X-CSRFToken"]

    # argon2id parameters (RFC 9106 "second recommended option" is the argon2-cffi default).
    ARGON2_TIME_COST = _int("VARDE_ARGON2_TIME_COST", 3)
    ARGON2_MEMORY_COST = _int("VARDE_ARGON2_MEMORY_COST", 65536)


class TestConfig(Config):
    """Fast, isolated and deterministic: a temporary SQLite file unless TEST_DATABASE_URL is set."""

    TESTING = True
    DEMO_MODE = False
    SECRET_KEY = "test-only-" + secrets.token_hex(16)
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL", "")  # "": a SQLite file per test run
    REDIS_URL = None
    ARGON2_TIME_COST = 1
    ARGON2_MEMORY_COST = 1024
    HUEY_IMMEDIATE = True
    PUSH_WAKE_WORKER = False  # tests run the sender themselves
    PUSH_INSECURE_HOSTS = ["127.0.0.1"]  # the tests' own push service
    PUSH_TIMEOUT_SECONDS = 2


def ensure_secret_file(path: Path, make: callable) -> str:
    """Read a generated secret from instance/, creating it atomically on first start."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker won the race: use its value
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value
