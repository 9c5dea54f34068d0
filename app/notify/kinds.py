"""What each kind of event is called on a lock screen, and how its push is sent.

The text is generic on purpose: it says that something arrived, never what ("Du har et nytt
prøvesvar", not which test). For a parent it says whose it is by first name only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from flask_babel import lazy_gettext as _l


class Category(StrEnum):
    """What the user chooses to get pushed (settings), one switch each."""

    RECORD = "record"  # results, notes, documents and the rest of the record
    MESSAGES = "messages"
    REMINDERS = "reminders"  # appointment reminders and changes
    OFFERS = "offers"  # earlier-appointment offers


CATEGORY_LABELS = {
    Category.RECORD: _l("Nye prøvesvar, notater og dokumenter"),
    Category.MESSAGES: _l("Nye meldinger"),
    Category.REMINDERS: _l("Påminnelser og endringer om timer"),
    Category.OFFERS: _l("Tilbud om tidligere time"),
}


@dataclass(frozen=True)
class Kind:
    category: Category
    own: object  # lazy text for the person themselves
    other: object  # lazy text with %(name)s: a child's first name
    topic: str  # the push service replaces an undelivered push with the same Topic (RFC 8030 § 5.4)
    ttl: timedelta  # how long the push service keeps it for an offline device (never 0)
    urgency: str = "normal"  # RFC 8030 § 5.3: very-low, low, normal, high

    @property
    def tag(self) -> str:
        """The service worker's tag: one notification per kind on the device, replaced by the next."""
        return f"varde-{self.topic}"

    @property
    def breaks_quiet(self) -> bool:
        return self.category is Category.OFFERS


_RESULT = Kind(
    Category.RECORD,
    _l("Du har et nytt prøvesvar"),
    _l("%(name)s har et nytt prøvesvar"),
    "results",
    timedelta(days=3),
)
_DEFAULT = Kind(
    Category.RECORD,
    _l("Det er nytt i journalen din"),
    _l("Det er nytt i journalen til %(name)s"),
    "record",
    timedelta(days=3),
)

KINDS: dict[str, Kind] = {
    "result_released": _RESULT,
    "note_released": Kind(
        Category.RECORD, _l("Du har et nytt notat"), _l("%(name)s har et nytt notat"), "notes", timedelta(days=3)
    ),
    "document_released": Kind(
        Category.RECORD,
        _l("Du har et nytt dokument"),
        _l("%(name)s har et nytt dokument"),
        "documents",
        timedelta(days=3),
    ),
    # The organisation answered a request for a copy of the record (app/record/copies.py).
    "copy_answered": Kind(
        Category.RECORD,
        _l("Kopien av journalen din er klar"),
        _l("Kopien av journalen til %(name)s er klar"),
        "documents",
        timedelta(days=3),
    ),
    "copy_refused": Kind(
        Category.RECORD,
        _l("Du har fått svar på forespørselen om kopi av journalen"),
        _l("%(name)s har fått svar på forespørselen om kopi av journalen"),
        "documents",
        timedelta(days=3),
    ),
    "medication_changed": _DEFAULT,
    "immunization_added": _DEFAULT,
    "visit_added": _DEFAULT,
    "message_received": Kind(
        Category.MESSAGES, _l("Du har en ny melding"), _l("%(name)s har en ny melding"), "messages", timedelta(days=3)
    ),
    "appointment_reminder": Kind(
        Category.REMINDERS,
        _l("Du har en time snart"),
        _l("%(name)s har en time snart"),
        "reminders",
        timedelta(hours=12),
    ),
    "appointment_changed": Kind(
        Category.REMINDERS,
        _l("En av timene dine er endret"),
        _l("En av timene til %(name)s er endret"),
        "appointments",
        timedelta(days=1),
    ),
    "appointment_booked": Kind(
        Category.REMINDERS,
        _l("Du har fått en ny time"),
        _l("%(name)s har fått en ny time"),
        "appointments",
        timedelta(days=1),
    ),
    "appointment_offer": Kind(
        Category.OFFERS,
        _l("Du kan få en tidligere time"),
        _l("%(name)s kan få en tidligere time"),
        "offers",
        timedelta(hours=2),  # replaced by the offer's own expiry
        urgency="high",
    ),
    # A month before a child turns 12 or 16 (app/people/notices.py): what a parent may see changes.
    "access_changes_soon": Kind(
        Category.RECORD,
        _l("Tilgangen til journalen din endres snart"),
        _l("Tilgangen til journalen til %(name)s endres snart"),
        "access",
        timedelta(days=3),
    ),
}


def kind_of(name: str) -> Kind:
    return KINDS.get(name, _DEFAULT)


def text_for(kind: str, first_name: str | None = None) -> str:
    """The generic line for a notification, in the current language; with a child's first name
    when it is about someone else."""
    spec = kind_of(kind)
    return str(spec.other % {"name": first_name}) if first_name else str(spec.own)
