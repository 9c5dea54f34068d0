"""FHIR R4 transaction bundles the project generates itself: believable Norwegian records for the demo,
the tests and the benchmarks, sent through the same ingest as a hospital's.

``record_bundle(person, ...)`` gives visits, lab reports with their results, vital signs, notes and
visit summaries, medications, immunizations and a PDF letter over a span of years.
"""

from __future__ import annotations

import base64
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.people.models import Person
from app.people.nin import nin_system

LOINC = "http://loinc.org"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERP = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


@dataclass(frozen=True)
class LabTest:
    code: str
    name: str
    unit: str
    low: float | None
    high: float | None
    mean: float
    sd: float
    decimals: int = 1


LAB_TESTS = [
    LabTest("718-7", "Hemoglobin (Hb)", "g/dL", 11.7, 15.3, 13.4, 1.1),
    LabTest("1988-5", "CRP", "mg/L", None, 5, 3, 4, 0),
    LabTest("4548-4", "HbA1c", "mmol/mol", 20, 42, 44, 6, 0),
    LabTest("2160-0", "Kreatinin", "µmol/L", 45, 90, 72, 12, 0),
    LabTest("2823-3", "Kalium", "mmol/L", 3.5, 4.4, 4.0, 0.3),
    LabTest("2951-2", "Natrium", "mmol/L", 137, 145, 140, 2, 0),
    LabTest("6690-2", "Leukocytter", "10^9/L", 3.5, 10, 6.5, 1.8),
    LabTest("777-3", "Trombocytter", "10^9/L", 165, 387, 260, 50, 0),
    LabTest("1742-6", "ALAT", "U/L", 10, 45, 28, 10, 0),
    LabTest("3016-3", "TSH", "mIE/L", 0.5, 3.6, 1.9, 0.7),
    LabTest("2276-4", "Ferritin", "µg/L", 10, 167, 60, 35, 0),
    LabTest("2093-3", "Kolesterol, total", "mmol/L", None, 5, 5.2, 0.8),
    LabTest("13457-7", "LDL-kolesterol", "mmol/L", None, 3, 3.1, 0.7),
    LabTest("62238-1", "eGFR", "mL/min/1,73m²", 60, None, 88, 12, 0),
]
PANELS = [
    ("58410-2", "Blodstatus", ["718-7", "6690-2", "777-3"]),
    ("24323-8", "Elektrolytter og nyrefunksjon", ["2951-2", "2823-3", "2160-0", "62238-1"]),
    ("57698-3", "Lipidstatus", ["2093-3", "13457-7"]),
    ("24325-3", "Leverprøver", ["1742-6"]),
    ("4548-4", "Diabeteskontroll", ["4548-4", "1988-5"]),
    ("3016-3", "Stoffskifte", ["3016-3", "2276-4"]),
]
NOTE_TYPES = [
    ("11506-3", "Poliklinisk notat", False),
    ("34133-9", "Oppsummering etter besøk", True),
    ("18842-5", "Epikrise", True),
    ("11488-4", "Henvisning", False),
    ("34746-8", "Sykepleienotat", False),
]
NOTE_TEXT = [
    "Kontroll etter oppstart med ny medisin. Pasienten forteller om bedre søvn og mer overskudd. "
    "Blodtrykket er {bp}. Vi fortsetter som før og tar nye blodprøver om tre måneder.",
    "Pasienten kom til avtalt time. Vi gikk gjennom prøvesvarene sammen. Langtidsblodsukkeret er "
    "litt høyt. Vi ble enige om mer fysisk aktivitet og ny kontroll hos fastlegen.",
    "Samtale om kosthold og trening. Pasienten ønsker å prøve i tre måneder før vi vurderer å "
    "øke dosen. Ta kontakt hvis du får vondt i brystet eller blir tung i pusten.",
    "Innlagt for observasjon etter fall hjemme. Røntgen viste ikke brudd. Utskrevet til hjemmet "
    "samme dag. Hjemmetjenesten er varslet og kommer på besøk i morgen.",
]
MEDICATIONS = [
    ("A10BA02", "Metformin 500 mg tablett", "1 tablett morgen og kveld til måltid"),
    ("C10AA05", "Atorvastatin 20 mg tablett", "1 tablett om kvelden"),
    ("N02BE01", "Paracetamol 500 mg tablett", "1–2 tabletter ved behov, høyst 8 i døgnet"),
    ("C09AA05", "Ramipril 5 mg tablett", "1 tablett om morgenen"),
    ("R03AC02", "Salbutamol inhalasjonsspray", "1–2 drag ved behov"),
]
VACCINES = [
    ("FLU", "Influensavaksine"),
    ("COVID", "Koronavaksine (Comirnaty)"),
    ("DTP", "Difteri, stivkrampe og kikhoste (boosterdose)"),
    ("PNEU", "Pneumokokkvaksine"),
]
ATC = "http://www.whocc.no/atc"


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="seconds")


def minimal_pdf(title: str) -> bytes:
    """A one-page PDF saying ``title`` (ASCII), built by hand so the demo needs no PDF library."""
    text = title.encode("latin-1", "replace").replace(b"(", b"[").replace(b")", b"]")
    stream = b"BT /F1 18 Tf 72 720 Td (" + text + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


class BundleMaker:
    def __init__(self, person: Person, *, prefix: str, seed: int = 1, now: datetime | None = None) -> None:
        self.person = person
        self.prefix = prefix
        self.rng = random.Random(seed)
        self.now = now or datetime.now(UTC)
        self.entries: list[dict[str, Any]] = []
        self.counter = 0
        self.patient_url = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{prefix}-patient-{person.id}')}"
        system = nin_system(person.national_id)
        self._add(
            {
                "resourceType": "Patient",
                "id": f"{prefix}-p{person.id}",
                "identifier": [{"system": system, "value": person.national_id}],
                "name": [{"family": person.family_name, "given": [person.given_name]}],
                "birthDate": person.birth_date.isoformat(),
            },
            self.patient_url,
        )

    def _id(self, kind: str) -> str:
        self.counter += 1
        return f"{self.prefix}-{kind}-{self.person.id}-{self.counter}"

    def _add(self, resource: dict[str, Any], full_url: str | None = None) -> str:
        full_url = full_url or f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, resource['id'])}"
        self.entries.append(
            {
                "fullUrl": full_url,
                "resource": resource,
                "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
            }
        )
        return full_url

    def subject(self) -> dict[str, str]:
        return {"reference": self.patient_url}

    def encounter(self, when: datetime, title: str, unit: str, doctor: str, klass: str = "AMB") -> str:
        return self._add(
            {
                "resourceType": "Encounter",
                "id": self._id("enc"),
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": klass},
                "type": [{"text": title}],
                "subject": self.subject(),
                "participant": [{"individual": {"display": doctor}}],
                "period": {"start": _iso(when), "end": _iso(when + timedelta(minutes=30))},
                "serviceProvider": {"display": unit},
            }
        )

    def lab_value(self, test: LabTest, drift: float = 0.0) -> float:
        value = self.rng.gauss(test.mean + drift * test.sd, test.sd)
        value = max(value, test.mean * 0.2)
        return round(value, test.decimals)

    def observation(
        self, test: LabTest, when: datetime, encounter: str | None, *, status: str = "final", comment: str | None = None
    ) -> str:
        value = self.lab_value(test)
        flag = None
        if test.high is not None and value > test.high:
            flag = "H"
        elif test.low is not None and value < test.low:
            flag = "L"
        rr: dict[str, Any] = {}
        if test.low is not None:
            rr["low"] = {"value": test.low, "unit": test.unit}
        if test.high is not None:
            rr["high"] = {"value": test.high, "unit": test.unit}
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "id": self._id("obs"),
            "status": status,
            "category": [{"coding": [{"system": OBS_CAT, "code": "laboratory"}]}],
            "code": {"coding": [{"system": LOINC, "code": test.code, "display": test.name}], "text": test.name},
            "subject": self.subject(),
            "effectiveDateTime": _iso(when),
            "issued": _iso(when + timedelta(hours=4)),
            "valueQuantity": {"value": value, "unit": test.unit},
            "referenceRange": [rr] if rr else [],
        }
        if encounter:
            resource["encounter"] = {"reference": encounter}
        if flag:
            resource["interpretation"] = [{"coding": [{"system": INTERP, "code": flag}]}]
        if comment:
            resource["note"] = [{"text": comment}]
        if not resource["referenceRange"]:
            del resource["referenceRange"]
        return self._add(resource)

    def report(self, panel: tuple[str, str, list[str]], when: datetime, encounter: str | None, **kw: Any) -> str:
        code, name, tests = panel
        by_code = {t.code: t for t in LAB_TESTS}
        results = [self.observation(by_code[c], when, encounter, **kw) for c in tests]
        return self._add(
            {
                "resourceType": "DiagnosticReport",
                "id": self._id("rep"),
                "status": kw.get("status", "final"),
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}],
                "code": {"coding": [{"system": LOINC, "code": code}], "text": name},
                "subject": self.subject(),
                "effectiveDateTime": _iso(when),
                "issued": _iso(when + timedelta(hours=4)),
                "result": [{"reference": r} for r in results],
                **({"encounter": {"reference": encounter}} if encounter else {}),
            }
        )

    def blood_pressure(self, when: datetime, encounter: str | None) -> str:
        sys_, dia = round(self.rng.gauss(132, 12)), round(self.rng.gauss(82, 8))

        def comp(code: str, name: str, value: int, high: int) -> dict[str, Any]:
            return {
                "code": {"coding": [{"system": LOINC, "code": code}], "text": name},
                "valueQuantity": {"value": value, "unit": "mmHg"},
                "referenceRange": [{"high": {"value": high, "unit": "mmHg"}}],
            }

        return self._add(
            {
                "resourceType": "Observation",
                "id": self._id("bp"),
                "status": "final",
                "category": [{"coding": [{"system": OBS_CAT, "code": "vital-signs"}]}],
                "code": {"coding": [{"system": LOINC, "code": "85354-9"}], "text": "Blodtrykk"},
                "subject": self.subject(),
                "effectiveDateTime": _iso(when),
                "component": [comp("8480-6", "Systolisk", sys_, 140), comp("8462-4", "Diastolisk", dia, 90)],
                **({"encounter": {"reference": encounter}} if encounter else {}),
            }
        )

    def note(self, when: datetime, encounter: str | None, author: str, unit: str, kind: int | None = None) -> str:
        code, title, _summary = NOTE_TYPES[kind if kind is not None else self.rng.randrange(len(NOTE_TYPES))]
        text = self.rng.choice(NOTE_TEXT).format(bp=f"{round(self.rng.gauss(132, 10))}/{round(self.rng.gauss(82, 6))}")
        return self._add(
            {
                "resourceType": "DocumentReference",
                "id": self._id("doc"),
                "status": "current",
                "docStatus": "final",
                "type": {"coding": [{"system": LOINC, "code": code}], "text": title},
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
                                "code": "clinical-note",
                            }
                        ]
                    }
                ],
                "subject": self.subject(),
                "date": _iso(when),
                "author": [{"display": author}],
                "custodian": {"display": unit},
                "content": [
                    {
                        "attachment": {
                            "contentType": "text/plain; charset=utf-8",
                            "data": base64.b64encode(text.encode()).decode(),
                        }
                    }
                ],
                **({"context": {"encounter": [{"reference": encounter}]}} if encounter else {}),
            }
        )

    def letter(self, when: datetime, title: str, unit: str) -> str:
        pdf = minimal_pdf(title)
        return self._add(
            {
                "resourceType": "DocumentReference",
                "id": self._id("pdf"),
                "status": "current",
                "type": {"text": title},
                "subject": self.subject(),
                "date": _iso(when),
                "custodian": {"display": unit},
                "content": [{"attachment": {"contentType": "application/pdf", "data": base64.b64encode(pdf).decode()}}],
            }
        )

    def medication(self, when: datetime, index: int, status: str, prescriber: str) -> str:
        code, name, dosage = MEDICATIONS[index % len(MEDICATIONS)]
        return self._add(
            {
                "resourceType": "MedicationRequest",
                "id": self._id("med"),
                "status": status,
                "intent": "order",
                "medicationCodeableConcept": {"coding": [{"system": ATC, "code": code}], "text": name},
                "subject": self.subject(),
                "authoredOn": _iso(when),
                "requester": {"display": prescriber},
                "dosageInstruction": [{"text": dosage}],
            }
        )

    def immunization(self, when: datetime, index: int, place: str) -> str:
        code, name = VACCINES[index % len(VACCINES)]
        return self._add(
            {
                "resourceType": "Immunization",
                "id": self._id("imm"),
                "status": "completed",
                "vaccineCode": {"coding": [{"system": "urn:oid:2.16.578.1.12.4.1.1.7180", "code": code}], "text": name},
                "patient": self.subject(),
                "occurrenceDateTime": _iso(when),
                "lotNumber": f"FK{self.rng.randint(1000, 9999)}",
                "location": {"display": place},
            }
        )

    def bundle(self) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "transaction", "entry": self.entries}


def history_bundle(
    person: Person,
    *,
    prefix: str,
    results: int,
    notes: int,
    years: float,
    unit: str = "Medisinsk poliklinikk",
    doctor: str = "Dr. Marte Lund",
    seed: int = 1,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A record spread over ``years``: about ``results`` lab results in reports, ``notes`` notes,
    a visit for each report, blood pressures, medications, vaccines and a PDF letter."""
    maker = BundleMaker(person, prefix=prefix, seed=seed, now=now)
    now = maker.now
    span = timedelta(days=365 * years)
    made = 0
    visits: list[tuple[datetime, str]] = []
    while made < results:
        when = now - span * maker.rng.random() - timedelta(days=1)
        enc = maker.encounter(when, "Kontroll", unit, doctor)
        visits.append((when, enc))
        panel = PANELS[maker.rng.randrange(len(PANELS))]
        maker.report(panel, when, enc)
        made += len(panel[2])
        if maker.rng.random() < 0.3:
            maker.blood_pressure(when, enc)
    for i in range(notes):
        when, enc = visits[i % len(visits)] if visits else (now - span * maker.rng.random(), None)
        maker.note(when + timedelta(minutes=45), enc, doctor, unit)
    for i in range(min(5, max(1, int(years)))):
        maker.medication(now - span * maker.rng.random(), i, "active" if i < 2 else "stopped", doctor)
    for i in range(min(6, max(1, int(years * 2)))):
        maker.immunization(now - span * maker.rng.random(), i, "Vaksinasjonskontoret")
    maker.letter(now - timedelta(days=20), "Innkalling til kontroll", unit)
    return maker.bundle()
