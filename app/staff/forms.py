"""Staff console forms. Messages say what to do."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length


class FindPatientForm(FlaskForm):
    class Meta:
        csrf = False  # a search (GET) changes nothing

    q = StringField(
        _l("Fødselsnummer eller navn"),
        validators=[
            DataRequired(_l("Skriv inn fødselsnummer (11 siffer) eller navn.")),
            Length(min=2, max=100, message=_l("Skriv mellom 2 og 100 tegn.")),
        ],
    )


class ReleaseForm(FlaskForm):
    comment = TextAreaField(
        _l("Kommentar til pasienten (valgfritt)"),
        validators=[Length(max=2000, message=_l("Kommentaren kan ikke være lengre enn 2000 tegn."))],
    )


class WithholdForm(FlaskForm):
    scope = RadioField(
        _l("Hvem skal ikke se dette?"),
        choices=[
            SelectChoice("patient", _l("Pasienten (og dermed også foresatte og fullmektiger)")),
            SelectChoice("guardians", _l("Bare foresatte")),
        ],
        default="patient",
        validators=[DataRequired(_l("Velg hvem opplysningen skal holdes tilbake fra."))],
    )
    reason = TextAreaField(
        _l("Begrunnelse"),
        validators=[
            DataRequired(_l("Skriv begrunnelsen. Den lagres i journalen (pasient- og brukerrettighetsloven § 5-1).")),
            Length(min=10, max=2000, message=_l("Begrunnelsen må være mellom 10 og 2000 tegn.")),
        ],
    )


class VisitSummaryForm(FlaskForm):
    unit = SelectField(_l("Enhet"), coerce=int, validate_choice=True)
    title = StringField(
        _l("Overskrift"),
        default=_l("Oppsummering etter besøk"),
        validators=[
            DataRequired(_l("Skriv en overskrift.")),
            Length(max=200, message=_l("Overskriften kan ikke være lengre enn 200 tegn.")),
        ],
    )
    text = TextAreaField(
        _l("Oppsummering til pasienten"),
        validators=[
            DataRequired(_l("Skriv oppsummeringen.")),
            Length(max=20000, message=_l("Oppsummeringen kan ikke være lengre enn 20 000 tegn.")),
        ],
    )
