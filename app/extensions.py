"""Flask extensions, created once here and bound to the app in create_app."""

from __future__ import annotations

from flask import request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf import CSRFProtect
from htmx_flask import Htmx

from app.db import db


def _remote_address() -> str:
    return request.remote_addr or "unknown"


migrate = Migrate(compare_type=True, render_as_batch=True)
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
htmx = Htmx()
# Storage is set in create_app: Redis when REDIS_URL is set, else in-process memory.
limiter = Limiter(key_func=_remote_address, default_limits=[], headers_enabled=False)

__all__ = ["babel", "csrf", "db", "htmx", "limiter", "login_manager", "migrate"]
