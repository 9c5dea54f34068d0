"""Language choice and the health check: small, public, shared by everyone."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request, session, url_for
from flask_login import current_user

from app.auth.routes import safe_next
from app.db import db
from app.web import htmx

bp = Blueprint("web", __name__)


@bp.route("/sprak", methods=["POST"])
def set_language() -> Response:
    lang = request.form.get("lang", "")
    if lang in current_app.config["LANGUAGES"]:
        session["lang"] = lang
        if current_user.is_authenticated:
            current_user.locale = lang
            db.session.commit()
    back = safe_next(request.form.get("next"), allow_login_pages=True)
    return htmx.redirect_to(back or url_for("portal.overview"))


@bp.route("/healthz")
def healthz() -> Response:
    db.session.execute(db.text("SELECT 1"))
    return Response("ok\n", mimetype="text/plain")
