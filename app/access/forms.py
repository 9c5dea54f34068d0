"""Forms of the proxy pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional

from app.people.models import ProxyLevel

# The levels' names, for proxies and guardians alike (the patient's page, the staff console).
LEVEL_LABELS = {
    ProxyLevel.STANDARD: _l("Standard"),
    ProxyLevel.READ_ONLY: _l("Bare lese"),
    ProxyLevel.COMMUNICATE: _l("Bare kommunisere"),
    ProxyLevel.FULL: _l("Full tilgang"),
}
LEVEL_CHOICES = [SelectChoice(level.value, label) for level, label in LEVEL_LABELS.items()]
LEVEL_HINTS = {
    ProxyLevel.STANDARD.value: _l(
        "Timer, prøvesvar, legemidler og vaksiner, meldinger og timebestilling. "
        "Ikke notater, tidligere besøk eller tidligere timer."
    ),
    ProxyLevel.READ_ONLY.value: _l(
        "Ser det samme som Standard, men kan ikke sende meldinger eller bestille og endre timer."
    ),
    ProxyLevel.COMMUNICATE.value: _l("Timer og meldinger, og kan bestille og endre timer. Ingen helseopplysninger."),
    ProxyLevel.FULL.value: _l(
        "Alt du selv ser og kan gjøre: også notater, tidligere besøk og timer, dokumenter, "
        "kopi av journalen og skjemaer."
    ),
}


class _LevelForm(FlaskForm):
    level = RadioField(
        _l("Hva skal fullmektigen få se og gjøre?"),
        choices=LEVEL_CHOICES,
        default=ProxyLevel.STANDARD.value,
        validators=[InputRequired(_l("Velg et nivå."))],
    )
    valid_until = DateField(
        _l("Sluttdato (valgfri)"),
        validators=[Optional()],
        description=_l("Fullmakten gjelder til og med denne dagen. Tom: til du avslutter den."),
    )

    def level_value(self) -> ProxyLevel:
        return ProxyLevel(self.level.data)


class GiveProxyForm(_LevelForm):
    national_id = StringField(
        _l("Fødselsnummeret til den som skal få fullmakt"),
        validators=[InputRequired(_l("Skriv fødselsnummeret (11 siffer).")), Length(max=20)],
    )


class CodeProxyForm(_LevelForm):
    pass


class AcceptCodeForm(FlaskForm):
    code = StringField(
        _l("Engangskode"),
        validators=[InputRequired(_l("Skriv koden du har fått.")), Length(max=40, message=_l("Koden er for lang."))],
    )
