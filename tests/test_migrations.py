"""The migrations build the same schema as the models, and go down to nothing and up again."""

from __future__ import annotations

import secrets

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from app.config import TestConfig
from app.db import db
from tests.conftest import make_test_app


@pytest.fixture
def empty_database(tmp_path):
    url = TestConfig.SQLALCHEMY_DATABASE_URI
    if not url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'migrations.sqlite'}"
        return
    schema = "m_" + secrets.token_hex(6)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def _diff(app):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def test_upgrade_builds_what_the_models_describe_and_downgrade_removes_it(tmp_path, empty_database):
    app = make_test_app(tmp_path, empty_database)
    with app.app_context():
        upgrade()
        tables = set(inspect(db.engine).get_table_names())
        assert {"person", "organisation", "care_unit", "account", "identity", "server_session", "audit_event"} <= tables
        assert _diff(app) == []

        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}

        upgrade()
        assert _diff(app) == []
        db.engine.dispose()
