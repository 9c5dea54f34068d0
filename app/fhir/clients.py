"""Source systems and their tokens. A token is shown once; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select

from app.db import db
from app.people.models import Organisation
from app.record.models import FhirClient


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_client(organisation: Organisation, name: str, source_system: str) -> tuple[FhirClient, str]:
    """A new source system for ``organisation``. Returns the client and its token (shown once)."""
    token = "vfh_" + secrets.token_urlsafe(32)
    client = FhirClient(organisation=organisation, name=name, source_system=source_system, token_hash=token_hash(token))
    db.session.add(client)
    return client, token


def client_for_token(token: str) -> FhirClient | None:
    if not token:
        return None
    return db.session.scalar(
        select(FhirClient).where(FhirClient.token_hash == token_hash(token), FhirClient.active.is_(True))
    )
