"""Error pages in plain language, for pages and for htmx requests, with all security headers."""

from __future__ import annotations

from flask import Flask, Response, make_response, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.db import db
from app.web import htmx

MESSAGES = {
    400: (_l("Noe var galt med forespørselen"), _l("Gå tilbake og prøv igjen.")),
    403: (_l("Du har ikke tilgang til denne siden"), _l("Gå til oversikten eller logg inn på nytt.")),
    404: (_l("Fant ikke siden"), _l("Sjekk adressen, eller gå til oversikten.")),
    405: (_l("Denne handlingen er ikke tillatt her"), _l("Gå tilbake og bruk knappene på siden.")),
    409: (
        _l("Journalen er byttet"),
        _l(
            "Skjemaet gjaldt en annen journal enn den du ser nå, eller tilgangen din til den er avsluttet. "
            "Ingenting ble sendt. Gå til oversikten og prøv igjen."
        ),
    ),
    413: (
        _l("Det du sendte er for stort"),
        _l("Gjør innholdet mindre og prøv igjen. Ingenting ble lagret."),
    ),
    429: (
        _l("For mange forsøk"),
        _l("Av sikkerhetshensyn må du vente litt før du prøver igjen. Prøv igjen om 15 minutter."),
    ),
    500: (
        _l("Noe gikk galt hos oss"),
        _l("Ingenting ble lagret. Prøv igjen om litt. Er det viktig, ring behandlingsstedet ditt."),
    ),
}
CSRF_MESSAGE = (
    _l("Skjemaet er utløpt"),
    _l("Av sikkerhetshensyn må skjemaet sendes på nytt. Last inn siden og prøv igjen. Ingenting ble lagret."),
)


def _render(status: int, title: object, text: object) -> Response:
    response = make_response(render_template("errors/error.html", status=status, title=title, text=text), status)
    if htmx.is_htmx():
        response = make_response(render_template("errors/_message.html", title=title, text=text), status)
        htmx.retarget_to_live_region(response)
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> Response:
        db.session.rollback()
        if request.endpoint == "auth.logout":
            # A logout from an old page: ask again with a fresh form rather than leave them logged in.
            return htmx.render("auth/logout.html", status=400, stale=True)
        return _render(400, *CSRF_MESSAGE)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        db.session.rollback()
        code = error.code or 500
        title, text = MESSAGES.get(code, (error.name, ""))
        response = _render(code, title, text)
        if code == 405 and error.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> Response:
        if isinstance(error, HTTPException):
            return http_error(error)
        db.session.rollback()
        app.logger.exception("unhandled error")  # the traceback, never request bodies
        return _render(500, *MESSAGES[500])
