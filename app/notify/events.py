"""The one seam between a change and its delivery: ``emit`` adds an event row to the current
transaction. Whoever changes the record calls it before committing; nothing is sent from here."""

from __future__ import annotations

from app.db import db
from app.notify.models import Event


def emit(
    person_id: int, kind: str, *, object_type: str | None = None, object_id: int | None = None, url: str | None = None
) -> Event:
    event = Event(person_id=person_id, kind=kind, object_type=object_type, object_id=object_id, url=url)
    db.session.add(event)
    return event
