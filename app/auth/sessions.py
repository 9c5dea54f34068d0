"""Server-side sessions in the database.

The cookie carries a random 256-bit token; the table stores only its SHA-256, so a copy of the
database holds no usable cookie. Logout, revocation and timeouts delete the row, after which
the old cookie is worth nothing. Idle and absolute timeouts are checked on every request.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy import Executable, Select, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import joinedload
from werkzeug.datastructures import CallbackDict

from app import clock
from app.auth.models import ServerSession, User
from app.db import db

# Writing last_seen_at on every request would make every page view a write; a minute is precise
# enough for a 30-minute idle timeout.
TOUCH_INTERVAL = timedelta(seconds=60)

# Paths that never need a session: assets, the service worker, the manifest.
SESSIONLESS_PREFIXES = ("/static/", "/sw.js", "/manifest.webmanifest", "/healthz")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class DbSession(CallbackDict, SessionMixin):
    """A dict that remembers whether it changed, plus what the interface needs to save it."""

    def __init__(self, initial: dict[str, Any] | None = None, token: str | None = None) -> None:
        def on_update(self: DbSession) -> None:
            self.modified = True

        super().__init__(initial or {}, on_update)
        self.token = token
        self.modified = False
        self.rotate = False
        self.ended = False
        # A request the page made by itself (a poll for new messages) is not the user being
        # active: it must not keep an unattended session alive.
        self.passive = False
        self.user_id: int | None = None
        self.user: User | None = None  # loaded with the session; Flask-Login's user_loader uses it
        self.last_seen_at: datetime | None = None
        self.unread_notifications: int | None = None  # the bell's count, loaded with the session

    @property
    def new(self) -> bool:  # type: ignore[override]
        return self.token is None

    def regenerate(self) -> None:
        """Give the session a new id (at login), keeping its data. The old id stops working."""
        self.rotate = True
        self.modified = True

    def end(self) -> None:
        """Delete the session for real (logout)."""
        self.clear()
        self.ended = True


class NullSession(DbSession):
    """For asset requests: never loaded, never saved."""


@cache
def _session_query() -> Select:
    """One query brings the session, its account, the account's person and the bell's unread
    count: every page needs all four.

    Built once; SQLAlchemy then reuses the compiled statement.
    """
    from app.notify.models import Notification

    unread = (
        select(func.count(Notification.id))
        .where(Notification.account_id == ServerSession.user_id, Notification.read_at.is_(None))
        .correlate(ServerSession)
        .scalar_subquery()
        .label("unread_notifications")
    )
    return (
        select(ServerSession.__table__, unread, User)
        .outerjoin(User, User.id == ServerSession.user_id)
        .options(joinedload(User.person))
        .where(ServerSession.id == bindparam("sid"))
    )


class DbSessionInterface(SessionInterface):
    def open_session(self, app: Flask, request: Request) -> DbSession:
        if request.path.startswith(SESSIONLESS_PREFIXES):
            return NullSession()
        token = request.cookies.get(app.config["SESSION_COOKIE_NAME"])
        if not token or len(token) > 100:
            return DbSession()
        found = db.session.execute(_session_query(), {"sid": _hash(token)}).first()
        if found is None:
            return DbSession()
        row, user = found, found[-1]
        now = clock.utcnow()
        last_seen = row.last_seen_at
        idle_expired = last_seen + app.config["SESSION_IDLE_TIMEOUT"] < now
        started = row.authenticated_at or row.created_at
        absolute_expired = started + app.config["SESSION_ABSOLUTE_TIMEOUT"] < now
        if idle_expired or absolute_expired:
            _write(delete(ServerSession).where(ServerSession.id == row.id))
            session = DbSession()
            session.expired = True  # lets the login page say why
            return session
        session = DbSession(dict(row.data or {}), token=token)
        session.user_id = row.user_id
        session.user = user
        session.last_seen_at = last_seen
        session.unread_notifications = row.unread_notifications
        return session

    def save_session(self, app: Flask, session: DbSession, response: Response) -> None:  # type: ignore[override]
        if isinstance(session, NullSession):
            return
        name = app.config["SESSION_COOKIE_NAME"]
        now = clock.utcnow()
        if session.ended:
            if session.token:
                _write(delete(ServerSession).where(ServerSession.id == _hash(session.token)))
            response.delete_cookie(name, path="/", secure=True, httponly=True, samesite="Lax")
            return
        if session.new and not session.modified:
            return
        if session.new or session.rotate:
            token = secrets.token_urlsafe(32)
            user_id = _int_or_none(session.get("_user_id"))
            statements = [
                insert(ServerSession).values(
                    id=_hash(token),
                    user_id=user_id,
                    data=dict(session),
                    created_at=now,
                    authenticated_at=now if user_id else None,
                    last_seen_at=now,
                    ip=_client_ip(),
                    user_agent=_user_agent(),
                )
            ]
            if session.token:  # rotation: the old id stops working in the same transaction
                statements.insert(0, delete(ServerSession).where(ServerSession.id == _hash(session.token)))
            _write(*statements)
            session.token = token
            self._set_cookie(app, response, token)
            if secrets.randbelow(app.config["SESSION_PRUNE_ONE_IN"]) == 0:
                # Now and then, clear out sessions past their idle timeout (visitors who left
                # the login page, browsers closed without logging out). Cheap: an indexed delete.
                prune_expired(app)
            return
        values: dict[str, Any] = {}
        if session.modified:
            values["data"] = dict(session)
            user_id = _int_or_none(session.get("_user_id"))
            if user_id != session.user_id:
                values["user_id"] = user_id
                values["authenticated_at"] = now if user_id else None
        if session.modified or (
            not session.passive and (session.last_seen_at is None or now - session.last_seen_at > TOUCH_INTERVAL)
        ):
            values["last_seen_at"] = now
        if values:
            _write(update(ServerSession).where(ServerSession.id == _hash(session.token)).values(**values))

    def _set_cookie(self, app: Flask, response: Response, token: str) -> None:
        # No Max-Age: a session cookie, gone when the browser closes; the server enforces timeouts.
        response.set_cookie(
            app.config["SESSION_COOKIE_NAME"],
            token,
            path="/",
            secure=True,
            httponly=True,
            samesite="Lax",
        )


def _write(*statements: Executable) -> None:
    """Session writes go in a transaction of their own, never mixed into the request's unit of work."""
    with db.engine.begin() as conn:
        for statement in statements:
            conn.execute(statement)


def revoke_sessions(user_id: int, *, except_token: str | None = None) -> int:
    """End every session of a user (except, optionally, the caller's own). Returns how many."""
    stmt = delete(ServerSession).where(ServerSession.user_id == user_id)
    if except_token:
        stmt = stmt.where(ServerSession.id != _hash(except_token))
    result = db.session.execute(stmt)
    return result.rowcount or 0


def revoke_session(user_id: int, session_id: str) -> bool:
    """End one session of this user, by its stored id. False if there was none."""
    result = db.session.execute(
        delete(ServerSession).where(ServerSession.user_id == user_id, ServerSession.id == session_id)
    )
    return bool(result.rowcount)


def sessions_of(user_id: int) -> list[ServerSession]:
    return list(
        db.session.scalars(
            select(ServerSession).where(ServerSession.user_id == user_id).order_by(ServerSession.last_seen_at.desc())
        )
    )


def current_session_id(session: DbSession) -> str | None:
    return _hash(session.token) if session.token else None


def prune_expired(app: Flask) -> int:
    """Delete sessions past their idle timeout (run from the worker or `flask sessions prune`)."""
    cutoff = clock.utcnow() - app.config["SESSION_IDLE_TIMEOUT"]
    with db.engine.begin() as conn:
        return conn.execute(delete(ServerSession).where(ServerSession.last_seen_at < cutoff)).rowcount or 0


def _int_or_none(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _client_ip() -> str | None:
    from flask import request

    return request.remote_addr


_BROWSERS = (
    ("Edg/", "Edge"),
    ("SamsungBrowser", "Samsung Internet"),
    ("Firefox", "Firefox"),
    ("Chrome", "Chrome"),
    ("Safari", "Safari"),
)
_PLATFORMS = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("Windows", "Windows"),
    ("Mac OS X", "Mac"),
    ("Linux", "Linux"),
)


def device_label(ua: str) -> str | None:
    """A language-neutral label for a device list ("Chrome · Android"), from the User-Agent."""
    browser = next((name for key, name in _BROWSERS if key in ua), None)
    platform = next((name for key, name in _PLATFORMS if key in ua), None)
    if browser and platform:
        return f"{browser} · {platform}"
    return browser or platform


def _user_agent() -> str | None:
    from flask import request

    return device_label(request.headers.get("User-Agent", ""))
