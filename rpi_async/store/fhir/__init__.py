"""FHIR R4 import: Bundles, NDJSON and Bulk Data exports into the patient store.

Modules: ``codes`` (code systems to DICOM Coding Scheme Designators, CodeableConcept to a
Code), ``resources`` (one resource to facts of the patient model), ``sources`` (reading
Bundles, NDJSON files and Bulk Data directories), ``load`` (validation into a spool,
then one transaction per patient into a store that may be serving), ``tables`` (the
provenance tables of schema version 3). ``docs/fhir-import.md`` is the user's guide.
"""
