"""The patient's record as a FHIR R4 Bundle: what they may see, as the sources sent it.

Each item is exported as the resource Varde received (``record_content.resource``), its patient
reference pointing at the Patient in the bundle. Items written in Varde (visit summaries) are
exported as the DocumentReference Varde made for them when signed.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from sqlalchemy import select

from app import clock
from app.access.policy import Decision
from app.db import db
from app.people.models import Person
from app.people.nin import nin_system
from app.record import services
from app.record.models import RecordContent, RecordItem

PATIENT_KEYS = ("subject", "patient")


def patient_resource(person: Person) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": f"varde-{person.id}",
        "identifier": [{"system": nin_system(person.national_id), "value": person.national_id}],
        "name": [{"family": person.family_name, "given": [person.given_name]}],
        "birthDate": person.birth_date.isoformat(),
    }


def record_bundle(decision: Decision, person: Person) -> dict[str, Any]:
    patient = patient_resource(person)
    patient_url = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'varde-patient-' + str(person.id))}"
    entries: list[dict[str, Any]] = [{"fullUrl": patient_url, "resource": patient}]
    items = list(
        db.session.scalars(
            select(RecordItem)
            .where(RecordItem.person_id == person.id, decision.items)
            .order_by(RecordItem.effective_at, RecordItem.id)
        )
    )
    contents = services.contents([i.id for i in items])
    for item in items:
        content = contents.get(item.id)
        resource = dict(content.resource) if content and content.resource else _made_here(item, content)
        for key in PATIENT_KEYS:
            if key in resource:
                resource[key] = {"reference": patient_url}
        entries.append(
            {"fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'varde-item-{item.id}')}", "resource": resource}
        )
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": clock.utcnow().isoformat(timespec="seconds"),
        "total": len(entries),
        "entry": entries,
    }


def _made_here(item: RecordItem, content: RecordContent | None) -> dict[str, Any]:
    text = (content.text if content else None) or ""
    return {
        "resourceType": "DocumentReference",
        "id": item.source_id,
        "status": "current",
        "docStatus": "final",
        "type": {"coding": [{"system": item.code_system, "code": item.code}], "text": item.title}
        if item.code
        else {"text": item.title},
        "subject": {},
        **({"date": item.effective_at.isoformat()} if item.effective_at else {}),
        "author": [{"display": item.author_name}] if item.author_name else [],
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "data": base64.b64encode(text.encode()).decode(),
                }
            }
        ],
    }
