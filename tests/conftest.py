"""Test set-up: one app per test session, a clean database per test, standing actors, login_as.

The database is in-memory SQLite by default; with TEST_DATABASE_URL=postgresql+psycopg://… the
suite runs in a private schema of that database (dropped at the end), so parallel runs never meet.
"""

from __future__ import annotations

import contextvars
import re
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask, has_app_context
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import clock, create_app
from app.config import TestConfig
from app.db import db
from tests import factories

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def _postgres_schema_url(url: str) -> tuple[str, str]:
    schema = "t_" + secrets.token_hex(6)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return str(make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)), schema


class IsolatedClient(FlaskClient):
    """Each request runs in its own context, like a real one: its own app context, g and DB session.

    Without this, requests would share the test's app context (and Flask-Login's cached user).
    After the request, the test's own session forgets what it loaded, so it sees the request's writes.
    """

    def open(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        response = contextvars.Context().run(super().open, *args, **kwargs)
        if has_app_context():
            db.session.expire_all()
        return response


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = TestConfig.SQLALCHEMY_DATABASE_URI
    if not url.startswith("postgresql"):
        # A file, as in production (an in-memory database would be one shared connection).
        yield url or f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite'}"
        return
    scoped, schema = _postgres_schema_url(url)
    yield scoped
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def make_test_app(tmp_path: Path, database_url: str, **overrides: object) -> Flask:
    class Config(TestConfig):
        INSTANCE_PATH = str(tmp_path)
        SQLALCHEMY_DATABASE_URI = database_url

    app = create_app(Config)
    app.config.update(overrides)
    app.test_client_class = IsolatedClient
    return app


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Flask]:
    app = make_test_app(tmp_path_factory.mktemp("instance"), database_url)
    with app.app_context():
        db.create_all()
    yield app
    app.extensions["varde.fast_poll"].close_all()
    with app.app_context():
        db.drop_all()
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean(app: Flask) -> Iterator[None]:
    """Each test has an app context of its own, and starts with empty tables and fresh limits."""
    ctx = app.app_context()
    ctx.push()
    yield
    db.session.rollback()
    with db.engine.begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            conn.execute(table.delete())
    db.session.remove()
    app.extensions["varde.login_throttle"].reset()
    app.config["DEMO_MODE"] = False
    ctx.pop()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch):
    """A clock the test moves: ``frozen_clock.advance(minutes=31)``."""

    class Clock:
        def __init__(self) -> None:
            self.now = clock.utcnow()

        def advance(self, **delta: float) -> None:
            self.now += timedelta(**delta)

    c = Clock()
    monkeypatch.setattr(clock, "utcnow", lambda: c.now)
    return c


# --- standing actors (STYLE.md): Kari and her children, Per, Nora, Dr. Lund and Dr. Berg ---------


@pytest.fixture
def kari(app: Flask):
    """Kari Nordmann, 41: a patient with the second factor set up."""
    return factories.patient("Kari", "Nordmann", age=41, username="kari", with_totp=True)


@pytest.fixture
def ola(app: Flask):
    """Ola Nordmann, 8: Kari's son, too young for a login of his own."""
    return factories.PersonFactory(given_name="Ola", family_name="Nordmann", birth_date=factories.birth_for_age(8))


@pytest.fixture
def ingrid(app: Flask):
    """Ingrid Nordmann, 14: Kari's daughter, with a login of her own."""
    return factories.patient("Ingrid", "Nordmann", age=14, username="ingrid", with_totp=True)


@pytest.fixture
def per(app: Flask):
    """Per Hansen, 67: another patient."""
    return factories.patient("Per", "Hansen", age=67, username="per", with_totp=True)


@pytest.fixture
def nora(app: Flask):
    """Nora Berg, 29: a patient who has not set up the second factor yet."""
    return factories.patient("Nora", "Berg", age=29, username="nora", with_totp=False)


@pytest.fixture
def dr_lund(app: Flask):
    return factories.staff("dr.lund", "Dr. Marte Lund")


@pytest.fixture
def dr_berg(app: Flask):
    return factories.staff("dr.berg", "Dr. Henrik Berg")


@pytest.fixture
def login_as(client: FlaskClient):
    """Give the test client a logged-in server-side session for ``user`` (as a finished login would)."""

    def _login(user, c: FlaskClient | None = None) -> str:
        return factories.session_for(user, c or client)

    return _login


def csrf_from(client: FlaskClient, path: str = "/logg-inn") -> str:
    """The CSRF token of the client's session, read from a page as a browser would."""
    response = client.get(path)
    match = CSRF_RE.search(response.get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


@pytest.fixture
def csrf(client: FlaskClient):
    return lambda path="/logg-inn": csrf_from(client, path)


# --- the record: a hospital and its source system -------------------------------------------------


@pytest.fixture
def org(app):
    """St. Olavs hospital, with one care unit."""
    return factories.hospital()


@pytest.fixture
def source(org):
    """The hospital's source system (FHIR client)."""
    return factories.fhir_client(org)[0]


@pytest.fixture
def source_token(org):
    """A source system and its bearer token: (client, token)."""
    return factories.fhir_client(org, "stolav-token")


# --- messages: Kari's GP office and its doctor -------------------------------------------------------


@pytest.fixture
def gp(kari):
    """Lade legesenter, Kari's GP office: it takes messages and answers within 3 working days."""
    unit = factories.message_unit("Lade legesenter")
    factories.gp_of(kari.person, unit)
    return unit


@pytest.fixture
def dr_aune(gp):
    """Dr. Siri Aune, a GP on the office's team."""
    from app.auth.models import Role

    user = factories.staff("fastlege.aune", "Dr. Siri Aune", Role.CLINICIAN)
    factories.member_of(user, gp)
    return user


def answer_as(app: Flask, staff, conversation_id: int, body: str, **fields: str):  # type: ignore[no-untyped-def]
    """``staff`` answers a conversation through the staff page's form (a browser of their own)."""
    staff_client = app.test_client()
    factories.session_for(staff, staff_client)
    token = csrf_from(staff_client, f"/ansatt/meldinger/{conversation_id}")
    return staff_client.post(
        f"/ansatt/meldinger/{conversation_id}/svar",
        data={"csrf_token": token, "body": body, **fields},
        content_type="multipart/form-data",
    )


def write_as(app: Flask, patient, conversation_id: int, body: str):  # type: ignore[no-untyped-def]
    """``patient`` writes again in a conversation through its page (a browser of their own)."""
    patient_client = app.test_client()
    factories.session_for(patient, patient_client)
    token = csrf_from(patient_client, f"/meldinger/{conversation_id}")
    return patient_client.post(
        f"/meldinger/{conversation_id}",
        data={"csrf_token": token, "body": body},
        content_type="multipart/form-data",
    )
