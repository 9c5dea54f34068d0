"""The notification preferences form."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, TimeField
from wtforms.validators import InputRequired

from app.notify.kinds import CATEGORY_LABELS, Category


class ClockField(TimeField):
    """A time of day (HH:MM) whose parse error is in the user's language, not WTForms' English."""

    def process_formdata(self, valuelist: list[str]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError:
            self.data = None
            raise ValueError(str(_l("Skriv inn et klokkeslett som TT:MM, for eksempel 22:00."))) from None


class PreferencesForm(FlaskForm):
    record = BooleanField(CATEGORY_LABELS[Category.RECORD])
    messages = BooleanField(CATEGORY_LABELS[Category.MESSAGES])
    reminders = BooleanField(CATEGORY_LABELS[Category.REMINDERS])
    offers = BooleanField(CATEGORY_LABELS[Category.OFFERS])
    quiet_enabled = BooleanField(_l("Ingen varsler om natten"))
    quiet_start = ClockField(
        _l("Stille fra"), validators=[InputRequired(_l("Skriv inn et klokkeslett, for eksempel 22:00."))]
    )
    quiet_end = ClockField(
        _l("Stille til"), validators=[InputRequired(_l("Skriv inn et klokkeslett, for eksempel 07:00."))]
    )
    offers_break_quiet = BooleanField(_l("Tilbud om tidligere time kan komme også om natten"))

    def validate_quiet_end(self, field: TimeField) -> None:
        from wtforms.validators import ValidationError

        if self.quiet_enabled.data and self.quiet_start.data and field.data == self.quiet_start.data:
            raise ValidationError(_l("Stille fra og stille til kan ikke være samme klokkeslett."))

    FIELDS = (
        "record",
        "messages",
        "reminders",
        "offers",
        "quiet_enabled",
        "quiet_start",
        "quiet_end",
        "offers_break_quiet",
    )
