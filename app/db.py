"""The declarative base every model inherits, and column types shared by all domains."""

from __future__ import annotations

import base64
from collections.abc import Collection
from datetime import UTC, datetime
from enum import StrEnum

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import ARRAY, ColumnElement, DateTime, Enum, Integer, MetaData, any_, bindparam
from sqlalchemy.orm import DeclarativeBase, registry
from sqlalchemy.types import TypeDecorator

# Named constraints make Alembic migrations identical on SQLite and PostgreSQL
# and let batch mode drop them again.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC without a zone (SQLite has none) and always returns aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    # Every ``Mapped[datetime]`` column is a UTCDateTime.
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={datetime: UTCDateTime()},
    )


db = SQLAlchemy(model_class=Base)


def one_of(column: ColumnElement[int], ids: Collection[int]) -> ColumnElement[bool]:
    """``column IN (ids)``; on PostgreSQL ``column = ANY(:ids)``, one array parameter. A long IN
    list has a placeholder per id, which psycopg parses in Python for every new length (in the
    push worker's batches of 1,000 that cost more than the query)."""
    if db.engine.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=ARRAY(Integer)))
    return column.in_(ids)


def keyset_token(moment: datetime, row_id: int) -> str:
    """A list page's position in a (time, id) order, as an opaque token for a "show more" URL."""
    raw = f"{moment.isoformat()}|{row_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


# The largest value an integer key can hold (a signed 64-bit BIGINT; SQLite's INTEGER too).
DB_INT_MAX = 2**63 - 1


def keyset_position(token: str | None) -> tuple[datetime, int] | None:
    """The (time with zone, id) a token stands for; None for a missing or forged one (first page)."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        stamp, row_id = raw.rsplit("|", 1)
        when, number = datetime.fromisoformat(stamp), int(row_id)
        return (when, number) if when.tzinfo and 0 <= number <= DB_INT_MAX else None
    except (ValueError, UnicodeDecodeError):
        return None


def now_default() -> datetime:
    """Column default: the current UTC time from app.clock (so tests can move the clock)."""
    from app import clock

    return clock.utcnow()


def str_enum(cls: type[StrEnum]) -> Enum:
    """A portable enum column: stored as its string value in a VARCHAR with no database enum type."""
    return Enum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda e: [m.value for m in e],
    )


def _unicode_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def configure_sqlite(engine: object) -> None:
    """SQLite as a serious database: enforce foreign keys, wait for locks, let readers run during writes."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # SQLite's own lower() folds only ASCII; searches for "Øyvind" or "Ærlig" need all of Unicode
        # (PostgreSQL's lower() already does this).
        dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
