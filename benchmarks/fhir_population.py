"""Synthetic FHIR R4 populations in the shape Synthea exports, for tests and benchmarks.

Each patient gets what a Synthea record typically holds, deterministically from a seed:
a Patient (identifiers of the Synthea, medical-record, social-security and driver's
licence systems, an official HumanName with digits in it, race/ethnicity extensions,
an address), Encounters, Conditions (SNOMED CT, clinical and verification status,
onset and abatement), Observations (vital signs, a lipid panel in mg/dL, smoking status,
and for women the obstetric counts), Procedures (SNOMED CT, performedPeriod),
MedicationRequests (RxNorm, dosage instructions), Immunizations (CVX), Claims,
AllergyIntolerances and FamilyMemberHistories. References are ``urn:uuid:`` inside a
transaction Bundle (Synthea's ``fhir`` exporter) and ``Patient/<id>`` in Bulk Data
NDJSON (its ``bulk_data`` exporter: one file per resource type).

    python -m benchmarks.fhir_population DIR --patients 1000 [--bundles] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
MRN_SYSTEM = "http://hospital.smarthealthit.org"
SYNTHEA_SYSTEM = "https://github.com/synthetichealth/synthea"

FAMILY = ("Smith", "Johnson", "Nguyen", "Garcia", "Müller", "Okafor", "Kowalski", "Rossi")
GIVEN_F = ("Ann", "Maria", "Chloe", "Aisha", "Yuki", "Ingrid")
GIVEN_M = ("John", "Luis", "Omar", "Kenji", "Piotr", "Tom")
CONDITIONS = (
    ("38341003", "Hypertensive disorder, systemic arterial (disorder)"),
    ("44054006", "Diabetes mellitus type 2 (disorder)"),
    ("55822004", "Hyperlipidemia (disorder)"),
    ("49436004", "Atrial fibrillation (disorder)"),
    ("433144002", "Chronic kidney disease stage 3 (disorder)"),
    ("22298006", "Myocardial infarction (disorder)"),
    ("195662009", "Acute viral pharyngitis (disorder)"),
    ("444814009", "Viral sinusitis (disorder)"),
    ("10509002", "Acute bronchitis (disorder)"),
    ("162864005", "Body mass index 30+ - obesity (finding)"),
    ("40055000", "Chronic sinusitis (disorder)"),
    ("254837009", "Malignant neoplasm of breast (disorder)"),
    ("161806007", "History of - eclampsia"),
)
PROCEDURES = (
    ("430193006", "Medication reconciliation (procedure)", "103693007"),
    ("710824005", "Assessment of health and social care needs (procedure)", None),
    ("24623002", "Screening mammography (procedure)", "103693007"),
    ("73761001", "Colonoscopy (procedure)", "103693007"),
    ("80146002", "Excision of appendix (procedure)", "387713003"),
    ("232717009", "Coronary artery bypass grafting (procedure)", "387713003"),
    ("47079000", "Ultrasonography of breast (procedure)", "103693007"),
    ("40701008", "Echocardiography (procedure)", "103693007"),
)
MEDICATIONS = (
    ("314076", "lisinopril 10 MG Oral Tablet"),
    ("860975", "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet"),
    ("259255", "Atorvastatin 80 MG Oral Tablet"),
    ("308136", "amLODIPine 2.5 MG Oral Tablet"),
    ("313782", "Acetaminophen 325 MG Oral Tablet"),
    ("849574", "Naproxen sodium 220 MG Oral Tablet"),
)
ALLERGIES = (
    ("91935009", "Allergy to peanuts (finding)"),
    ("300913006", "Shellfish allergy (disorder)"),
    ("419474003", "Allergy to mould (finding)"),
)
REACTIONS = (("247472004", "Wheal (finding)"), ("878820003", "Rhinoconjunctivitis (disorder)"))
SMOKING = (
    ("266919005", "Never smoked tobacco (finding)"),
    ("449868002", "Smokes tobacco daily (finding)"),
    ("8517006", "Ex-smoker (finding)"),
)
RELATIVES = (("MTH", "mother"), ("FTH", "father"), ("SIS", "sister"), ("BRO", "brother"))
VITALS = (
    ("8302-2", "Body Height", "cm", 150.0, 195.0),
    ("29463-7", "Body Weight", "kg", 50.0, 110.0),
    ("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", 18.0, 38.0),
    ("8867-4", "Heart rate", "/min", 55.0, 100.0),
)
LABS = (
    ("2093-3", "Total Cholesterol", 150.0, 280.0),
    ("2571-8", "Triglycerides", 80.0, 250.0),
    ("18262-6", "Low Density Lipoprotein Cholesterol", 70.0, 190.0),
    ("2085-9", "High Density Lipoprotein Cholesterol", 30.0, 90.0),
)
OBSTETRIC = (("11996-6", "[#] Pregnancies"), ("11977-6", "[#] Parity"))


def _coding(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _category(system: str, code: str, display: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": system, "code": code, "display": display}]}]


def _date(rng: random.Random, start_year: int, end_year: int = 2025) -> str:
    year = rng.randint(start_year, max(start_year, end_year))
    return f"{year:04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _dt(rng: random.Random, start_year: int) -> str:
    hh, mm = rng.randint(7, 18), rng.randint(0, 59)
    return f"{_date(rng, start_year)}T{hh:02d}:{mm:02d}:00-05:00"


class _Person:
    """One synthetic patient's resources."""

    def __init__(self, index: int, seed: int) -> None:
        self.rng = random.Random(seed * 1_000_003 + index)
        self.index = index
        self.uid = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self.female = self.rng.random() < 0.5
        self.birth_year = self.rng.randint(1935, 2020)
        self.ref = ""  # set by the exporter: urn:uuid:... or Patient/<id>
        self._n = 0

    def _id(self) -> str:
        self._n += 1
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def patient(self) -> dict[str, Any]:
        rng = self.rng
        given = rng.choice(GIVEN_F if self.female else GIVEN_M)
        family = f"{rng.choice(FAMILY)}{rng.randint(1, 999)}"
        mr_type = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                    "code": "MR",
                    "display": "Medical Record Number",
                }
            ]
        }
        return {
            "resourceType": "Patient",
            "id": self.uid,
            "meta": {
                "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]
            },
            "extension": [
                {
                    "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
                    "extension": [{"url": "text", "valueString": "White"}],
                },
                {
                    "url": "http://synthetichealth.github.io/synthea/disability-adjusted-life-years",
                    "valueDecimal": round(rng.random(), 3),
                },
            ],
            "identifier": [
                {"system": SYNTHEA_SYSTEM, "value": self.uid},
                {"type": mr_type, "system": MRN_SYSTEM, "value": f"MRN{self.index:07d}"},
                {
                    "type": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                "code": "SS",
                                "display": "Social Security Number",
                            }
                        ]
                    },
                    "system": "http://hl7.org/fhir/sid/us-ssn",
                    "value": f"999-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
                },
            ],
            "name": [
                {
                    "use": "official",
                    "family": family,
                    "given": [given],
                    "prefix": ["Mrs." if self.female else "Mr."],
                }
            ],
            "telecom": [{"system": "phone", "value": "555-555-5555", "use": "home"}],
            "gender": "female" if self.female else "male",
            "birthDate": _date(rng, self.birth_year, self.birth_year),
            "address": [{"line": ["1 Main St"], "city": "Boston", "state": "MA", "country": "US"}],
        }

    def _ref(self, kind: str, rid: str) -> str:
        """A reference in the exporter's style: urn:uuid in a Bundle, Type/id in bulk."""
        return f"urn:uuid:{rid}" if self.ref.startswith("urn:") else f"{kind}/{rid}"

    def _subject(self) -> dict[str, str]:
        return {"reference": self.ref}

    def resources(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        yield self.patient()
        start = max(self.birth_year, 1990)
        for _ in range(rng.randint(3, 6)):
            enc_id = self._id()
            yield {
                "resourceType": "Encounter",
                "id": enc_id,
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                },
                "subject": self._subject(),
                "period": {"start": _dt(rng, start), "end": _dt(rng, start)},
            }
            yield self._claim(enc_id)
            for code, display, unit, low, high in VITALS:
                yield self._observation(code, display, "vital-signs", unit, low, high, start)
        for code, display in rng.sample(CONDITIONS, rng.randint(1, 5)):
            resolved = rng.random() < 0.4
            condition: dict[str, Any] = {
                "resourceType": "Condition",
                "id": self._id(),
                "clinicalStatus": _coding(
                    "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "resolved" if resolved else "active",
                    "resolved" if resolved else "active",
                ),
                "verificationStatus": _coding(
                    "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "confirmed",
                    "confirmed",
                ),
                "category": _category(
                    "http://terminology.hl7.org/CodeSystem/condition-category",
                    "encounter-diagnosis",
                    "Encounter Diagnosis",
                ),
                "code": _coding(SCT, code, display),
                "subject": self._subject(),
                "onsetDateTime": _dt(rng, start),
                "recordedDate": _dt(rng, start),
            }
            if resolved:
                condition["abatementDateTime"] = "2026-01-02T10:00:00-05:00"
            yield condition
        for code, display, category in rng.sample(PROCEDURES, rng.randint(1, 4)):
            when = _dt(rng, start)
            procedure: dict[str, Any] = {
                "resourceType": "Procedure",
                "id": self._id(),
                "status": "completed",
                "code": _coding(SCT, code, display),
                "subject": self._subject(),
                "performedPeriod": {"start": when, "end": when},
            }
            if category is not None:
                procedure["category"] = _coding(SCT, category, "category")
            if code in ("24623002", "47079000"):
                side = rng.choice(
                    (
                        ("80248007", "Left breast structure (body structure)"),
                        ("73056007", "Right breast structure (body structure)"),
                    )
                )
                procedure["bodySite"] = [_coding(SCT, *side)]
            yield procedure
        for code, display in rng.sample(MEDICATIONS, rng.randint(1, 4)):
            status = rng.choice(("active", "stopped", "completed"))
            yield {
                "resourceType": "MedicationRequest",
                "id": self._id(),
                "status": status,
                "intent": "order",
                "medicationCodeableConcept": _coding(RXNORM, code, display),
                "subject": self._subject(),
                "authoredOn": _dt(rng, start),
                "dosageInstruction": [
                    {
                        "sequence": 1,
                        "timing": {"repeat": {"frequency": 1, "period": 1.0, "periodUnit": "d"}},
                        "asNeededBoolean": False,
                        "doseAndRate": [{"doseQuantity": {"value": 1.0}}],
                    }
                ],
            }
        yield {
            "resourceType": "Immunization",
            "id": self._id(),
            "status": "completed",
            "vaccineCode": _coding("http://hl7.org/fhir/sid/cvx", "140", "Influenza"),
            "patient": self._subject(),
            "occurrenceDateTime": _dt(rng, start),
        }
        for code, display, low, high in LABS:
            yield self._observation(code, display, "laboratory", "mg/dL", low, high, start)
        smoking = rng.choice(SMOKING)
        yield {
            "resourceType": "Observation",
            "id": self._id(),
            "status": "final",
            "category": _category(
                "http://terminology.hl7.org/CodeSystem/observation-category",
                "social-history",
                "social-history",
            ),
            "code": _coding(LOINC, "72166-2", "Tobacco smoking status"),
            "subject": self._subject(),
            "effectiveDateTime": _dt(rng, start),
            "valueCodeableConcept": _coding(SCT, *smoking),
        }
        if self.female and self.birth_year < 2005:
            for code, display in OBSTETRIC:
                yield {
                    "resourceType": "Observation",
                    "id": self._id(),
                    "status": "final",
                    "code": _coding(LOINC, code, display),
                    "subject": self._subject(),
                    "effectiveDateTime": _dt(rng, start),
                    "valueQuantity": {
                        "value": rng.randint(0, 4),
                        "unit": "{#}",
                        "system": UCUM,
                        "code": "{#}",
                    },
                }
        if rng.random() < 0.3:
            code, display = rng.choice(ALLERGIES)
            yield {
                "resourceType": "AllergyIntolerance",
                "id": self._id(),
                "clinicalStatus": _coding(
                    "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "active",
                    "Active",
                ),
                "verificationStatus": _coding(
                    "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                    "confirmed",
                    "Confirmed",
                ),
                "type": "allergy",
                "category": ["food"],
                "criticality": "low",
                "code": _coding(SCT, code, display),
                "patient": self._subject(),
                "recordedDate": _dt(rng, start),
                "reaction": [{"manifestation": [_coding(SCT, *rng.choice(REACTIONS))]}],
            }
        if rng.random() < 0.3:
            role, display = rng.choice(RELATIVES)
            yield {
                "resourceType": "FamilyMemberHistory",
                "id": self._id(),
                "status": "completed",
                "patient": self._subject(),
                "relationship": _coding(
                    "http://terminology.hl7.org/CodeSystem/v3-RoleCode", role, display
                ),
                "condition": [{"code": _coding(SCT, *rng.choice(CONDITIONS)[:2])}],
            }

    def _claim(self, encounter: str) -> dict[str, Any]:
        claim_type = "http://terminology.hl7.org/CodeSystem/claim-type"
        priority = "http://terminology.hl7.org/CodeSystem/processpriority"
        return {
            "resourceType": "Claim",
            "id": self._id(),
            "status": "active",
            "type": {"coding": [{"system": claim_type, "code": "professional"}]},
            "use": "claim",
            "patient": self._subject(),
            "created": "2025-01-01T00:00:00-05:00",
            "provider": {"display": "Synthetic Clinic"},
            "priority": {"coding": [{"system": priority, "code": "normal"}]},
            "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "Medicare"}}],
            "item": [
                {
                    "sequence": 1,
                    "productOrService": {"text": "Encounter"},
                    "encounter": [{"reference": self._ref("Encounter", encounter)}],
                }
            ],
            "total": {"value": 129.16, "currency": "USD"},
        }

    def _observation(
        self,
        code: str,
        display: str,
        category: str,
        unit: str,
        low: float,
        high: float,
        start: int,
    ) -> dict[str, Any]:
        return {
            "resourceType": "Observation",
            "id": self._id(),
            "status": "final",
            "category": _category(
                "http://terminology.hl7.org/CodeSystem/observation-category", category, category
            ),
            "code": _coding(LOINC, code, display),
            "subject": self._subject(),
            "effectiveDateTime": _dt(self.rng, start),
            "issued": "2025-01-01T00:00:00.000-05:00",
            "valueQuantity": {
                "value": round(self.rng.uniform(low, high), 1),
                "unit": unit,
                "system": UCUM,
                "code": unit,
            },
        }


def bundle(index: int, seed: int = 0) -> dict[str, Any]:
    """Patient ``index`` as a transaction Bundle with ``urn:uuid:`` references."""
    person = _Person(index, seed)
    person.ref = f"urn:uuid:{person.uid}"
    entries = []
    for resource in person.resources():
        entries.append(
            {
                "fullUrl": f"urn:uuid:{resource['id']}",
                "resource": resource,
                "request": {"method": "POST", "url": resource["resourceType"]},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def write_bundles(directory: Path, patients: int, seed: int = 0, first: int = 1) -> int:
    """One transaction Bundle file per patient (Synthea's ``fhir`` folder); the count."""
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(first, first + patients):
        (directory / f"patient{i:07d}.json").write_bytes(orjson.dumps(bundle(i, seed)))
    return patients


def write_bulk(directory: Path, patients: int, seed: int = 0, first: int = 1) -> dict[str, int]:
    """A Bulk Data export: one NDJSON file per resource type; resources per type."""
    directory.mkdir(parents=True, exist_ok=True)
    handles: dict[str, Any] = {}
    counts: dict[str, int] = {}
    try:
        for i in range(first, first + patients):
            person = _Person(i, seed)
            person.ref = f"Patient/{person.uid}"
            for resource in person.resources():
                kind = resource["resourceType"]
                handle = handles.get(kind)
                if handle is None:
                    handle = handles[kind] = (directory / f"{kind}.ndjson").open("wb")
                handle.write(orjson.dumps(resource) + b"\n")
                counts[kind] = counts.get(kind, 0) + 1
    finally:
        for handle in handles.values():
            handle.close()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bundles", action="store_true", help="one Bundle per patient")
    args = parser.parse_args()
    if args.bundles:
        write_bundles(args.directory, args.patients, args.seed)
        print(f"{args.patients} Bundles in {args.directory}")
    else:
        counts = write_bulk(args.directory, args.patients, args.seed)
        print(f"{sum(counts.values())} resources in {args.directory}: {counts}")


if __name__ == "__main__":
    main()
