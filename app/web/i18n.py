"""Which language a page is in: the user's choice, then the browser's, then bokmål."""

from __future__ import annotations

from flask import current_app, has_request_context, request, session
from flask_login import current_user


def select_locale() -> str:
    if not has_request_context():  # CLI and workers: bokmål
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    languages = current_app.config["LANGUAGES"]
    chosen = session.get("lang")
    if chosen in languages:
        return chosen
    if current_user and current_user.is_authenticated and current_user.locale in languages:
        return current_user.locale
    # Norwegian browsers send "no"/"nb"/"nn": all of them get bokmål until nynorsk arrives.
    best = request.accept_languages.best_match(["nb", "no", "nn", "en"])
    return "en" if best == "en" else "nb"
