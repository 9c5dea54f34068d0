"""Login forms. Messages say what to do, in plain language."""

from __future__ import annotations

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length, ValidationError

from app.people.nin import InvalidNin, parse_nin


class LoginForm(FlaskForm):
    username = StringField(
        _l("Fødselsnummer eller brukernavn"),
        validators=[
            DataRequired(_l("Skriv inn fødselsnummeret ditt (11 siffer) eller brukernavnet ditt.")),
            Length(max=100, message=_l("Brukernavnet kan ikke være lengre enn 100 tegn.")),
        ],
        render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"},
    )

    def validate_username(self, field: StringField) -> None:
        """Something that looks like a national id must be a valid one: say what is wrong with it."""
        compact = "".join((field.data or "").split())
        if compact and all(ch.isdigit() for ch in compact):
            try:
                parse_nin(compact, allow_synthetic=current_app.config["DEMO_MODE"])
            except InvalidNin as error:
                raise ValidationError(str(error.message)) from None

    password = PasswordField(
        _l("Passord"),
        validators=[
            DataRequired(_l("Skriv inn passordet ditt.")),
            Length(max=200, message=_l("Passordet kan ikke være lengre enn 200 tegn.")),
        ],
        render_kw={"autocomplete": "current-password"},
    )


class CodeForm(FlaskForm):
    code = StringField(
        _l("Engangskode fra autentiseringsappen"),
        validators=[DataRequired(_l("Skriv inn koden på 6 siffer fra autentiseringsappen."))],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "maxlength": "7"},
    )

    def validate_code(self, field: StringField) -> None:
        # Spaces are allowed ("123 456", as some apps show it); anything but six digits is a typo.
        digits = "".join((field.data or "").split())
        if not (len(digits) == 6 and digits.isascii() and digits.isdigit()):
            raise ValidationError(_l("Koden har 6 siffer. Skriv inn koden som vises i appen nå."))


class RecoveryForm(FlaskForm):
    recovery_code = StringField(
        _l("Reservekode"),
        validators=[DataRequired(_l("Skriv inn en av reservekodene dine, for eksempel abcde-fghjk."))],
        render_kw={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"},
    )
