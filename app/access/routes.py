"""The patient's proxies (Fullmakter): give someone access by national id or a one-time code, see
and end the access given, see what each proxy did, and use a code one has been given.

These pages are about the logged-in person's own record, whoever they are looking at in the
profile switcher: one only ever gives access to one's own record.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from limits import parse

from app import clock
from app.access import policy, proxies
from app.access.forms import LEVEL_HINTS, LEVEL_LABELS, AcceptCodeForm, CodeProxyForm, GiveProxyForm
from app.access.services import audit
from app.auth.models import Role
from app.auth.throttle import windows
from app.db import db
from app.people.models import Person, ProxyLevel, Relation
from app.refusal import Refused
from app.web import htmx

bp = Blueprint("proxies", __name__, url_prefix="/fullmakter")
CODE_ATTEMPTS = "10 per hour"  # wrong codes one account may try: guessing ~49 bits is hopeless anyway
INVITES = "20 per day"  # proxies given by national id, one account


@bp.before_request
def patients_only() -> None:
    if not current_user.is_authenticated or current_user.role is not Role.PATIENT or current_user.person is None:
        abort(404)


def _me() -> Person:
    return current_user.person


def _context(give: GiveProxyForm | None = None, code: CodeProxyForm | None = None, **extra: object) -> dict:
    me = _me()
    today = clock.today_in_norway()
    return {
        "active_tab": "menu",
        "given": proxies.given_by(me),
        "held": proxies.held_by(me),
        "codes": proxies.open_codes(me),
        "give_form": give or GiveProxyForm(prefix="gi"),
        "code_form": code or CodeProxyForm(prefix="kode"),
        "level_hints": LEVEL_HINTS,
        "may_give": me.age_on(today) >= policy.PROXY_GIVER_MIN_AGE and not me.is_protected,
        "may_hold": me.age_on(today) >= policy.PROXY_HOLDER_MIN_AGE and not me.is_protected,
        "me": me,
        "this_day": today,
        **extra,
    }


def _refused(refused: Refused, status: int = 409, *, attempt: str | None = None, **forms: object) -> Response:
    """Nothing changed; the attempt itself is recorded (``attempt``: its audit action)."""
    db.session.rollback()
    if attempt is not None:
        audit(
            attempt, actor_user_id=current_user.id, subject_person_id=_me().id, object_type="relation", outcome="denied"
        )
        db.session.commit()
    return htmx.render("access/proxies.html", status=status, error=refused.message, **_context(**forms))  # type: ignore[arg-type]


@bp.route("")
def index() -> Response:
    levels = {level.value for level in ProxyLevel}
    changed = [request.args.get(key) for key in ("fra", "til")]
    return htmx.render(
        "access/proxies.html",
        notice=request.args.get("ok"),
        changed=changed if all(level in levels for level in changed) else None,
        **_context(),
    )


@bp.route("/gi", methods=["POST"])
def give() -> Response:
    form = GiveProxyForm(prefix="gi")
    if not form.validate():
        return htmx.render("access/proxies.html", status=400, **_context(give=form))
    # Every try counts (found or not), so national ids cannot be tried one after another.
    if not windows().hit(parse(INVITES), "varde-proxy-invite", str(current_user.id)):
        tried = _("Du har prøvd mange fødselsnumre i dag. Prøv igjen i morgen, eller lag en engangskode.")
        return _refused(Refused(tried), 429, give=form, attempt="proxy_grant_refused")
    try:
        relation = proxies.invite_by_national_id(
            current_user, _me(), form.national_id.data, form.level_value(), form.valid_until.data
        )
    except Refused as refused:
        return _refused(refused, give=form, attempt="proxy_grant_refused")
    previous = relation.previous_level
    db.session.commit()
    if previous is not None:  # they had a proxy already: say that it changed, and from what
        changed = {"ok": "endret", "fra": previous.value, "til": relation.level.value}
        return htmx.redirect_to(url_for("proxies.index", **changed, _anchor=f"fullmakt-{relation.id}"))
    return htmx.redirect_to(url_for("proxies.index", ok="gitt", _anchor=f"fullmakt-{relation.id}"))


@bp.route("/kode", methods=["POST"])
def make_code() -> Response:
    form = CodeProxyForm(prefix="kode")
    if not form.validate():
        return htmx.render("access/proxies.html", status=400, **_context(code=form))
    try:
        invitation, code = proxies.make_code(current_user, _me(), form.level_value(), form.valid_until.data)
    except Refused as refused:
        return _refused(refused, code=form)
    db.session.commit()
    # Shown once, on this response only (never stored in clear, never cached).
    response = htmx.render("access/code.html", active_tab="menu", code=code, invitation=invitation)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/kode/<int:invitation_id>/trekk-tilbake", methods=["POST"])
def cancel_code(invitation_id: int) -> Response:
    if proxies.cancel_code(current_user, _me(), invitation_id) is None:
        abort(404)
    db.session.commit()
    return htmx.redirect_to(url_for("proxies.index", ok="kode-trukket"))


@bp.route("/<int:relation_id>/avslutt", methods=["POST"])
def end(relation_id: int) -> Response:
    try:
        relation = proxies.end(current_user, _me(), relation_id)
    except Refused as refused:
        return _refused(refused)
    if relation is None:
        abort(404)
    db.session.commit()
    return htmx.redirect_to(url_for("proxies.index", ok="avsluttet"))


@bp.route("/<int:relation_id>/aktivitet")
def activity(relation_id: int) -> Response:
    """What one proxy or guardian did in the patient's record, from the audit log."""
    relation = db.session.get(Relation, relation_id)
    if relation is None or relation.subject_id != _me().id:
        abort(404)
    return htmx.render(
        "access/activity.html",
        active_tab="menu",
        relation=relation,
        events=proxies.activity(_me(), relation.holder_id),
    )


@bp.route("/bruk-kode", methods=["GET", "POST"])
def accept() -> Response:
    form = AcceptCodeForm()
    if request.method == "GET":
        return htmx.render("access/accept.html", active_tab="menu", form=form)
    if not form.validate():
        return htmx.render("access/accept.html", active_tab="menu", form=form, status=400)
    item = parse(CODE_ATTEMPTS)
    if not windows().test(item, "varde-proxy-code", str(current_user.id)):
        form.code.errors.append(_("Du har prøvd mange koder på kort tid. Vent en time og prøv igjen."))
        return htmx.render("access/accept.html", active_tab="menu", form=form, status=429)
    try:
        relation = proxies.accept_code(current_user, _me(), form.code.data)
    except Refused as refused:
        db.session.rollback()
        windows().hit(item, "varde-proxy-code", str(current_user.id))  # only wrong codes count
        form.code.errors.append(refused.message)
        return htmx.render("access/accept.html", active_tab="menu", form=form, status=409)
    previous = relation.previous_level
    db.session.commit()
    if previous is not None and previous is not relation.level:
        changed = {"ok": "kode-endret", "fra": previous.value, "til": relation.level.value}
        return htmx.redirect_to(url_for("proxies.index", **changed, _anchor=f"fullmakt-{relation.id}"))
    return htmx.redirect_to(url_for("proxies.index", ok="kode-brukt", _anchor=f"fullmakt-{relation.id}"))


@bp.app_template_global()
def level_words(level: ProxyLevel | str | None) -> str:
    return str(LEVEL_LABELS[ProxyLevel(level)]) if level else ""


# What a relative did, in words (the audit row's action is "<verb>_<object>").
VERBS = {
    "read": lambda: _("så"),
    "list": lambda: _("så"),
    "poll": lambda: _("så"),
    "download": lambda: _("lastet ned"),
    "reply": lambda: _("svarte i"),
    "write": lambda: _("skrev"),
    "book": lambda: _("bestilte"),
    "cancel": lambda: _("avbestilte"),
    "change": lambda: _("flyttet"),
    "accept": lambda: _("takket ja til"),
    "decline": lambda: _("takket nei til"),
    "waitlist": lambda: _("endret ventelisten for"),
    "draft": lambda: _("skrev et utkast i"),
}
OBJECTS = {
    "record_item": lambda: _("en opplysning i journalen"),
    "overview": lambda: _("forsiden"),
    "results": lambda: _("prøvesvarene"),
    "notes": lambda: _("notatene"),
    "visits": lambda: _("besøkene"),
    "medications": lambda: _("legemidlene"),
    "immunizations": lambda: _("vaksinene"),
    "documents": lambda: _("dokumentene"),
    "export": lambda: _("en kopi av journalen"),
    "access_log": lambda: _("hvem som har sett journalen"),
    "appointments": lambda: _("timene"),
    "appointment": lambda: _("en time"),
    "offer": lambda: _("et tilbud om tidligere time"),
    "messages": lambda: _("meldingene"),
    "conversation": lambda: _("en samtale"),
    "attachment": lambda: _("et vedlegg"),
}
WHOLE = {
    "profile_switched": lambda: _("åpnet journalen din"),
    "proxy_granted": lambda: _("fikk fullmakt"),
    "proxy_code_used": lambda: _("brukte en engangskode og fikk fullmakt"),
    "proxy_revoked": lambda: _("fullmakten ble avsluttet"),
}


# A change's form that was only looked at (the policy audits it as "open-<action>").
OPENED = {
    "book": lambda: _("åpnet timebestillingen"),
    "cancel": lambda: _("åpnet avbestilling av en time"),
    "change": lambda: _("åpnet flytting av en time"),
    "accept": lambda: _("så et tilbud om tidligere time"),
    "decline": lambda: _("så et tilbud om tidligere time"),
    "waitlist": lambda: _("så ønsket om tidligere time"),
    "write": lambda: _("åpnet skjemaet for ny melding"),
    "reply": lambda: _("så en samtale"),
}


@bp.app_template_global()
def activity_words(event) -> str:  # type: ignore[no-untyped-def]
    if (whole := WHOLE.get(event.action)) is not None:
        return whole()
    if event.action.startswith("open-"):
        opened = OPENED.get(event.action[5:].split("_", 1)[0])
        return opened() if opened else _("var inne i journalen din")
    verb = VERBS.get(event.action.split("_", 1)[0])
    what = OBJECTS.get(event.object_type or "")
    if verb is None or what is None:
        return _("var inne i journalen din")
    return _("%(verb)s %(what)s", verb=verb(), what=what())


RELATIVE_WORDS = {
    "parent": lambda: _("forelder"),
    "proxy": lambda: _("fullmektig"),
    "guardian": lambda: _("verge"),
}


@bp.app_template_global()
def relative_word(key: str | None) -> str:
    """What someone acting for the patient is to them, in a sentence ("bestilt av forelder")."""
    words = RELATIVE_WORDS.get(key or "")
    return words() if words else (key or "")


@bp.app_template_global()
def basis_words(basis: str | None) -> str | None:
    """The same as a label ("Fullmektig"), from an audit row's basis; None for staff's rows."""
    return relative_word(basis).capitalize() if basis in RELATIVE_WORDS else None
