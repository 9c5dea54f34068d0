"""Varde: a patient portal for a health region. ``create_app`` builds the Flask app."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app.config import Config, ensure_secret_file


def create_app(config: type[Config] | dict | None = None) -> Flask:
    """Build the app from a Config class (or a dict of overrides on top of Config)."""
    config_class = config if isinstance(config, type) else Config
    app = Flask(__name__, instance_path=config_class.INSTANCE_PATH, instance_relative_config=True)
    app.config.from_object(config_class)
    if isinstance(config, dict):
        app.config.update(config)
    _fill_generated_settings(app)

    from app.auth import throttle
    from app.auth.sessions import DbSessionInterface
    from app.extensions import babel, csrf, db, htmx, login_manager, migrate
    from app.web.i18n import select_locale

    app.session_interface = DbSessionInterface()
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # A local file cannot go stale: no ping before each checkout (PostgreSQL keeps it).
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**app.config["SQLALCHEMY_ENGINE_OPTIONS"], "pool_pre_ping": False}
    db.init_app(app)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        from app.db import configure_sqlite

        with app.app_context():
            configure_sqlite(db.engine)
    migrate.init_app(app, db, directory=str(Path(app.root_path).parent / "migrations"))
    htmx.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    throttle.init_app(app)
    login_manager.init_app(app)
    login_manager.session_protection = None  # sessions are server-side and rotated at login
    login_manager.login_view = "auth.login"

    from app.web import errors, gate, numbers, security, templating, uploads

    numbers.init_app(app)  # before the blueprints: their rules take the converter when they are made

    # The login gate before CSRF: a form sent after the session ran out goes to login (and back),
    # rather than to "the form has expired".
    gate.init_app(app)
    uploads.init_app(app)  # before CSRF, which reads the form
    csrf.init_app(app)

    if app.config["TRUST_PROXIES"]:
        n = app.config["TRUST_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    _register_models()
    _register_blueprints(app)

    from app.messages.poll import FastPoll

    # The poll for new messages with nothing new is answered before Flask (see its docstring).
    app.wsgi_app = FastPoll(app.wsgi_app, app)  # type: ignore[method-assign]

    from app.access import policy

    policy.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    templating.init_app(app)

    from app import tasks
    from app.cli import register_cli

    tasks.init_app(app)

    register_cli(app)
    if not app.debug and not app.testing:
        logging.basicConfig(level=logging.INFO)
    return app


def _fill_generated_settings(app: Flask) -> None:
    instance = Path(app.instance_path)
    if not app.config.get("SECRET_KEY"):
        import secrets

        app.config["SECRET_KEY"] = ensure_secret_file(instance / "secret_key", lambda: secrets.token_hex(32))
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        instance.mkdir(parents=True, exist_ok=True)
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{instance / 'varde.sqlite'}"
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("postgres://") or uri.startswith("postgresql://"):
        # psycopg 3 is the driver; accept the plain URLs that hosting platforms hand out.
        app.config["SQLALCHEMY_DATABASE_URI"] = "postgresql+psycopg://" + uri.split("://", 1)[1]
    if not app.config.get("MESSAGE_ATTACHMENT_DIR"):
        app.config["MESSAGE_ATTACHMENT_DIR"] = str(instance / "attachments")
    from app.notify import vapid

    vapid.configure(app.config, instance)


def _register_models() -> None:
    # Import every domain's models so metadata (and Alembic autogenerate) sees all tables.
    import app.access.models
    import app.appointments.models
    import app.auth.models
    import app.messages.models
    import app.notify.models
    import app.people.models
    import app.record.models  # noqa: F401


def _register_blueprints(app: Flask) -> None:
    from app.access.routes import bp as proxies_bp
    from app.appointments.routes import bp as appointments_bp
    from app.appointments.staff import bp as appointments_staff_bp
    from app.auth.routes import bp as auth_bp
    from app.fhir.routes import bp as fhir_bp
    from app.messages.routes import bp as messages_bp
    from app.messages.staff import bp as messages_staff_bp
    from app.notify.routes import bp as notify_bp
    from app.people.routes import bp as people_bp
    from app.portal.routes import bp as portal_bp
    from app.pwa.routes import bp as pwa_bp
    from app.record.copies import bp as copies_bp
    from app.record.copies_staff import bp as copies_staff_bp
    from app.record.routes import bp as record_bp
    from app.staff.routes import bp as staff_bp
    from app.web.routes import bp as web_bp

    for bp in (
        proxies_bp,
        appointments_bp,
        appointments_staff_bp,
        auth_bp,
        copies_bp,
        copies_staff_bp,
        fhir_bp,
        messages_bp,
        messages_staff_bp,
        notify_bp,
        people_bp,
        portal_bp,
        pwa_bp,
        record_bp,
        staff_bp,
        web_bp,
    ):
        app.register_blueprint(bp)
