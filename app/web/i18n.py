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
    for tag, _quality in request.accept_languages:  # best first
        primary = tag.split("-")[0].split("_")[0].lower()
        if primary in ("nb", "no", "nn"):
            return "nb"
        if primary in languages:
            return primary
    return current_app.config["BABEL_DEFAULT_LOCALE"]
