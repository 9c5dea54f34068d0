"""Staff console forms. Messages say what to do."""

from __future__ import annotations

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, Field, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from app import clock
from app.access.forms import LEVEL_CHOICES
from app.people.models import ProxyLevel
from app.people.nin import InvalidNin, parse_nin
from app.people.services import SCOPE_MAX_CHARS


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
            SelectChoice("guardians", _l("Bare foreldre og verger")),
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


# -- Relatives and representatives ------------------------------------------------------------------


def _valid_national_id(field: Field) -> None:
    """A well-formed fødselsnummer or D-number (synthetic test numbers only in demo mode),
    normalised (spaces removed)."""
    try:
        field.data = parse_nin(field.data or "", allow_synthetic=bool(current_app.config.get("DEMO_MODE"))).value
    except InvalidNin as invalid:
        raise ValidationError(str(invalid.message)) from None


class ParentForm(FlaskForm):
    """Register a parent with parental responsibility (foreldreansvar) for a child under 16."""

    parent_national_id = StringField(
        _l("Fødselsnummeret til forelderen"),
        validators=[InputRequired(_l("Skriv inn fødselsnummeret til forelderen (11 siffer).")), Length(max=20)],
    )

    def validate_parent_national_id(self, field: StringField) -> None:
        _valid_national_id(field)


GUARDIAN_LEVELS = LEVEL_CHOICES  # the same levels as a proxy's


class GuardianForm(FlaskForm):
    """Register a guardian (verge) for an adult patient, with the mandate and an optional end."""

    guardian_national_id = StringField(
        _l("Fødselsnummeret til vergen"),
        validators=[InputRequired(_l("Skriv inn fødselsnummeret til vergen (11 siffer).")), Length(max=20)],
    )
    level = SelectField(
        _l("Hva skal vergen få se og gjøre i Varde?"),
        choices=GUARDIAN_LEVELS,
        default=ProxyLevel.STANDARD.value,
        validate_choice=True,
    )
    scope_text = TextAreaField(
        _l("Omfanget av vergemålet"),
        validators=[
            InputRequired(_l("Skriv omfanget av vergemålet slik det står i vedtaket.")),
            Length(
                max=SCOPE_MAX_CHARS,
                message=_l("Omfanget av vergemålet kan være høyst %(max)s tegn.", max=SCOPE_MAX_CHARS),
            ),
        ],
    )
    valid_until = DateField(_l("Sluttdato (valgfri)"), validators=[Optional()])

    def validate_guardian_national_id(self, field: StringField) -> None:
        _valid_national_id(field)

    def validate_scope_text(self, field: TextAreaField) -> None:
        if not (field.data or "").strip():
            raise ValidationError(_l("Skriv omfanget av vergemålet slik det står i vedtaket."))

    def validate_valid_until(self, field: DateField) -> None:
        if field.data is not None and field.data < clock.today_in_norway():
            raise ValidationError(_l("Sluttdatoen kan ikke være tilbake i tid."))

    def level_value(self) -> ProxyLevel:
        return ProxyLevel(self.level.data)


class RelationActionForm(FlaskForm):
    """Ending a relation, recording or withdrawing an objection: a button and its CSRF token."""
