"""What every template can use: nonce, asset URLs, language, tab bar, form helpers."""

from __future__ import annotations

import json

from flask import Flask, current_app, g, request, url_for
from flask_babel import format_date, format_datetime, get_locale, get_translations, gettext, lazy_pgettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from app import clock
from app.appointments.formatting import day_text, when_text
from app.notify.kinds import text_for
from app.web import htmx
from app.web.assets import asset_url
from app.web.icons import icon
from app.web.security import csp_nonce

# htmx for a strict CSP: no eval, no inline styles, no history snapshots (health pages must
# never land in localStorage), only requests to this site.
HTMX_CONFIG = json.dumps(
    {
        "allowEval": False,
        "allowScriptTags": False,
        "includeIndicatorStyles": False,
        "historyCacheSize": 0,
        "refreshOnHistoryMiss": True,
        "selfRequestsOnly": True,
        "responseHandling": [
            {"code": "204", "swap": False},
            {"code": "[23]..", "swap": True},
            {"code": "[45]..", "swap": True, "error": True},
        ],
    },
    separators=(",", ":"),
)


def csrf_field() -> Markup:
    """The CSRF token as a hidden input without an id (a page may hold several forms)."""
    # Markup's % escapes the token.
    return Markup('<input type="hidden" name="csrf_token" value="%s">') % generate_csrf()


def form_errors(forms: list[FlaskForm | None]) -> list[tuple[str, str]]:
    """(field id, first message) for every field in error, for the error summary; "" for the CSRF token."""
    items: list[tuple[str, str]] = []
    for form in forms:
        if not form or not form.errors:
            continue
        for name, messages in form.errors.items():
            if name == "csrf_token":
                items.append(("", gettext("Skjemaet er utløpt. Send det på nytt.")))
            else:
                items.append((form[name].id, str(messages[0])))
    return items


TABS = (
    ("overview", "portal.overview", _l("Oversikt")),
    ("messages", "messages.index", _l("Meldinger")),
    # (A tab of its own: the English label carries a soft hyphen, so it breaks as "Appoint-ments".)
    ("appointments", "appointments.index", lazy_pgettext("tab", "Timer")),
    ("record", "record.index", _l("Journal")),
    ("menu", "portal.menu", _l("Meny")),
)
# Staff have no record of their own to browse: their tabs lead to the console.
STAFF_TABS = (
    ("overview", "portal.overview", _l("Oversikt")),
    ("record", "staff.find", _l("Pasienter")),
    ("messages", "messages_staff.inbox", _l("Meldinger")),
    ("appointments", "appointments_staff.day", lazy_pgettext("tab", "Timer")),
    ("menu", "portal.menu", _l("Meny")),
)
# A clerk has no patient console (it is the clinicians'): their second tab is the copy requests.
CLERK_TABS = tuple(
    ("record", "copies_staff.queue", _l("Innsyn")) if name == "record" else (name, endpoint, label)
    for name, endpoint, label in STAFF_TABS
)
_tab_bars: dict[tuple[str, str | None, str, bool, bool], Markup] = {}


def tab_bar(active: str | None, staff: bool = False, clerk: bool = False) -> Markup:
    """The bottom tab bar. Every page draws it; it only varies by language, active tab and staff or not."""
    key = (str(get_locale()), active, request.script_root, staff, clerk)
    html = _tab_bars.get(key)
    if html is None:
        items = []
        for name, endpoint, label in (CLERK_TABS if clerk else STAFF_TABS) if staff else TABS:
            current = ' aria-current="page"' if name == active else ""
            # format() escapes the URL and label; the attribute is our own constant.
            items.append(
                Markup('<li><a href="{}"{}>{}<span>{}</span></a></li>').format(
                    url_for(endpoint),
                    Markup(current),  # noqa: S704
                    icon(name),
                    str(label),
                )
            )
        html = _tab_bars[key] = Markup('<nav class="tabbar" aria-label="{}"><ul>{}</ul></nav>').format(
            gettext("Hovedmeny"), Markup("").join(items)
        )
    return html


def _translations():  # type: ignore[no-untyped-def]
    """This request's catalogue, looked up once: a page calls gettext a few dozen times."""
    translations = g.get("_varde_translations")
    if translations is None:
        translations = g._varde_translations = get_translations()
    return translations


def _unread_notifications() -> int:
    """The bell's count, only when a whole page is drawn."""
    from flask import session
    from flask_login import current_user

    from app.notify.services import unread_count

    if not current_user.is_authenticated:
        return 0
    if "_varde_unread" not in g:
        # Loaded with the session (no query of its own), unless this request read a notification.
        loaded = getattr(session, "unread_notifications", None)
        g._varde_unread = loaded if loaded is not None else unread_count(current_user.id)
    return g._varde_unread


def _acting_for():  # type: ignore[no-untyped-def]
    """The child whose record a parent is looking at, or None (their own)."""
    from flask import session
    from flask_login import current_user

    from app.access import policy

    if not current_user.is_authenticated or session.get(policy.ACTING_FOR) is None:
        return None
    person = policy.current_patient(current_user)
    return None if person.id == current_user.person_id else person


def _may(right: str) -> bool:
    """Does the viewer have this right in the record the patient pages show (menus show only what
    leads somewhere; every route asks the policy itself)?"""
    from flask_login import current_user

    from app.access import policy

    if not current_user.is_authenticated:
        return False
    if "_varde_rights" not in g:
        g._varde_rights = policy.rights_here(current_user)
    return right in g._varde_rights


def _journal_field() -> Markup:
    """A patient-record form says whose record it was made for: the policy refuses it (409,
    nothing done) if the user has since switched to someone else or lost access to them."""
    from flask_login import current_user

    from app.access import policy

    if not current_user.is_authenticated or current_user.person_id is None:
        return Markup("")
    # Markup's % escapes the value.
    return Markup('<input type="hidden" name="%s" value="%s">') % (
        policy.FORM_PATIENT_FIELD,
        policy.current_patient(current_user).id,
    )


def _access_ended():  # type: ignore[no-untyped-def]
    """Once, after the policy ended acting for someone (a birthday, an end date, a revoked proxy):
    their first name ("" if unknown), else None."""
    from flask import session

    _acting_for()  # asks the policy first, which notes an ended access in the session
    return session.pop("access_ended") if "access_ended" in session else None  # no write when absent


def file_size(size: int | None) -> str:
    """A file's size as a person reads it, in the page's language ("341 byte", "8,2 kB", "1,3 MB");
    Jinja's filesizeformat says "Bytes" on a Norwegian page."""
    from flask_babel import format_decimal, gettext

    if size is None:
        return ""
    if size < 1000:
        return gettext("%(n)s byte", n=format_decimal(size))
    if size < 1000 * 1000:
        return gettext("%(n)s kB", n=format_decimal(round(size / 1000, 1)))
    return gettext("%(n)s MB", n=format_decimal(round(size / 1000 / 1000, 1)))


def init_app(app: Flask) -> None:
    # Same callables Flask-Babel installs, minus its per-call context lookups.
    app.jinja_env.install_gettext_callables(
        lambda s: _translations().ugettext(s),
        lambda s, p, n: _translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: _translations().upgettext(c, s),
    )
    app.jinja_env.globals.update(
        format_date=format_date,
        format_datetime=format_datetime,
        csrf_field=csrf_field,
        form_errors=form_errors,
        icon=icon,
        tab_bar=tab_bar,
        asset_url=asset_url,
        csp_nonce=csp_nonce,
        htmx_config=HTMX_CONFIG,
        unread_notifications=_unread_notifications,
        acting_for=_acting_for,
        access_ended=_access_ended,
        may=_may,
        journal_field=_journal_field,
        notification_text=text_for,
        today=clock.today_in_norway,
        local_date=lambda moment: moment.astimezone(clock.NORWAY).date(),
        when_text=when_text,
        day_text=day_text,
    )

    app.jinja_env.filters["file_size"] = file_size

    @app.context_processor
    def globals_for_templates() -> dict:
        return {
            "current_locale": str(get_locale()),
            "languages": current_app.config["LANGUAGES"],
            "demo_mode": current_app.config["DEMO_MODE"],
            "current_path": htmx.page_path(),
            "session_idle_seconds": int(current_app.config["SESSION_IDLE_TIMEOUT"].total_seconds()),
        }
