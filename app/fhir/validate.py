"""Reading a FHIR R4 Bundle: JSON, shape, and every resource validated by fhir.resources.

fhir.resources' R4B models are used (R4B is R4 with a handful of additions; every R4 resource Varde
stores validates unchanged). The models check types, cardinality, primitives (dates, decimals, ids)
and required elements. Two things they leave to us: the required status value sets of the resources
Varde stores (checked here), and unknown elements — those are dropped with a warning in the
OperationOutcome rather than refusing the bundle, as FHIR's robustness advice for readers suggests.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError


class BundleRefused(Exception):
    """The bundle is refused whole: nothing from it is stored. ``issues`` become an OperationOutcome."""

    def __init__(self, status: int, issues: list[Issue]) -> None:
        super().__init__("; ".join(i.diagnostics for i in issues))
        self.status = status
        self.issues = issues


@dataclass
class Issue:
    severity: str  # fatal, error, warning, information
    code: str  # FHIR issue-type: invalid, structure, not-found, too-long, not-supported, ...
    diagnostics: str
    expression: list[str] = field(default_factory=list)

    def to_fhir(self) -> dict[str, Any]:
        issue: dict[str, Any] = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            issue["expression"] = self.expression
        return issue


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    if not issues:
        issues = [Issue("information", "informational", "OK")]
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}


# The required bindings of the status elements Varde relies on (FHIR R4).
REQUIRED_STATUS = {
    "Observation": {
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    },
    "DiagnosticReport": {
        "registered",
        "partial",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "appended",
        "cancelled",
        "entered-in-error",
        "unknown",
    },
    "DocumentReference": {"current", "superseded", "entered-in-error"},
    "MedicationRequest": {
        "active",
        "on-hold",
        "cancelled",
        "completed",
        "entered-in-error",
        "stopped",
        "draft",
        "unknown",
    },
    "Immunization": {"completed", "entered-in-error", "not-done"},
    "Encounter": {
        "planned",
        "arrived",
        "triaged",
        "in-progress",
        "onleave",
        "finished",
        "cancelled",
        "entered-in-error",
        "unknown",
    },
    "Appointment": {
        "proposed",
        "pending",
        "booked",
        "arrived",
        "fulfilled",
        "cancelled",
        "noshow",
        "entered-in-error",
        "checked-in",
        "waitlist",
    },
    "Slot": {"busy", "free", "busy-unavailable", "busy-tentative", "entered-in-error"},
}
BUNDLE_TYPES = {"transaction", "batch"}
METHODS = {"POST", "PUT"}


def parse_json(raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        where = f" (linje {exc.lineno}, kolonne {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise BundleRefused(400, [Issue("fatal", "structure", f"Ugyldig JSON{where}: {exc}")]) from None
    except RecursionError:
        raise BundleRefused(400, [Issue("fatal", "structure", "JSON-en er nestet for dypt.")]) from None


def check_bundle(bundle: Any, max_entries: int) -> list[dict[str, Any]]:
    """The bundle's shape: a transaction or batch Bundle within the size limit. Returns its entries."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        got = bundle.get("resourceType") if isinstance(bundle, dict) else type(bundle).__name__
        raise BundleRefused(
            400, [Issue("fatal", "structure", f"Forventet resourceType Bundle, fikk {got!r}.", ["Bundle"])]
        )
    if bundle.get("type") not in BUNDLE_TYPES:
        raise BundleRefused(
            400,
            [
                Issue(
                    "fatal",
                    "not-supported",
                    f"Bundle.type må være transaction eller batch, ikke {bundle.get('type')!r}.",
                    ["Bundle.type"],
                )
            ],
        )
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise BundleRefused(400, [Issue("fatal", "structure", "Bundle.entry må være en liste.", ["Bundle.entry"])])
    if len(entries) > max_entries:
        raise BundleRefused(
            413,
            [Issue("fatal", "too-long", f"Bundelen har {len(entries)} ressurser; grensen er {max_entries}.")],
        )
    return entries


def _drop(resource: dict[str, Any], loc: tuple[Any, ...]) -> None:
    node: Any = resource
    for part in loc[:-1]:
        node = node[part]
    if isinstance(node, dict):
        node.pop(loc[-1], None)


def _path(resource_type: str, loc: tuple[Any, ...]) -> str:
    out = resource_type
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def _limits(resource: dict[str, Any], label: str) -> list[Issue]:
    """What fhir.resources leaves open and Varde's columns need: FHIR's own id rule (64
    characters), a version id of at most 64, attachment types of at most 100 characters."""
    issues = []
    rid = resource.get("id")
    if rid is not None and not (isinstance(rid, str) and FHIR_ID.fullmatch(rid)):
        issues.append(Issue("error", "invalid", f"{label[:80]}: id må være 1–64 tegn (A–Z, a–z, 0–9, - og .).", ["id"]))
    version = (resource.get("meta") or {}).get("versionId")
    if isinstance(version, str) and len(version) > 64:
        issues.append(Issue("error", "invalid", f"{label[:80]}: meta.versionId er lengre enn 64 tegn.", ["meta"]))
    attachments = [c.get("attachment") or {} for c in resource.get("content") or [] if isinstance(c, dict)]
    attachments += [a for a in resource.get("presentedForm") or [] if isinstance(a, dict)]
    if any(len(str(a.get("contentType") or "")) > 100 for a in attachments):
        issues.append(Issue("error", "invalid", f"{label[:80]}: contentType er lengre enn 100 tegn.", ["contentType"]))
    return issues


_DATE_ERROR = re.compile(r"\b(?:Instant|DateTime|Date|Time) value string does not match spec regex")


def _message(problem: dict[str, Any]) -> str:
    """What is wrong with one element: pydantic's words, but a date or time in plain Norwegian."""
    msg = str(problem.get("msg") or "")
    is_date = str(problem.get("type", "")).startswith(("datetime_", "date_", "time_")) or bool(_DATE_ERROR.search(msg))
    if not is_date:
        return msg
    given = str(problem.get("input"))[:60]
    return (
        f"{given!r} er ikke en gyldig dato eller et gyldig tidspunkt (FHIR-format, f.eks. 2026-03-01T09:30:00+01:00)."
    )


@cache
def _model_class(resource_type: Any) -> Any:
    if not isinstance(resource_type, str):
        raise TypeError(resource_type)
    return get_fhir_model_class(resource_type)


def validate_entries(entries: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Issue]]:
    """Validate every entry's resource. Returns the resources (unknown elements dropped) and warnings.

    Raises BundleRefused (422) naming every invalid resource and what is wrong with it.
    """
    errors: list[Issue] = []
    warnings: list[Issue] = []
    resources: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        where = f"Bundle.entry[{index}]"
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            errors.append(Issue("error", "structure", f"{where} mangler resource.", [where]))
            continue
        rtype = resource.get("resourceType")
        label = f"{rtype}/{resource.get('id', '?')}"
        method = ((entry.get("request") or {}).get("method") or "POST").upper()
        if method not in METHODS:
            errors.append(
                Issue("error", "not-supported", f"{where} ({label}): metoden {method} støttes ikke.", [where])
            )
            continue
        try:
            model = _model_class(rtype)
        except (KeyError, ValueError, TypeError):
            errors.append(Issue("error", "not-supported", f"{where}: ukjent resourceType {rtype!r}.", [where]))
            continue
        for _attempt in range(4):
            try:
                model.model_validate(resource)
                break
            except ValidationError as exc:
                problems = exc.errors()
                unknown = [p for p in problems if p["type"] == "extra_forbidden"]
                if len(unknown) != len(problems):
                    for p in problems:
                        if p["type"] == "extra_forbidden":
                            continue
                        path = _path(rtype, p["loc"])
                        errors.append(Issue("error", "invalid", f"{label}: {path}: {_message(p)}", [path]))
                    break
                for p in unknown:
                    path = _path(rtype, p["loc"])
                    warnings.append(Issue("warning", "structure", f"{label}: ukjent element {path} ble utelatt."))
                    _drop(resource, p["loc"])
            except (TypeError, ValueError, KeyError, RecursionError) as exc:
                errors.append(Issue("error", "invalid", f"{label}: {str(exc)[:300]}", [where]))
                break
        errors.extend(_limits(resource, label))
        allowed = REQUIRED_STATUS.get(rtype)
        if allowed is not None and resource.get("status") not in allowed:
            errors.append(
                Issue(
                    "error",
                    "code-invalid",
                    f"{label}: {rtype}.status {resource.get('status')!r} er ikke en gyldig kode.",
                    [f"{rtype}.status"],
                )
            )
        resources.append(resource)
    if errors:
        raise BundleRefused(422, errors)
    return resources, warnings
