"""From validated FHIR R4 resources to record items: what Varde keeps of each resource type.

Pure functions over the (already validated) resource dicts; no database here.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from app.people.nin import SYSTEM_DNR, SYSTEM_FNR
from app.record.models import ItemKind

OSLO = ZoneInfo("Europe/Oslo")
NIN_SYSTEMS = {SYSTEM_FNR, SYSTEM_DNR}
# LOINC codes of notes that summarise a visit or stay (shown as "besøksoppsummering").
VISIT_SUMMARY_CODES = {"34133-9", "18842-5", "11490-0", "81218-0", "28570-0", "74208-0"}
STORED_TYPES = {
    "Encounter",
    "Observation",
    "DiagnosticReport",
    "DocumentReference",
    "MedicationRequest",
    "Immunization",
}
_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def parse_datetime(value: str | None) -> datetime | None:
    """A FHIR date, dateTime or instant as an aware UTC datetime (a bare date is midnight in Oslo)."""
    if not value or not isinstance(value, str):
        return None  # a number where a date belongs passes fhir.resources; no date, not a crash
    try:
        m = _DATE.match(value)
        if m:
            d = date(int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1))
            return datetime.combine(d, time(), OSLO).astimezone(UTC)
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=OSLO)
        return dt.astimezone(UTC)
    except (ValueError, OverflowError):
        return None  # valid FHIR (year 0001, say) that no clock here can hold: date unknown


def concept_text(concept: dict[str, Any] | None) -> str | None:
    if not concept:
        return None
    if concept.get("text"):
        return concept["text"]
    for coding in concept.get("coding") or []:
        if coding.get("display"):
            return coding["display"]
    for coding in concept.get("coding") or []:
        if coding.get("code"):
            return coding["code"]
    return None


def first_coding(concept: dict[str, Any] | None) -> tuple[str | None, str | None]:
    for coding in (concept or {}).get("coding") or []:
        if coding.get("code"):
            return coding.get("system"), coding["code"]
    return None, None


def category_code(categories: list[dict[str, Any]] | None) -> str | None:
    for cat in categories or []:
        _system, code = first_coding(cat)
        if code:
            return CATEGORY_ALIASES.get(code, code)
    return None


# Report and observation categories from several code systems, on one small vocabulary.
CATEGORY_ALIASES = {
    "LAB": "laboratory",
    "LP29693-6": "laboratory",
    "CH": "laboratory",
    "HM": "laboratory",
    "MB": "laboratory",
    "LP29684-5": "imaging",
    "RAD": "imaging",
    "LP7839-6": "pathology",
    "PAT": "pathology",
    "SP": "pathology",
}


def human_name(names: list[dict[str, Any]] | None) -> str | None:
    for name in names or []:
        if name.get("text"):
            return name["text"]
        parts = [*(name.get("prefix") or []), *(name.get("given") or []), name.get("family") or ""]
        text = " ".join(p for p in parts if p).strip()
        if text:
            return text
    return None


def quantity(q: dict[str, Any] | None) -> dict[str, Any] | None:
    if not q or q.get("value") is None:
        return None
    return {
        "value": float(q["value"]),
        "unit": q.get("unit") or q.get("code"),
        "comparator": q.get("comparator"),
    }


def observation_value(obs: dict[str, Any]) -> dict[str, Any]:
    """value / unit / text of an Observation or one of its components."""
    if "valueQuantity" in obs:
        q = quantity(obs["valueQuantity"]) or {}
        return {"value": q.get("value"), "unit": q.get("unit"), "comparator": q.get("comparator")}
    if "valueCodeableConcept" in obs:
        return {"text": concept_text(obs["valueCodeableConcept"])}
    if "valueString" in obs:
        return {"text": obs["valueString"]}
    if "valueBoolean" in obs:
        return {"boolean": obs["valueBoolean"]}
    if "valueInteger" in obs:
        return {"value": float(obs["valueInteger"])}
    if "valueDateTime" in obs:
        return {"text": obs["valueDateTime"]}
    if "valueTime" in obs:
        return {"text": obs["valueTime"]}
    if "valueRange" in obs:
        low = quantity(obs["valueRange"].get("low")) or {}
        high = quantity(obs["valueRange"].get("high")) or {}
        return {"text": f"{low.get('value', '')}–{high.get('value', '')} {low.get('unit') or high.get('unit') or ''}"}
    if "valueRatio" in obs:
        n = quantity(obs["valueRatio"].get("numerator")) or {}
        d = quantity(obs["valueRatio"].get("denominator")) or {}
        return {"text": f"{n.get('value', '')}/{d.get('value', '')}"}
    if "valuePeriod" in obs:
        return {"text": f"{obs['valuePeriod'].get('start', '')}–{obs['valuePeriod'].get('end', '')}"}
    if "dataAbsentReason" in obs:
        return {"absent": concept_text(obs["dataAbsentReason"])}
    return {}


def reference_range(obs: dict[str, Any]) -> dict[str, Any] | None:
    for rr in obs.get("referenceRange") or []:
        low = quantity(rr.get("low"))
        high = quantity(rr.get("high"))
        out = {
            "low": low["value"] if low else None,
            "high": high["value"] if high else None,
            "text": rr.get("text"),
        }
        if any(v is not None for v in out.values()):
            return out
    return None


def interpretation(obs: dict[str, Any]) -> str | None:
    for concept in obs.get("interpretation") or []:
        _system, code = first_coding(concept)
        if code:
            return code
    return None


def annotation_text(notes: list[dict[str, Any]] | None) -> str | None:
    texts = [n.get("text") for n in notes or [] if n.get("text")]
    return "\n\n".join(texts) or None


def decode_attachment(att: dict[str, Any]) -> tuple[str | None, bytes | None]:
    """(content type, bytes) of an attachment sent inline; (type, None) when only a URL was sent."""
    content_type = (att.get("contentType") or "").split(";")[0].strip().lower() or None
    data = att.get("data")
    if not data:
        return content_type, None
    try:
        return content_type, base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        return content_type, None


def split_attachments(attachments: list[dict[str, Any]]) -> tuple[list[str], bytes | None, str | None]:
    """(texts, first binary, its content type) of inline attachments; URL-only ones are skipped."""
    texts: list[str] = []
    binary: bytes | None = None
    content_type: str | None = None
    for att in attachments:
        ctype, raw = decode_attachment(att)
        if raw is None:
            continue
        if ctype and ctype.startswith("text/"):
            texts.append(raw.decode("utf-8", errors="replace"))
        elif binary is None:
            binary, content_type = raw, ctype
    return texts, binary, content_type


@dataclass
class Mapped:
    """One resource as Varde keeps it: the item's columns, its content and its references."""

    kind: ItemKind
    source_type: str
    source_id: str
    patient_ref: str | None
    columns: dict[str, Any]
    data: dict[str, Any]
    text: str | None = None
    content_type: str | None = None
    binary: bytes | None = None
    encounter_ref: str | None = None
    result_refs: list[str] = field(default_factory=list)
    final: bool = True
    withdrawn: bool = False


class Resolver:
    """Displays for references inside one bundle (Practitioner, Organization, Location, Medication)."""

    def __init__(self, resources: list[dict[str, Any]], full_urls: list[str | None]) -> None:
        self.by_ref: dict[str, dict[str, Any]] = {}
        for resource, full_url in zip(resources, full_urls, strict=True):
            key = f"{resource['resourceType']}/{resource.get('id')}"
            self.by_ref[key] = resource
            if full_url:
                self.by_ref[full_url] = resource

    def get(self, ref: dict[str, Any] | None) -> dict[str, Any] | None:
        if not ref or not ref.get("reference"):
            return None
        return self.by_ref.get(ref["reference"])

    def display(self, ref: dict[str, Any] | None) -> str | None:
        if not ref:
            return None
        if ref.get("display"):
            return ref["display"]
        target = self.get(ref)
        if not target:
            return None
        if target["resourceType"] in ("Practitioner", "Patient", "RelatedPerson"):
            return human_name(target.get("name"))
        if target["resourceType"] == "PractitionerRole":
            return self.display(target.get("practitioner"))
        return target.get("name") or concept_text(target.get("code"))


def first_display(res: Resolver, refs: list[dict[str, Any]] | None) -> str | None:
    return next((d for d in (res.display(ref) for ref in refs or []) if d), None)


def _ref(ref: dict[str, Any] | None) -> str | None:
    return (ref or {}).get("reference")


def map_resource(r: dict[str, Any], res: Resolver) -> Mapped | None:
    """The record item for one resource, or None for types Varde does not keep."""
    rtype = r["resourceType"]
    if rtype not in STORED_TYPES:
        return None
    fn = _MAPPERS[rtype]
    return fn(r, res)


def _encounter(r: dict[str, Any], res: Resolver) -> Mapped:
    period = r.get("period") or {}
    klass = (r.get("class") or {}).get("code")
    types = r.get("type") or []
    system, code = first_coding(types[0]) if types else (None, None)
    performer = None
    for p in r.get("participant") or []:
        performer = res.display(p.get("individual"))
        if performer:
            break
    reasons = [concept_text(c) for c in r.get("reasonCode") or []]
    locations = [res.display(loc.get("location")) for loc in r.get("location") or []]
    return Mapped(
        kind=ItemKind.ENCOUNTER,
        source_type="Encounter",
        source_id=r["id"],
        patient_ref=_ref(r.get("subject")),
        columns={
            "code_system": system,
            "code": code,
            "category": klass,
            "title": (concept_text(types[0]) if types else None) or _ENCOUNTER_CLASS.get(klass or "", "Besøk"),
            "status": r["status"],
            "effective_at": parse_datetime(period.get("start")),
            "care_unit_name": res.display(r.get("serviceProvider")),
            "author_name": performer,
        },
        data={
            "class": klass,
            "end": period.get("end"),
            "reasons": [x for x in reasons if x],
            "location": next((x for x in locations if x), None),
        },
        final=r["status"] not in ("planned", "arrived", "triaged", "in-progress", "onleave"),
        withdrawn=r["status"] == "entered-in-error",
    )


_ENCOUNTER_CLASS = {"AMB": "Poliklinisk besøk", "IMP": "Innleggelse", "EMER": "Akuttbesøk", "VR": "Videokonsultasjon"}


def _observation(r: dict[str, Any], res: Resolver) -> Mapped:
    system, code = first_coding(r.get("code"))
    data: dict[str, Any] = observation_value(r)
    data["range"] = reference_range(r)
    data["interpretation"] = interpretation(r)
    data["comment"] = annotation_text(r.get("note"))
    components = []
    for c in r.get("component") or []:
        comp = observation_value(c)
        comp["title"] = concept_text(c.get("code"))
        comp["code"] = first_coding(c.get("code"))[1]
        comp["range"] = reference_range(c)
        comp["interpretation"] = interpretation(c)
        components.append(comp)
    if components:
        data["components"] = components
    effective = (
        r.get("effectiveDateTime")
        or (r.get("effectivePeriod") or {}).get("start")
        or r.get("effectiveInstant")
        or r.get("issued")
    )
    performer = first_display(res, r.get("performer"))
    return Mapped(
        kind=ItemKind.RESULT,
        source_type="Observation",
        source_id=r["id"],
        patient_ref=_ref(r.get("subject")),
        columns={
            "code_system": system,
            "code": code,
            "category": category_code(r.get("category")),
            "title": concept_text(r.get("code")) or "Prøvesvar",
            "status": r["status"],
            "effective_at": parse_datetime(effective),
            "author_name": performer,
        },
        data={k: v for k, v in data.items() if v not in (None, [], {})},
        encounter_ref=_ref(r.get("encounter")),
        final=r["status"] in ("final", "amended", "corrected"),
        withdrawn=r["status"] in ("entered-in-error", "cancelled"),
    )


def _report(r: dict[str, Any], res: Resolver) -> Mapped:
    system, code = first_coding(r.get("code"))
    text_parts, binary, content_type = split_attachments(r.get("presentedForm") or [])
    performer = first_display(res, r.get("performer"))
    return Mapped(
        kind=ItemKind.REPORT,
        source_type="DiagnosticReport",
        source_id=r["id"],
        patient_ref=_ref(r.get("subject")),
        columns={
            "code_system": system,
            "code": code,
            "category": category_code(r.get("category")),
            "title": concept_text(r.get("code")) or "Rapport",
            "status": r["status"],
            "effective_at": parse_datetime(
                r.get("effectiveDateTime") or (r.get("effectivePeriod") or {}).get("start") or r.get("issued")
            ),
            "author_name": performer,
        },
        data={
            k: v
            for k, v in {
                "conclusion": r.get("conclusion"),
                "has_file": binary is not None,
                "file_type": content_type if binary else None,
            }.items()
            if v
        },
        text="\n\n".join(text_parts) or None,
        content_type=content_type,
        binary=binary,
        encounter_ref=_ref(r.get("encounter")),
        result_refs=[x for x in (_ref(ref) for ref in r.get("result") or []) if x],
        final=r["status"] in ("final", "amended", "corrected", "appended"),
        withdrawn=r["status"] in ("entered-in-error", "cancelled"),
    )


def _document_reference(r: dict[str, Any], res: Resolver) -> Mapped:
    system, code = first_coding(r.get("type"))
    text_parts, binary, content_type = split_attachments(
        [content.get("attachment") or {} for content in r.get("content") or []]
    )
    is_note = bool(text_parts) and binary is None
    context = r.get("context") or {}
    encounters = context.get("encounter") or []
    author = first_display(res, r.get("author"))
    title = concept_text(r.get("type")) or r.get("description") or ("Notat" if is_note else "Dokument")
    return Mapped(
        kind=ItemKind.NOTE if is_note else ItemKind.DOCUMENT,
        source_type="DocumentReference",
        source_id=r["id"],
        patient_ref=_ref(r.get("subject")),
        columns={
            "code_system": system,
            "code": code,
            "category": category_code(r.get("category")),
            "title": title,
            "status": r["status"],
            "effective_at": parse_datetime(r.get("date") or (context.get("period") or {}).get("start")),
            "care_unit_name": res.display(r.get("custodian")),
            "author_name": author,
        },
        data={
            k: v
            for k, v in {
                "visit_summary": code in VISIT_SUMMARY_CODES,
                "description": r.get("description"),
                "superseded": r["status"] == "superseded",
                "size": len(binary) if binary else None,
                "file_type": content_type if binary else None,
            }.items()
            if v
        },
        text="\n\n".join(text_parts) if is_note else None,
        content_type=content_type if not is_note else "text/plain",
        binary=binary,
        encounter_ref=_ref(encounters[0]) if encounters else None,
        final=r.get("docStatus") in (None, "final", "amended"),
        withdrawn=r["status"] == "entered-in-error",
    )


def _medication_request(r: dict[str, Any], res: Resolver) -> Mapped:
    concept = r.get("medicationCodeableConcept")
    if concept is None:
        medication = res.get(r.get("medicationReference"))
        concept = (medication or {}).get("code") or {"text": (r.get("medicationReference") or {}).get("display")}
    system, code = first_coding(concept)
    dosage = "; ".join(d.get("text") for d in r.get("dosageInstruction") or [] if d.get("text"))
    reasons = [concept_text(c) for c in r.get("reasonCode") or []]
    return Mapped(
        kind=ItemKind.MEDICATION,
        source_type="MedicationRequest",
        source_id=r["id"],
        patient_ref=_ref(r.get("subject")),
        columns={
            "code_system": system,
            "code": code,
            "category": category_code(r.get("category")),
            "title": concept_text(concept) or "Legemiddel",
            "status": r["status"],
            "effective_at": parse_datetime(r.get("authoredOn")),
            "author_name": res.display(r.get("requester")),
        },
        data={k: v for k, v in {"dosage": dosage, "reasons": [x for x in reasons if x]}.items() if v},
        encounter_ref=_ref(r.get("encounter")),
        final=r["status"] != "draft",
        withdrawn=r["status"] == "entered-in-error",
    )


def _immunization(r: dict[str, Any], res: Resolver) -> Mapped:
    system, code = first_coding(r.get("vaccineCode"))
    return Mapped(
        kind=ItemKind.IMMUNIZATION,
        source_type="Immunization",
        source_id=r["id"],
        patient_ref=_ref(r.get("patient")),
        columns={
            "code_system": system,
            "code": code,
            "title": concept_text(r.get("vaccineCode")) or "Vaksine",
            "status": r["status"],
            "effective_at": parse_datetime(r.get("occurrenceDateTime")),
            "care_unit_name": res.display(r.get("location")),
            "author_name": next((res.display(p.get("actor")) for p in r.get("performer") or []), None),
        },
        data={
            k: v
            for k, v in {
                "lot": r.get("lotNumber"),
                "dose": (r.get("protocolApplied") or [{}])[0].get("doseNumberPositiveInt"),
                "not_done": r["status"] == "not-done",
            }.items()
            if v
        },
        encounter_ref=_ref(r.get("encounter")),
        withdrawn=r["status"] == "entered-in-error",
    )


_MAPPERS = {
    "Encounter": _encounter,
    "Observation": _observation,
    "DiagnosticReport": _report,
    "DocumentReference": _document_reference,
    "MedicationRequest": _medication_request,
    "Immunization": _immunization,
}
