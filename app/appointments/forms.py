"""Forms of the appointment pages."""

from __future__ import annotations

from datetime import time

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, SelectField, SelectMultipleField, StringField, widgets
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional, ValidationError

from app.appointments.models import Mode
from app.appointments.scheduling import Pattern, ScheduleData
from app.appointments.services import Wish
from app.notify.forms import ClockField

WEEKDAYS = [
    SelectChoice("0", _l("mandag")),
    SelectChoice("1", _l("tirsdag")),
    SelectChoice("2", _l("onsdag")),
    SelectChoice("3", _l("torsdag")),
    SelectChoice("4", _l("fredag")),
    SelectChoice("5", _l("lørdag")),
    SelectChoice("6", _l("søndag")),
]
NOTICE = [
    SelectChoice("2", _l("2 timer")),
    SelectChoice("6", _l("6 timer")),
    SelectChoice("24", _l("1 døgn")),
    SelectChoice("48", _l("2 døgn")),
    SelectChoice("72", _l("3 døgn")),
    SelectChoice("168", _l("1 uke")),
]


class CheckboxesField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()

    def pre_validate(self, form: object) -> None:
        # WTForms' own message is English and names the values; only a forged form gets here.
        choices = {str(choice.value) for choice in self.choices}  # type: ignore[union-attr]
        if any(str(value) not in choices for value in self.data or ()):
            raise ValidationError(_l("Velg bare blant dagene i listen."))


class WishForm(FlaskForm):
    """ "Jeg vil ha en tidligere time": the days and hours the patient can come, and the notice."""

    days = CheckboxesField(_l("Dager du kan komme"), choices=WEEKDAYS, default=["0", "1", "2", "3", "4"])
    earliest = ClockField(
        _l("Fra klokken"),
        default=time(8, 0),
        validators=[InputRequired(_l("Skriv inn et klokkeslett, for eksempel 08:00."))],
    )
    latest = ClockField(
        _l("Til klokken"),
        default=time(16, 0),
        validators=[InputRequired(_l("Skriv inn et klokkeslett, for eksempel 16:00."))],
    )
    notice_hours = SelectField(_l("Hvor kort varsel kan du ta?"), choices=NOTICE, default="24")

    def validate_days(self, field: CheckboxesField) -> None:
        if not field.data:
            raise ValidationError(_l("Velg minst én dag du kan komme."))

    def validate_latest(self, field: ClockField) -> None:
        if self.earliest.data and field.data and field.data <= self.earliest.data:
            raise ValidationError(_l("«Til klokken» må være senere enn «fra klokken»."))

    def wish(self) -> Wish:
        weekdays = 0
        for day in self.days.data or []:
            weekdays |= 1 << int(day)
        return Wish(weekdays, self.earliest.data, self.latest.data, int(self.notice_hours.data))


class CancelForm(FlaskForm):
    reason = StringField(
        _l("Hvorfor avbestilles timen?"),
        validators=[InputRequired(_l("Skriv hvorfor timen avbestilles. Pasienten får beskjed.")), Length(max=300)],
    )


class PriorityForm(FlaskForm):
    priority = IntegerField(
        _l("Prioritet"),
        validators=[
            InputRequired(_l("Skriv inn et tall fra 0 til 9.")),
            NumberRange(0, 9, _l("Skriv inn et tall fra 0 til 9.")),
        ],
    )


class ScheduleForm(FlaskForm):
    name = StringField(
        _l("Navn på kalenderen"), validators=[InputRequired(_l("Gi kalenderen et navn.")), Length(max=200)]
    )
    practitioner = StringField(_l("Hvem pasienten møter (valgfritt)"), validators=[Optional(), Length(max=200)])
    location = SelectField(_l("Sted"), choices=[], validate_choice=True)
    days = CheckboxesField(_l("Åpne dager"), choices=WEEKDAYS, default=["0", "1", "2", "3", "4"])
    opens = ClockField(_l("Åpner"), validators=[InputRequired(_l("Skriv inn et klokkeslett, for eksempel 08:00."))])
    closes = ClockField(_l("Stenger"), validators=[InputRequired(_l("Skriv inn et klokkeslett, for eksempel 15:30."))])

    def validate_days(self, field: CheckboxesField) -> None:
        if not field.data:
            raise ValidationError(_l("Velg minst én dag."))

    def validate_closes(self, field: ClockField) -> None:
        if self.opens.data and field.data and field.data <= self.opens.data:
            raise ValidationError(_l("«Stenger» må være senere enn «åpner»."))

    def data_for_schedule(self) -> ScheduleData:
        return ScheduleData(
            self.name.data,
            self.practitioner.data,
            int(self.location.data) if self.location.data else None,
            [int(d) for d in self.days.data],
            self.opens.data,
            self.closes.data,
        )


class SlotsForm(FlaskForm):
    visit_type = SelectField(_l("Timetype"), choices=[], validate_choice=True)
    first = DateField(_l("Første dag"), validators=[InputRequired(_l("Skriv inn en dato."))])
    last = DateField(_l("Siste dag"), validators=[InputRequired(_l("Skriv inn en dato."))])
    days = CheckboxesField(_l("Dager"), choices=WEEKDAYS, default=["0", "1", "2", "3", "4"])
    start = ClockField(
        _l("Fra klokken"), validators=[InputRequired(_l("Skriv inn et klokkeslett, for eksempel 08:00."))]
    )
    end = ClockField(_l("Til klokken"), validators=[InputRequired(_l("Skriv inn et klokkeslett, for eksempel 15:00."))])
    minutes = IntegerField(
        _l("Lengde i minutter"),
        default=30,
        validators=[
            InputRequired(_l("Skriv inn lengden i minutter.")),
            NumberRange(5, 480, _l("Lengden må være mellom 5 og 480 minutter.")),
        ],
    )
    mode = SelectField(
        _l("Oppmøte, video eller telefon"),
        choices=[
            SelectChoice("in_person", _l("Oppmøte")),
            SelectChoice("video", _l("Video")),
            SelectChoice("phone", _l("Telefon")),
        ],
        default="in_person",
    )

    def validate_days(self, field: CheckboxesField) -> None:
        if not field.data:
            raise ValidationError(_l("Velg minst én dag."))

    def pattern(self) -> Pattern:
        return Pattern(
            int(self.visit_type.data),
            self.first.data,
            self.last.data,
            [int(d) for d in self.days.data],
            self.start.data,
            self.end.data,
            self.minutes.data,
            Mode(self.mode.data),
        )
