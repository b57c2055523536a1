"""Schema version 3: where a FHIR import keeps what it needs to update patients later.

``fhir_patient`` maps every reference that names a patient (``Patient/<id>``, a Bundle's
``urn:uuid:`` fullUrl) to the patient row, so that a later import of a Condition alone
finds its patient. ``fhir_resource`` holds, per patient and per resource (``Type/id``),
the facts that resource became: re-importing a resource replaces its facts, and the
patient's fact rows are rebuilt from all of its resources (``fhir.load``).
"""

from __future__ import annotations

FHIR_TABLES = """
CREATE TABLE fhir_patient (
    ref         TEXT PRIMARY KEY,
    patient_pk  INTEGER NOT NULL REFERENCES patient(pk) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE INDEX fhir_patient_by_pk ON fhir_patient (patient_pk);

CREATE TABLE fhir_resource (
    patient_pk  INTEGER NOT NULL REFERENCES patient(pk) ON DELETE CASCADE,
    resource    TEXT NOT NULL,
    facts       TEXT NOT NULL,
    PRIMARY KEY (patient_pk, resource)
) WITHOUT ROWID;
"""
