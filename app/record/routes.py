"""The patient's record pages. Thin: whose record and whether the viewer may see it come from the
access policy (one audit row per read); what to show comes from record.services."""

from __future__ import annotations

import json

from flask import Blueprint, Response, abort, request
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from app import clock
from app.access import policy
from app.access.models import AuditEvent
from app.auth.models import User
from app.db import db
from app.fhir.export import record_bundle
from app.notify import services as notify_services
from app.people.models import Organisation
from app.record import present, services
from app.record.models import ItemKind
from app.record.release import item_url as release_item_url
from app.web import htmx
from app.web.numbers import db_int
from app.web.security import as_file

bp = Blueprint("record", __name__, url_prefix="/journal")

CATEGORY_LABELS = {
    "laboratory": lambda: _("Laboratorieprøver"),
    "vital-signs": lambda: _("Vitale målinger"),
    "imaging": lambda: _("Bildediagnostikk"),
    "pathology": lambda: _("Patologi"),
    "survey": lambda: _("Spørreskjema og kartlegging"),
    "social-history": lambda: _("Levevaner"),
}


def _viewer():  # type: ignore[no-untyped-def]
    patient = policy.current_patient(current_user)
    return current_user, patient


@bp.route("")
def index() -> Response:
    patient = _viewer()[1]
    return htmx.render("record/index.html", active_tab="record", patient=patient)


@bp.route("/prover")
def results() -> Response:
    viewer, patient = _viewer()
    decision = policy.check(viewer, patient, category="results")
    org_id = request.args.get("org", type=db_int)
    category = request.args.get("kind") or None
    if category not in CATEGORY_LABELS:
        category = None
    search = (request.args.get("q") or "").strip()[:100] or None
    page, members = services.results(
        decision,
        patient,
        organisation_id=org_id,
        category=category,
        search=search,
        cursor=request.args.get("etter"),
    )
    context = {
        "active_tab": "record",
        "pager": page,
        "members": members,
        "organisations": services.organisations_with_items(decision, patient),
        "categories": [(k, v()) for k, v in CATEGORY_LABELS.items()],
        "filters": {"org": org_id, "kind": category, "q": search},
    }
    if request.args.get("etter") and htmx.wants_fragment():
        return htmx.render("record/results.html", "record/_results_more.html", **context)
    return htmx.render("record/results.html", "record/_results_list.html", **context)


@bp.route("/prover/<int:item_id>")
def result(item_id: int) -> Response:
    viewer, patient = _viewer()
    item, decision = _load(viewer, patient, item_id, ItemKind.RESULT)
    points = services.trend(decision, patient, item)
    return htmx.render(
        "record/result.html",
        active_tab="record",
        item=item,
        trend=points,
        chart=present.trend_chart([(p.effective_at, p.data["value"]) for p in points], item.data.get("range"))
        if points
        else None,
        report=services.parent_report(decision, patient, item),
    )


def _load(viewer: User, patient, item_id: int, *kinds: ItemKind):  # type: ignore[no-untyped-def]
    item, decision = policy.load_item(viewer, patient, item_id, tuple(k.value for k in kinds))
    services.mark_read(decision, item)
    notify_services.mark_read_for(viewer.id, "record_item", [item.id])
    return item, decision


@bp.route("/rapporter/<int:item_id>")
def report(item_id: int) -> Response:
    viewer, patient = _viewer()
    item, decision = _load(viewer, patient, item_id, ItemKind.REPORT)
    return htmx.render(
        "record/report.html",
        active_tab="record",
        item=item,
        members=services.report_members(decision, patient, item),
        content=services.content_of(item),
    )


@bp.route("/rapporter/<int:item_id>/fil")
def report_file(item_id: int) -> Response:
    viewer, patient = _viewer()
    item, _decision = _load(viewer, patient, item_id, ItemKind.REPORT)
    return _download(item)


@bp.route("/notater")
def notes() -> Response:
    viewer, patient = _viewer()
    decision = policy.check(viewer, patient, category="notes")
    summaries = request.args.get("type") == "oppsummering"
    page = services.notes(decision, patient, summaries_only=summaries, cursor=request.args.get("etter"))
    return htmx.render("record/notes.html", active_tab="record", pager=page, summaries=summaries)


@bp.route("/notater/<int:item_id>")
def note(item_id: int) -> Response:
    viewer, patient = _viewer()
    item, _decision = _load(viewer, patient, item_id, ItemKind.NOTE)
    return htmx.render("record/note.html", active_tab="record", item=item, content=services.content_of(item))


@bp.route("/besok")
def visits() -> Response:
    viewer, patient = _viewer()
    decision = policy.check(viewer, patient, category="visits")
    page = services.visits(decision, patient, request.args.get("etter"))
    return htmx.render("record/visits.html", active_tab="record", pager=page)


@bp.route("/besok/<int:item_id>")
def visit(item_id: int) -> Response:
    viewer, patient = _viewer()
    item, decision = _load(viewer, patient, item_id, ItemKind.ENCOUNTER)
    return htmx.render(
        "record/visit.html", active_tab="record", item=item, related=services.visit_items(decision, patient, item)
    )


@bp.route("/legemidler")
def medications() -> Response:
    viewer, patient = _viewer()
    decision = policy.check(viewer, patient, category="medications")
    current, ended = services.medications(decision, patient)
    return htmx.render("record/medications.html", active_tab="record", current=current, ended=ended)


@bp.route("/legemidler/<int:item_id>")
def medication(item_id: int) -> Response:
    viewer, patient = _viewer()
    item, _decision = _load(viewer, patient, item_id, ItemKind.MEDICATION)
    return htmx.render("record/item.html", active_tab="record", item=item)


@bp.route("/vaksiner")
def immunizations() -> Response:
    viewer, patient = _viewer()
    decision = policy.check(viewer, patient, category="immunizations")
    return htmx.render(
        "record/immunizations.html", active_tab="record", items=services.immunizations(decision, patient)
    )


@bp.route("/vaksiner/<int:item_id>")
def immunization(item_id: int) -> Response:
    viewer, patient = _viewer()
    item, _decision = _load(viewer, patient, item_id, ItemKind.IMMUNIZATION)
    return htmx.render("record/item.html", active_tab="record", item=item)


@bp.route("/dokumenter")
def documents() -> Response:
    viewer, patient = _viewer()
    decision = policy.check(viewer, patient, category="documents")
    page = services.documents(decision, patient, request.args.get("etter"))
    return htmx.render("record/documents.html", active_tab="record", pager=page)


@bp.route("/dokumenter/<int:item_id>")
def document(item_id: int) -> Response:
    viewer, patient = _viewer()
    item, _decision = _load(viewer, patient, item_id, ItemKind.DOCUMENT)
    return htmx.render("record/item.html", active_tab="record", item=item)


@bp.route("/dokumenter/<int:item_id>/fil")
def document_file(item_id: int) -> Response:
    viewer, patient = _viewer()
    item, _decision = _load(viewer, patient, item_id, ItemKind.DOCUMENT)
    return _download(item)


def _download(item) -> Response:  # type: ignore[no-untyped-def]
    content = services.content_of(item)
    if content is None or content.binary is None:
        abort(404)
    # Only types Varde knows are served as themselves; anything else is just bytes to save.
    extension = {"application/pdf": "pdf"}.get(content.content_type or "", "bin")
    mimetype = "application/pdf" if extension == "pdf" else "application/octet-stream"
    response = Response(content.binary, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="varde-dokument-{item.id}.{extension}"'
    return as_file(response)


@bp.route("/eksport.json")
def export_json() -> Response:
    viewer, patient = _viewer()
    decision = policy.check(viewer, patient, category="export")
    bundle = record_bundle(decision, patient)
    response = Response(json.dumps(bundle, ensure_ascii=False), mimetype="application/fhir+json")
    response.headers["Content-Disposition"] = 'attachment; filename="varde-journal.json"'
    return as_file(response)


@bp.route("/utskrift")
def printable() -> Response:
    viewer, patient = _viewer()
    decision = policy.check(viewer, patient, category="export")
    items = services.everything(decision, patient)
    text_ids = [i.id for i in items[ItemKind.NOTE]] + [i.id for i in items[ItemKind.REPORT]]
    return htmx.render(
        "record/printable.html",
        active_tab="record",
        patient=patient,
        items=items,
        contents=services.contents(text_ids),
    )


@bp.route("/hvem-har-sett")
def who_has_seen() -> Response:
    """Every read of the record by someone other than the patient: staff and (later) proxies."""
    viewer, patient = _viewer()
    policy.check(viewer, patient, category="access_log")
    before = request.args.get("for", type=db_int)
    q = (
        select(AuditEvent, User, Organisation)
        .join(User, User.id == AuditEvent.actor_user_id)
        .outerjoin(Organisation, Organisation.id == AuditEvent.organisation_id)
        .where(
            AuditEvent.subject_person_id == patient.id,
            AuditEvent.basis.is_not(None),
            AuditEvent.basis != "own",
            AuditEvent.outcome == "ok",
        )
        .order_by(AuditEvent.id.desc())
        .limit(51)
    )
    if before:
        q = q.where(AuditEvent.id < before)
    rows = db.session.execute(q).all()
    more = len(rows) > 50
    rows = rows[:50]
    from app.access import proxies

    return htmx.render(
        "record/who_has_seen.html",
        active_tab="record",
        rows=rows,
        next_before=rows[-1][0].id if more else None,
        # The patient's own view: what each proxy and guardian did, next to the log.
        relatives=proxies.given_by(patient) if viewer.person_id == patient.id else [],
        patient=patient,
    )


# --- what the record templates use -------------------------------------------------------------

STATUS_WORDS = {
    "active": lambda: _("I bruk"),
    "on-hold": lambda: _("Satt på pause"),
    "stopped": lambda: _("Avsluttet"),
    "completed": lambda: _("Fullført"),
    "cancelled": lambda: _("Avbrutt"),
    "draft": lambda: _("Utkast"),
    "not-done": lambda: _("Ikke gitt"),
    "entered-in-error": lambda: _("Registrert ved en feil"),
}
ROLE_WORDS = {
    "clinician": lambda: _("Helsepersonell"),
    "clerk": lambda: _("Merkantilt ansatt"),
    "administrator": lambda: _("Administrator"),
    "patient": lambda: _("Pårørende eller fullmektig"),
}
AUDIT_WORDS = {
    "record": lambda: _("så oversikten over journalen"),
    "export": lambda: _("tok ut en kopi av journalen"),
    "record_item": lambda: _("åpnet en opplysning"),
    "search": lambda: _("fant deg i et pasientsøk"),
    "copy_request": lambda: _("åpnet forespørselen din om kopi av journalen"),
    "copy_requests": lambda: _("så deg i køen av forespørsler om kopi av journalen"),
    "relation": lambda: _("endret hvem som kan representere deg"),
}


@bp.app_template_global()
def item_url(item) -> str:  # type: ignore[no-untyped-def]
    return release_item_url(item.id, item.kind)


@bp.app_template_global()
def status_words(item) -> str:  # type: ignore[no-untyped-def]
    words = STATUS_WORDS.get(item.status)
    return words() if words else item.status


@bp.app_template_global()
def role_words(role) -> str:  # type: ignore[no-untyped-def]
    words = ROLE_WORDS.get(role.value)
    return words() if words else role.value


@bp.app_template_global()
def audit_words(event) -> str:  # type: ignore[no-untyped-def]
    words = AUDIT_WORDS.get(event.object_type or "")
    return words() if words else _("så en oversikt")


@bp.record_once
def record_helpers(state) -> None:  # type: ignore[no-untyped-def]
    # Globals, not a context processor: imported macros (record/_macros.html) see them too.
    state.app.jinja_env.globals.update(
        {
            "value_text": present.value_text,
            "flag_words": present.flag_words,
            "result_flag": present.flag,
            "range_text": present.range_text,
            "range_bar": present.range_bar,
            "item_date": present.item_date,
            "kinds": ItemKind,
            "now": clock.utcnow,
        }
    )
