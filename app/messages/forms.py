"""Forms of the message pages. The services check everything again; these give each field its
own message next to it."""

from __future__ import annotations

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    IntegerField,
    MultipleFileField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp, ValidationError
from wtforms.widgets import HiddenInput

from app.messages.models import TOPIC_LABELS, Topic
from app.messages.services import Upload


def _text_limit(form: FlaskForm, field: TextAreaField) -> None:
    limit = current_app.config["MESSAGE_MAX_CHARS"]
    used = len((field.data or "").replace("\r\n", "\n").strip())
    if used > limit:
        raise ValidationError(
            _("Meldingen er for lang: %(n)s tegn. Den kan være høyst %(max)s tegn.", n=used, max=limit)
        )


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class _WithFiles(FlaskForm):
    files = MultipleFileField(_l("Legg ved bilder eller PDF (valgfritt)"))

    def uploads(self) -> list[Upload]:
        """The chosen files, each read up to one byte past the limit (so "too large" is known
        without reading more)."""
        limit = current_app.config["MESSAGE_ATTACHMENT_MAX_BYTES"]
        out = []
        for storage in self.files.data or []:
            if storage is None or not getattr(storage, "filename", None):
                continue
            out.append(Upload(storage.filename, storage.stream.read(limit + 1)))
        return out


def _body() -> TextAreaField:
    return TextAreaField(
        _l("Melding"),
        filters=[_strip],
        validators=[DataRequired(_l("Skriv meldingen før du sender den.")), _text_limit],
    )


class ReplyForm(_WithFiles):
    body = _body()


class StaffReplyForm(ReplyForm):
    close = BooleanField(_l("Avslutt samtalen med dette svaret"))
    # The last message the page showed: an answer is refused if the patient wrote after it.
    seen = IntegerField(widget=HiddenInput(), validators=[Optional()])


class TopicField(RadioField):
    def pre_validate(self, form: FlaskForm) -> None:
        if self.data not in {t.value for t in Topic}:
            raise ValidationError(_("Velg hva meldingen gjelder."))


class EarlierField(SelectField):
    def pre_validate(self, form: FlaskForm) -> None:
        if self.data and self.data not in {str(c.value) for c in self.choices}:  # type: ignore[union-attr]
            raise ValidationError(_("Velg en av dine tidligere samtaler, eller ingen."))


class NewConversationForm(ReplyForm):
    topic = TopicField(
        _l("Hva gjelder det?"),
        choices=[SelectChoice(t.value, TOPIC_LABELS[t]) for t in Topic],
        validators=[InputRequired(_l("Velg hva meldingen gjelder."))],
    )
    subject = StringField(
        _l("Overskrift"),
        filters=[_strip],
        validators=[
            DataRequired(_l("Skriv en kort overskrift.")),
            Length(max=120, message=_l("Overskriften kan være høyst 120 tegn.")),
        ],
    )
    body = _body()  # again, after the heading: the error summary lists fields in the page's order
    refers_to = EarlierField(_l("Gjelder det en tidligere samtale? (valgfritt)"), coerce=str, validators=[Optional()])


class AssignForm(FlaskForm):
    to = SelectField(_l("Gi samtalen til"), coerce=str)


class InboxSettingsForm(FlaskForm):
    accepts_messages = BooleanField(_l("Enheten tar imot meldinger fra pasienter"))
    answer_days = IntegerField(
        _l("Svarfrist i virkedager"),
        validators=[
            InputRequired(_l("Skriv hvor mange virkedager pasienten må vente på svar.")),
            NumberRange(min=1, max=30, message=_l("Svarfristen må være mellom 1 og 30 virkedager.")),
        ],
    )
    info = TextAreaField(
        _l("Tekst til pasienten (valgfritt)"),
        filters=[_strip],
        validators=[Optional(), Length(max=500, message=_l("Teksten kan være høyst 500 tegn."))],
    )
    phone = StringField(
        _l("Telefonnummer (valgfritt)"),
        filters=[_strip],
        validators=[
            Optional(),
            Regexp(r"^\+?[0-9 ]{8,20}$", message=_l("Skriv telefonnummeret med sifre, for eksempel 73 52 00 00.")),
        ],
    )


class TemplateForm(FlaskForm):
    title = StringField(
        _l("Navn på malen"),
        filters=[_strip],
        validators=[
            DataRequired(_l("Gi malen et navn.")),
            Length(max=100, message=_l("Navnet kan være høyst 100 tegn.")),
        ],
    )
    body = TextAreaField(
        _l("Tekst"), filters=[_strip], validators=[DataRequired(_l("Skriv teksten i malen.")), _text_limit]
    )
