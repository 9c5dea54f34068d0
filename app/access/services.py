"""Writing the audit log. The access policy itself arrives with the health record and uses this."""

from __future__ import annotations

from flask import has_request_context, request

from app.access.models import AuditEvent
from app.db import db


def audit(
    action: str,
    *,
    actor_user_id: int | None,
    subject_person_id: int | None = None,
    on_behalf_of_person_id: int | None = None,
    object_type: str | None = None,
    object_id: str | int | None = None,
    outcome: str = "ok",
    basis: str | None = None,
    organisation_id: int | None = None,
) -> AuditEvent:
    """Add an audit row to the current transaction (the caller commits with its own change)."""
    event = AuditEvent(
        action=action,
        actor_user_id=actor_user_id,
        subject_person_id=subject_person_id,
        on_behalf_of_person_id=on_behalf_of_person_id,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        outcome=outcome,
        basis=basis,
        organisation_id=organisation_id,
        ip=request.remote_addr if has_request_context() else None,
    )
    db.session.add(event)
    return event
