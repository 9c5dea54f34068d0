"""Login (password, then a second factor), enrolment of the authenticator app, logout."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, current_app, flash, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from sqlalchemy.orm import joinedload

from app import clock
from app.access.services import audit
from app.auth import services
from app.auth.forms import CodeForm, EmptyForm, LoginForm, RecoveryForm
from app.auth.models import IdentityProvider, User
from app.auth.throttle import throttle
from app.db import db
from app.extensions import login_manager
from app.web import htmx

bp = Blueprint("auth", __name__)


def _address() -> str:
    return request.remote_addr or "unknown"


def _check_throttle(account: str) -> None:
    """Refuse (429) before doing anything when the account or address has failed too often."""
    if not throttle().allowed(account, _address()):
        abort(429)


def _record_failure(account: str) -> None:
    throttle().failed(account, _address())


def safe_next(target: str | None, *, allow_login_pages: bool = False) -> str | None:
    """Only a path on this site; never another host, and (unless allowed) not back to the login pages."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if not allow_login_pages and parts.path.startswith(("/logg-inn", "/logg-ut", "/logget-ut")):
        return None
    return target


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    preloaded = getattr(session, "user", None)  # the session interface loaded it with the session
    if preloaded is not None and preloaded.id == int(user_id):
        return preloaded if preloaded.is_active else None
    user = db.session.get(User, int(user_id), options=[joinedload(User.person)])
    return user if user and user.is_active else None


@login_manager.unauthorized_handler
def unauthorized() -> Response:
    """Not logged in (or the session ran out): to login, and back to what was asked for after."""
    expired = 1 if getattr(session, "expired", False) else None
    if htmx.is_htmx():
        # The fragment's own URL is no page to land on: come back to the page the user was on.
        current = htmx.current_url()
        back = None
        if current:
            parts = urlsplit(current)
            back = parts.path + (f"?{parts.query}" if parts.query else "")
        response = htmx.redirect_to(url_for("auth.login", next=safe_next(back), utlopt=expired))
        response.status_code = 401
        return response
    target = request.full_path if request.query_string else request.path
    return htmx.redirect_to(url_for("auth.login", next=safe_next(target), utlopt=expired))


def _pending_user() -> User | None:
    pending = session.get("pending") or {}
    uid, started = pending.get("uid"), pending.get("at")
    if not uid or not started:
        return None
    if clock.utcnow() - datetime.fromisoformat(started) > current_app.config["LOGIN_PENDING_TIMEOUT"]:
        session.pop("pending", None)
        return None
    user = db.session.get(User, uid)
    return user if user and user.is_active else None


def _complete_login(user: User, method: str) -> Response:
    next_url = safe_next((session.get("pending") or {}).get("next"))
    session.pop("pending", None)
    session.pop("enrol_secret", None)
    session.regenerate()  # a new session id at login: a planted id is worth nothing
    login_user(user)
    now = clock.utcnow()
    user.last_login_at = now
    for identity in user.identities:
        if identity.provider is IdentityProvider.LOCAL:
            identity.last_used_at = now
    audit("login", actor_user_id=user.id, subject_person_id=user.person_id, object_type="auth", object_id=method)
    db.session.commit()
    default = url_for("staff.home") if user.is_staff and "staff.home" in current_app.view_functions else None
    return htmx.redirect_to(next_url or default or url_for("portal.overview"))


@bp.route("/logg-inn", methods=["GET", "POST"])
def login() -> Response:
    if current_user.is_authenticated:
        return htmx.redirect_to(safe_next(request.args.get("next")) or url_for("portal.overview"))
    form = LoginForm()
    next_url = safe_next(request.values.get("next"))
    expired = bool(getattr(session, "expired", False)) or request.args.get("utlopt") == "1"
    if request.method == "POST":
        account = "user:" + services.normalise_username(request.form.get("username", ""))
        _check_throttle(account)
        if not form.validate():
            _record_failure(account)
            return htmx.render("auth/login.html", form=form, next_url=next_url, status=400)
        user = services.check_password(form.username.data, form.password.data)
        if user is None:
            _record_failure(account)
            audit("login_failed", actor_user_id=None, object_type="auth", object_id="password", outcome="denied")
            db.session.commit()
            form.password.errors.append(_("Fødselsnummeret/brukernavnet eller passordet er feil. Sjekk og prøv igjen."))
            return htmx.render("auth/login.html", form=form, next_url=next_url, status=401)
        session["pending"] = {"uid": user.id, "at": clock.utcnow().isoformat(), "next": next_url}
        if current_app.config["DEMO_MODE"] and user.is_demo:
            return _complete_login(user, "password+demo")
        db.session.commit()  # a rehashed password is kept
        if user.has_second_factor:
            return htmx.redirect_to(url_for("auth.second_factor"))
        return htmx.redirect_to(url_for("auth.enroll"))
    return htmx.render("auth/login.html", form=form, next_url=next_url, expired=expired)


@bp.route("/logg-inn/kode", methods=["GET", "POST"])
def second_factor() -> Response:
    user = _pending_user()
    if user is None or not user.has_second_factor:
        flash(_("Innloggingen tok for lang tid. Logg inn på nytt."), "info")
        return htmx.redirect_to(url_for("auth.login"))
    form, recovery = CodeForm(prefix="totp"), RecoveryForm(prefix="rc")
    use_recovery = request.values.get("reserve") == "1"
    if request.method == "POST":
        account = f"code:{user.id}"
        _check_throttle(account)
        active = recovery if use_recovery else form
        if not active.validate():
            _record_failure(account)
            return htmx.render("auth/code.html", form=form, recovery=recovery, use_recovery=use_recovery, status=400)
        if use_recovery:
            ok = services.use_recovery_code(user, recovery.recovery_code.data)
            method = "recovery_code"
        else:
            step = services.verify_totp(user.totp_secret or "", form.code.data, user.totp_last_step)
            ok = step is not None
            if ok:
                user.totp_last_step = step
            method = "totp"
        if ok:
            return _complete_login(user, method)
        _record_failure(account)
        audit("login_failed", actor_user_id=user.id, object_type="auth", object_id=method, outcome="denied")
        db.session.commit()
        field = recovery.recovery_code if use_recovery else form.code
        field.errors = [
            _("Reservekoden er feil eller brukt før. Sjekk og prøv igjen.")
            if use_recovery
            else _("Koden er feil eller utløpt. Skriv inn koden som vises i appen nå.")
        ]
        return htmx.render("auth/code.html", form=form, recovery=recovery, use_recovery=use_recovery, status=401)
    return htmx.render("auth/code.html", form=form, recovery=recovery, use_recovery=use_recovery)


@bp.route("/logg-inn/ny-kode", methods=["GET", "POST"])
def enroll() -> Response:
    """First login: connect an authenticator app by QR code. Mandatory for every account."""
    user = _pending_user()
    if user is None or user.has_second_factor:
        flash(_("Innloggingen tok for lang tid. Logg inn på nytt."), "info")
        return htmx.redirect_to(url_for("auth.login"))
    secret = session.get("enrol_secret")
    if not secret:
        secret = session["enrol_secret"] = services.new_totp_secret()
    account = user.display_name
    uri = services.totp_uri(secret, account)
    form = CodeForm()
    context = {"form": form, "qr_svg": services.totp_qr_svg(uri), "secret": secret}
    if request.method == "POST":
        account = f"code:{user.id}"
        _check_throttle(account)
        if not form.validate():
            _record_failure(account)
            return htmx.render("auth/enroll.html", status=400, **context)
        step = services.verify_totp(secret, form.code.data, None)
        if step is None:
            _record_failure(account)
            form.code.errors = [_("Koden stemmer ikke. Skriv inn koden som vises i appen nå, og prøv igjen.")]
            return htmx.render("auth/enroll.html", status=401, **context)
        codes = services.enable_totp(user, secret, step)
        audit("second_factor_enabled", actor_user_id=user.id, subject_person_id=user.person_id, object_type="auth")
        session["fresh_recovery_codes"] = codes
        session["pending"]["next"] = url_for("auth.recovery_codes", next=session["pending"].get("next"))
        return _complete_login(user, "totp_enrolled")
    return htmx.render("auth/enroll.html", **context)


@bp.route("/reservekoder", methods=["GET", "POST"])
def recovery_codes() -> Response:
    """Show new recovery codes once (after enrolment, or when the user asks for new ones)."""
    if request.method == "POST":
        form = EmptyForm()
        if form.validate():
            codes = services.new_recovery_codes(current_user)
            audit("recovery_codes_renewed", actor_user_id=current_user.id, object_type="auth")
            db.session.commit()
            session["fresh_recovery_codes"] = codes
        return htmx.redirect_to(url_for("auth.recovery_codes"))
    codes = session.pop("fresh_recovery_codes", None)
    next_url = safe_next(request.args.get("next")) or url_for("portal.overview")
    return htmx.render("auth/recovery_codes.html", codes=codes, next_url=next_url)


@bp.route("/logg-ut", methods=["POST"])
def logout() -> Response:
    if current_user.is_authenticated:
        audit("logout", actor_user_id=current_user.id, subject_person_id=current_user.person_id, object_type="auth")
        db.session.commit()
        logout_user()
    session.end()
    return htmx.redirect_to(url_for("auth.logged_out"))


@bp.route("/logget-ut")
def logged_out() -> Response:
    return htmx.render("auth/logged_out.html")
