"""The poll for new messages, answered before Flask when nothing is new.

An open conversation asks every ``MESSAGE_POLL_SECONDS`` whether anything changed; nearly always
nothing has, and the answer is an empty 204. Through Flask that costs many times a bare route
(the session and its account, CSRF, the language, the security headers). This WSGI layer answers
that case with one SQL statement — the session, its account, the conversation's owner, unit and
revision, and whether the account works in that unit — when the access policy's
``poll_needs_nothing_more`` says it is one of the two plainest grants (the patient's own
conversation; a conversation of the staff member's unit). It reads no health data and writes
nothing: no audit row (nothing is read), no last-seen time (a poll is not the user being active).

Everything else goes on to Flask unchanged, which decides through the policy as for any request:
a changed revision (the thread is read, and audited), a parent acting for a child, an unknown,
ended or expired session (Flask sends to login), another patient's or unit's conversation (404,
audited), anything that fails here.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import DateTime, Engine, Select, bindparam, create_engine, exists, false, func, select

from app import clock
from app.access.policy import ACTING_FOR, poll_needs_nothing_more
from app.auth.models import Role, ServerSession, StaffMembership, User
from app.auth.sessions import _hash
from app.db import configure_sqlite
from app.messages.models import Conversation
from app.web.security import DOWNLOAD_CSP, fixed_headers

POLL_PATH = re.compile(r"^/(ansatt/)?meldinger/(\d{1,18})/nye$")
log = logging.getLogger(__name__)


def _statement(staff_page: bool) -> Select:
    """The session (if not past its idle or absolute timeout), its account, the conversation's
    owner and revision, and (for the staff page) whether the account works in its unit."""
    member = (
        exists().where(StaffMembership.user_id == User.id, StaffMembership.care_unit_id == Conversation.care_unit_id)
        if staff_page
        else false()
    )
    return (
        select(
            ServerSession.data,
            User.id,
            User.role,
            User.active,
            User.person_id,
            Conversation.person_id,
            Conversation.revision,
            member.label("works_in_unit"),
        )
        .join(User, User.id == ServerSession.user_id)
        .join(Conversation, Conversation.id == bindparam("conversation_id"))
        .where(
            ServerSession.id == bindparam("session_id"),
            ServerSession.last_seen_at >= bindparam("idle_cutoff", type_=DateTime()),
            func.coalesce(ServerSession.authenticated_at, ServerSession.created_at)
            >= bindparam("absolute_cutoff", type_=DateTime()),
        )
    )


def _cookie(header: str, name: str) -> str | None:
    """One cookie's value from the Cookie header (Varde's session token is URL-safe base64)."""
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value
    return None


def _revision(query: str) -> int | None:
    key, sep, value = query.partition("=")
    return int(value) if key == "rev" and sep and value.isdigit() and len(value) < 19 else None


class FastPoll:
    def __init__(self, wsgi_app: Callable, app: Flask) -> None:
        self.wsgi_app = wsgi_app
        self.app = app
        self.engine: Engine | None = None
        self.lock = threading.Lock()
        self.statements = {page: _statement(page) for page in (False, True)}
        self.cookie = app.config["SESSION_COOKIE_NAME"]
        self.idle = app.config["SESSION_IDLE_TIMEOUT"]
        self.absolute = app.config["SESSION_ABSOLUTE_TIMEOUT"]
        # What Flask's security hook would add to an empty 204 (app/web/security.py).
        self.headers = [
            ("Cache-Control", "no-store"),
            ("Vary", "Cookie, HX-Request"),
            ("Content-Security-Policy", DOWNLOAD_CSP),
            *fixed_headers(app.config).items(),
        ]
        app.extensions["varde.fast_poll"] = self

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "GET":
            match = POLL_PATH.match(environ.get("PATH_INFO", ""))
            if match is not None and self._nothing_new(environ, match.group(1) is not None, int(match.group(2))):
                start_response("204 No Content", list(self.headers))
                return []
        return self.wsgi_app(environ, start_response)

    def _engine(self) -> Engine:
        """A small pool of its own, in autocommit: a poll is one round trip, without the checkout
        ping and the ROLLBACK on return that the app's pool does for requests that write."""
        if self.engine is None:
            with self.lock:
                if self.engine is None:
                    url = self.app.config["SQLALCHEMY_DATABASE_URI"]
                    sqlite = url.startswith("sqlite")
                    # The app's own connection settings (TLS and the like) apply here too.
                    connect_args = self.app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}).get("connect_args", {})
                    engine = create_engine(
                        url,
                        connect_args=connect_args,
                        isolation_level="AUTOCOMMIT",
                        pool_pre_ping=False,
                        pool_reset_on_return=None,
                        **({} if sqlite else {"pool_size": 2, "max_overflow": 8}),
                    )
                    if sqlite:
                        configure_sqlite(engine)
                    self.sql = {page: self._prepared(engine, page) for page in (False, True)}
                    self.engine = engine
        return self.engine

    def close_all(self) -> None:
        """Close the pool's connections (before the app's engine goes: tests, shutdown)."""
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None

    def _prepared(self, engine: Engine, staff_page: bool) -> tuple[str, tuple[str, ...] | None]:
        """The statement as SQL for this database, and its parameter order if positional."""
        compiled = self.statements[staff_page].compile(dialect=engine.dialect)
        return str(compiled), tuple(compiled.positiontup) if compiled.positional else None

    def _nothing_new(self, environ: dict[str, Any], staff_page: bool, conversation_id: int) -> bool:
        revision = _revision(environ.get("QUERY_STRING", ""))
        token = _cookie(environ.get("HTTP_COOKIE", ""), self.cookie)
        if revision is None or not token or len(token) > 100:
            return False
        now = clock.utcnow().replace(tzinfo=None)  # stored as UTC without a zone
        params = {
            "session_id": _hash(token),
            "conversation_id": conversation_id,
            "idle_cutoff": now - self.idle,
            "absolute_cutoff": now - self.absolute,
        }
        try:
            engine = self._engine()
            sql, order = self.sql[staff_page]
            if order is not None:  # SQLite: positional, and datetimes as it stores them
                values = [params[name] for name in order]
                values = [v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v for v in values]
            connection = engine.raw_connection()
            try:
                cursor = connection.cursor()
                cursor.execute(sql, values if order is not None else params)
                row = cursor.fetchone()
                cursor.close()
            finally:
                connection.close()
        except Exception:  # the whole way through Flask, which reports it properly
            log.exception("fast poll failed; handing the request to Flask")
            return False
        if row is None:
            return False
        data, account_id, role, active, person_id, owner, current, member = row
        if isinstance(data, str):
            data = json.loads(data)
        data = data or {}
        if str(data.get("_user_id")) != str(account_id):
            return False
        allowed = poll_needs_nothing_more(
            role=Role(role),
            active=bool(active),
            person_id=person_id,
            acting_for=data.get(ACTING_FOR),
            conversation_person_id=owner,
            works_in_unit=bool(member),
            staff_page=staff_page,
        )
        return allowed and current == revision
