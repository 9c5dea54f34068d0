"""Forms of the record pages: asking for a copy of the record (innsyn, pbrl. § 5-1), and the
staff's answer to it. Each field says what is wrong next to it, in words the user reads."""

from __future__ import annotations

from datetime import date

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import DateField, RadioField, SelectField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from app import clock

PART_MAX_CHARS = 1000
ANSWER_MAX_CHARS = 2000


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def _part_limit(form: FlaskForm, field: TextAreaField) -> None:
    used = len((field.data or "").replace("\r\n", "\n"))
    if used > PART_MAX_CHARS:
        raise ValidationError(
            _("Beskrivelsen er for lang: %(n)s tegn. Den kan være høyst %(max)s tegn.", n=used, max=PART_MAX_CHARS)
        )


class _Date(DateField):
    """A date as the browser's date picker sends it (2025-03-01), or as typed (01.03.2025)."""

    def __init__(self, label: object, **kwargs: object) -> None:
        super().__init__(
            label,
            format=["%Y-%m-%d", "%d.%m.%Y"],
            invalid_value_message=_l("Skriv datoen som dag.måned.år, for eksempel 01.03.2024."),
            **kwargs,  # type: ignore[arg-type]
        )


class CopyRequestForm(FlaskForm):
    """The patient asks one organisation for a copy of the whole record or a part of it."""

    organisation = SelectField(
        _l("Hvem vil du ha kopi fra?"),
        coerce=str,
        validate_choice=False,  # checked below, with a message of our own
    )
    scope = RadioField(
        _l("Hva vil du ha kopi av?"),
        choices=[
            SelectChoice("whole", _l("Hele journalen")),
            SelectChoice("part", _l("Deler av journalen")),
        ],
        default="whole",
        validators=[InputRequired(_l("Velg om du vil ha hele journalen eller deler av den."))],
        invalid_choice_message=_l("Velg om du vil ha hele journalen eller deler av den."),
    )
    part_text = TextAreaField(
        _l("Hvilke deler av journalen?"),
        filters=[_strip],
        # Not Length: its maxlength attribute would cut a pasted text short without a word; the
        # page counts as one types and says how much is too much (varde.js).
        validators=[_part_limit],
    )
    period_from = _Date(_l("Fra dato (valgfritt)"), validators=[Optional()])
    period_to = _Date(_l("Til dato (valgfritt)"), validators=[Optional()])

    def set_organisations(self, near: list[tuple[int, str]], others: list[tuple[int, str]]) -> None:
        """The choices: where the patient has been first, then every other organisation."""
        choices = [SelectChoice("", _("Velg virksomhet"))]
        near_group, other_group = _("Der du har vært"), _("Andre virksomheter")
        choices += [SelectChoice(str(oid), name, optgroup=near_group if others else None) for oid, name in near]
        choices += [SelectChoice(str(oid), name, optgroup=other_group if near else None) for oid, name in others]
        self.organisation.choices = choices
        self._organisation_ids = {oid for oid, _name in near + others}

    @property
    def organisation_id(self) -> int | None:
        value = self.organisation.data or ""
        return int(value) if value.isdigit() else None

    @property
    def whole_record(self) -> bool:
        return self.scope.data != "part"

    def validate(self, extra_validators: dict | None = None) -> bool:
        super().validate(extra_validators)
        if self.whole_record:
            # The part's fields are hidden when the whole record is chosen: what they hold is ignored.
            for f in (self.part_text, self.period_from, self.period_to):
                f.errors = []
        return not self.errors

    def validate_organisation(self, field: SelectField) -> None:
        if self.organisation_id is None or self.organisation_id not in getattr(self, "_organisation_ids", set()):
            raise ValidationError(_("Velg hvem du vil ha kopi fra."))

    def validate_part_text(self, field: TextAreaField) -> None:
        if self.scope.data == "part" and not field.data:
            raise ValidationError(
                _("Skriv hvilke deler av journalen du vil ha kopi av, for eksempel «røntgen av kneet i 2024».")
            )

    def validate_period_from(self, field: DateField) -> None:
        if field.data and field.data > clock.today_in_norway():
            raise ValidationError(_("Fra-datoen kan ikke være fram i tid."))

    def validate_period_to(self, field: DateField) -> None:
        if not field.data:
            return
        if field.data > clock.today_in_norway():
            raise ValidationError(_("Til-datoen kan ikke være fram i tid."))
        start: date | None = self.period_from.data
        if start and not self.period_from.errors and start > field.data:
            raise ValidationError(_("Til-datoen kan ikke være før fra-datoen."))


class AnswerCopyForm(FlaskForm):
    """Staff send the copy: one PDF, and a covering text if they like."""

    document = FileField(_l("Kopien som PDF"), render_kw={"accept": "application/pdf,.pdf"})
    answer_text = TextAreaField(
        _l("Følgebrev til pasienten (valgfritt)"),
        filters=[_strip],
        render_kw={"rows": 6},
        validators=[
            Length(max=ANSWER_MAX_CHARS, message=_l("Teksten kan være høyst %(max)s tegn.", max=ANSWER_MAX_CHARS))
        ],
    )

    def validate_document(self, field: FileField) -> None:
        if field.data is None or not getattr(field.data, "filename", None):
            raise ValidationError(_("Velg PDF-filen med kopien."))

    def upload(self) -> tuple[str, bytes]:
        """The chosen file's name and bytes, read up to one byte past the limit (so "too large" is
        known without reading more)."""
        limit = current_app.config["MESSAGE_ATTACHMENT_MAX_BYTES"]
        storage = self.document.data
        return storage.filename, storage.stream.read(limit + 1)


class RefuseCopyForm(FlaskForm):
    """Staff refuse the request (in whole), with the reason the patient reads."""

    reason = TextAreaField(
        _l("Begrunnelse til pasienten"),
        filters=[_strip],
        render_kw={"rows": 6},
        validators=[
            DataRequired(_l("Skriv hvorfor forespørselen avslås. Pasienten ser begrunnelsen.")),
            Length(max=ANSWER_MAX_CHARS, message=_l("Begrunnelsen kan være høyst %(max)s tegn.", max=ANSWER_MAX_CHARS)),
        ],
    )
