"""Login (password, then a second factor), enrolment of the authenticator app, logout."""

from __future__ import annotations

import secrets
from datetime import datetime
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, current_app, flash, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from sqlalchemy.orm import joinedload

from app import clock
from app.access.services import audit
from app.auth import services
from app.auth.forms import CodeForm, LoginForm, RecoveryForm
from app.auth.models import IdentityProvider, Role, User
from app.auth.throttle import Attempt, throttle
from app.db import db
from app.extensions import login_manager
from app.web import htmx

bp = Blueprint("auth", __name__)


def _address() -> str:
    return request.remote_addr or "unknown"


def _attempt(account: str) -> Attempt:
    """Count a login step before checking anything; refuse (429) when too many have failed."""
    attempt = throttle().attempt(account, _address())
    if not attempt.allowed:
        abort(429)
    return attempt


def safe_next(target: str | None, *, allow_login_pages: bool = False) -> str | None:
    """Only a path on this site; never another host, and (unless allowed) not back to the login pages."""
    if not target or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return None  # a line break would split the Location header
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
    response = htmx.redirect_to(url_for("auth.login", next=safe_next(htmx.page_path()), utlopt=expired))
    if htmx.is_htmx():
        response.status_code = 401
    return response


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


def _finish_login(user: User, method: str) -> str:
    """Log the user in for real (new session id, audit row) and return where they should land."""
    next_url = safe_next((session.get("pending") or {}).get("next"))
    session.pop("pending", None)
    session.pop("enrol_secret", None)
    session.pop("csrf_token", None)  # a token seen before login is worth nothing after it
    session.regenerate()  # a new session id at login: a planted id is worth nothing
    login_user(user)
    now = clock.utcnow()
    user.last_login_at = now
    if user.locale is None:
        # Pushes are written in the account's language: until the user chooses one, the language
        # the browser asked for at login (what the pages and the service worker show too).
        user.locale = str(get_locale())
    for identity in user.identities:
        if identity.provider is IdentityProvider.LOCAL:
            identity.last_used_at = now
    audit("login", actor_user_id=user.id, subject_person_id=user.person_id, object_type="auth", object_id=method)
    db.session.commit()
    default = url_for("staff.home") if user.is_staff and "staff.home" in current_app.view_functions else None
    # Opening the app (its start address, or the overview after the session ended) is no
    # particular page: someone who may see others' records chooses whose first.
    if (next_url is None or urlsplit(next_url).path == url_for("portal.overview")) and default is None:
        from app.access import policy

        if len(policy.switchable_people(user)) > 1:
            return url_for("portal.choose")  # a parent or proxy chooses whose record first
    return next_url or default or url_for("portal.overview")


def _own_login_age_missing(user: User) -> int | None:
    """For a patient account whose person may not log in themselves yet (``policy.own_grant``:
    under 12, or under 16 where the region has no youth access): the age they may from. None for
    everyone else (staff, and patients who may)."""
    from app.access import policy

    if user.role is not Role.PATIENT or user.person is None or policy.own_grant(user.person) is not None:
        return None
    youth_from = policy.youth_login_age()
    if youth_from is None:
        return policy.PARENT_ACCESS_UNTIL_AGE
    return min(max(youth_from, policy.PARENT_FULL_ACCESS_UNTIL_AGE), policy.PARENT_ACCESS_UNTIL_AGE)


@bp.route("/logg-inn", methods=["GET", "POST"])
def login() -> Response:
    if current_user.is_authenticated:
        return htmx.redirect_to(safe_next(request.args.get("next")) or url_for("portal.overview"))
    form = LoginForm()
    next_url = safe_next(request.values.get("next"))
    expired = bool(getattr(session, "expired", False)) or request.args.get("utlopt") == "1"
    if request.method == "POST":
        attempt = _attempt("user:" + services.normalise_username(request.form.get("username", "")))
        if not form.validate():
            return htmx.render("auth/login.html", form=form, next_url=next_url, status=400, show_language_choice=True)
        user = services.check_password(form.username.data, form.password.data)
        if user is None:
            audit("login_failed", actor_user_id=None, object_type="auth", object_id="password", outcome="denied")
            db.session.commit()
            form.password.errors.append(_("Fødselsnummeret/brukernavnet eller passordet er feil. Sjekk og prøv igjen."))
            return htmx.render("auth/login.html", form=form, next_url=next_url, status=401, show_language_choice=True)
        throttle().succeeded(attempt)
        if (too_young_until := _own_login_age_missing(user)) is not None:
            # The password was right, but a child logs in only from the youth age (or 16): refused,
            # recorded, and nothing else changes (no pending login, no session for the account).
            audit(
                "login_refused_age",
                actor_user_id=user.id,
                subject_person_id=user.person_id,
                object_type="auth",
                object_id="password",
                outcome="denied",
            )
            db.session.commit()
            form.username.errors.append(
                _(
                    "Du må være %(age)s år for å logge inn selv. Til da kan foreldrene dine se journalen din for deg.",
                    age=too_young_until,
                )
            )
            return htmx.render("auth/login.html", form=form, next_url=next_url, status=403, show_language_choice=True)
        session.pop("enrol_secret", None)  # never carry a half-done enrolment over to another account
        session["pending"] = {"uid": user.id, "at": clock.utcnow().isoformat(), "next": next_url}
        if current_app.config["DEMO_MODE"] and user.is_demo:
            return htmx.redirect_to(_finish_login(user, "password+demo"))
        db.session.commit()  # a rehashed password is kept
        if user.has_second_factor:
            return htmx.redirect_to(url_for("auth.second_factor"))
        return htmx.redirect_to(url_for("auth.enroll"))
    return htmx.render("auth/login.html", form=form, next_url=next_url, expired=expired, show_language_choice=True)


@bp.route("/logg-inn/kode", methods=["GET", "POST"])
def second_factor() -> Response:
    user = _pending_user()
    if user is None or not user.has_second_factor:
        flash(_("Innloggingen tok for lang tid. Logg inn på nytt."), "info")
        return htmx.redirect_to(url_for("auth.login"))
    form, recovery = CodeForm(prefix="totp"), RecoveryForm(prefix="rc")
    use_recovery = request.values.get("reserve") == "1"
    if request.method == "POST":
        active = recovery if use_recovery else form
        if not active.validate():
            # An empty or malformed code is no guess at the secret: said, and not counted.
            return htmx.render("auth/code.html", form=form, recovery=recovery, use_recovery=use_recovery, status=400)
        attempt = _attempt(f"code:{user.id}")
        if use_recovery:
            ok = services.use_recovery_code(user, recovery.recovery_code.data)
            method = "recovery_code"
        else:
            step = services.verify_totp(user.totp_secret or "", form.code.data, user.totp_last_step)
            ok = step is not None and services.claim_totp_step(user, step)
            method = "totp"
        if ok:
            throttle().succeeded(attempt)
            return htmx.redirect_to(_finish_login(user, method))
        audit("login_failed", actor_user_id=user.id, object_type="auth", object_id=method, outcome="denied")
        db.session.commit()
        field = recovery.recovery_code if use_recovery else form.code
        if use_recovery:
            message = _("Reservekoden er feil eller brukt før. Sjekk og prøv igjen.")
        elif services.totp_code_already_used(user.totp_secret or "", form.code.data, user.totp_last_step):
            message = _("Denne koden er allerede brukt. Vent til appen viser en ny kode, og skriv inn den.")
        else:
            message = _("Koden er feil eller utløpt. Skriv inn koden som vises i appen nå.")
        field.errors = [message]
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
        if not form.validate():
            return htmx.render("auth/enroll.html", status=400, **context)  # malformed: not a guess, not counted
        attempt = _attempt(f"code:{user.id}")
        step = services.verify_totp(secret, form.code.data, None)
        if step is None:
            form.code.errors = [_("Koden stemmer ikke. Skriv inn koden som vises i appen nå, og prøv igjen.")]
            return htmx.render("auth/enroll.html", status=401, **context)
        throttle().succeeded(attempt)
        codes = services.enable_totp(user, secret, step)
        audit("second_factor_enabled", actor_user_id=user.id, subject_person_id=user.person_id, object_type="auth")
        next_url = _finish_login(user, "totp_enrolled")
        # Shown in this response only: the codes are never stored anywhere but as hashes.
        return htmx.render("auth/recovery_codes.html", codes=codes, next_url=next_url)
    return htmx.render("auth/enroll.html", **context)


@bp.route("/reservekoder", methods=["GET", "POST"])
def recovery_codes() -> Response:
    """Show new recovery codes once (after enrolment, or when the user asks for new ones)."""
    settings_url = url_for("portal.settings")
    if request.method == "POST":
        # The form's batch makes new codes once: a reload of the answer (which sends the form
        # again) must not quietly replace the codes the user just wrote down with others.
        expected, sent = session.pop("recovery_batch", None), request.form.get("batch", "")
        if not expected or not secrets.compare_digest(expected, sent):
            session["recovery_batch"] = batch = secrets.token_urlsafe(16)
            return htmx.render(
                "auth/recovery_codes.html",
                codes=None,
                shown_before=True,
                batch=batch,
                next_url=settings_url,
                status=409,
            )
        codes = services.new_recovery_codes(current_user)
        audit("recovery_codes_renewed", actor_user_id=current_user.id, object_type="auth")
        db.session.commit()
        # Shown in this response only: the codes are never stored anywhere but as hashes.
        return htmx.render("auth/recovery_codes.html", codes=codes, next_url=settings_url)
    batch = None
    if current_user.has_second_factor:
        session["recovery_batch"] = batch = secrets.token_urlsafe(16)  # asked first, made on the POST
    return htmx.render("auth/recovery_codes.html", codes=None, batch=batch, next_url=settings_url)


@bp.route("/okt/forleng", methods=["POST"])
def extend_session() -> Response:
    """The user answered the idle warning: count it as activity (the idle timeout starts again)."""
    session.modified = True  # saving the session moves last_seen_at to now
    return Response(status=204)


@bp.route("/logg-ut", methods=["GET", "POST"])
def logout() -> Response:
    """POST logs out. GET asks first, with a fresh form: it is also where a logout sent from a page
    older than the session (another tab logged in again since) lands, so that "Logg ut" never
    leaves someone logged in believing they are not."""
    if request.method == "GET":
        if not current_user.is_authenticated:
            return htmx.redirect_to(url_for("auth.logged_out"))
        return htmx.render("auth/logout.html")
    if current_user.is_authenticated:
        audit("logout", actor_user_id=current_user.id, subject_person_id=current_user.person_id, object_type="auth")
        db.session.commit()
        logout_user()
    session.end()
    return htmx.redirect_to(url_for("auth.logged_out"))


@bp.route("/logget-ut")
def logged_out() -> Response:
    return htmx.render("auth/logged_out.html")
