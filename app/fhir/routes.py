"""POST /fhir: a source system sends a transaction or batch Bundle with its own bearer token."""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from app.extensions import csrf
from app.fhir.clients import client_for_token
from app.fhir.ingest import import_bundle
from app.fhir.validate import BundleRefused, Issue, operation_outcome

bp = Blueprint("fhir", __name__)
FHIR_JSON = "application/fhir+json"


def _outcome(status: int, issues: list[Issue], headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(operation_outcome(issues), ensure_ascii=False)
    return Response(body, status=status, mimetype=FHIR_JSON, headers=headers)


@bp.route("/fhir", methods=["POST"])
@csrf.exempt  # machine-to-machine: authenticated by a bearer token, never by a cookie
def receive_bundle() -> Response:
    auth = request.headers.get("Authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    client = client_for_token(token)
    if client is None:
        return _outcome(
            401,
            [Issue("fatal", "security", "Mangler eller ugyldig token (Authorization: Bearer …).")],
            {"WWW-Authenticate": 'Bearer realm="varde-fhir"'},
        )
    mimetype = request.mimetype
    if mimetype not in (FHIR_JSON, "application/json"):
        return _outcome(415, [Issue("fatal", "not-supported", f"Innholdstypen må være {FHIR_JSON}.")])
    request.max_content_length = current_app.config["FHIR_MAX_BYTES"]
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        limit = current_app.config["FHIR_MAX_BYTES"]
        return _outcome(413, [Issue("fatal", "too-long", f"Bundelen er større enn grensen på {limit} byte.")])
    try:
        result = import_bundle(raw, client)
    except BundleRefused as refused:
        return _outcome(refused.status, refused.issues)
    return _outcome(200, result.issues())
