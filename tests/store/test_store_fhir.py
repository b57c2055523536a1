"""FHIR R4 import: the example files, grouping, errors that write nothing, re-imports."""

from __future__ import annotations

import copy
import sqlite3
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.bundle import Bundle

from benchmarks.fhir_population import bundle, write_bulk, write_bundles
from rpi_async.dicom.codes import Code
from rpi_async.errors import ImportFailed
from rpi_async.sr.registry import TEMPLATES
from rpi_async.store import schema, writer
from rpi_async.store.fhir import codes
from rpi_async.store.fhir.load import FhirSummary, import_fhir
from rpi_async.store.model import PatientRecord, Section
from rpi_async.store.reader import lookup_compact_now

EXAMPLES = Path(str(resources.files("rpi_async") / "examples"))
BUNDLE = EXAMPLES / "fhir-bundle.json"
BULK = EXAMPLES / "fhir-bulk"
CLINIC = {"urn:oid:1.2.826.0.1.3680043.10.543.1": "CITY_CLINIC"}


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = schema.connect_writer(tmp_path / "store.sqlite3", create=True)
    yield connection
    connection.close()


def _record(conn: sqlite3.Connection, pid: str, issuer: str | None = None) -> PatientRecord:
    (found,) = lookup_compact_now(conn, pid, issuer)
    return found.to_record()


def _bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }


def _write(path: Path, value: dict[str, Any]) -> Path:
    path.write_bytes(orjson.dumps(value))
    return path


PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "identifier": [{"system": "http://h.example/mrn", "value": "M1"}],
    "gender": "male",
}
CONDITION = {
    "resourceType": "Condition",
    "id": "c1",
    "subject": {"reference": "Patient/p1"},
    "code": {
        "coding": [{"system": "http://snomed.info/sct", "code": "44054006", "display": "DM2"}]
    },
    "onsetDateTime": "2011-05",
}
MAP = {"http://h.example/mrn": "HOSP"}


def test_the_example_bundle_imports_with_its_issuer(conn: sqlite3.Connection) -> None:
    summary = import_fhir(conn, [BUNDLE], issuer_map=CLINIC)
    assert summary.patients == 1
    assert summary.skipped == {"Encounter (not read)": 1, "Observation of vital signs": 1}
    record = _record(conn, "EX-3001", "CITY_CLINIC")
    assert record.name == "Okafor^Adaeze^Grace^Ms."
    assert record.birth_date == "19680412"
    assert record.sex == "F"
    assert [o.issuer for o in record.other_ids] == ["https://ehr.city-clinic.example/patient-uuid"]
    sections = {f.section for f in record.facts}
    assert sections >= {Section.PROBLEM, Section.CARDIAC_CONCERN, Section.MEDICATION}
    hdl = record.attribute(Section.LAB, ("2086-7", "LN"))
    assert hdl is not None
    assert (hdl.number, hdl.unit) == (54.14, Code("mg/dL", "UCUM", "mg/dL"))
    menarche = record.attribute(Section.GYNECOLOGICAL, ("111518", "DCM"))
    assert menarche is not None
    assert (menarche.number, menarche.unit is not None and menarche.unit.value) == (12.5, "a")
    (pain,) = [f for f in record.section(Section.PROBLEM) if f.code and f.code.value == "53430007"]
    assert pain.start == "202409"  # a partial date stays partial
    assert pain.laterality == Code("24028007", "SCT", "Right")
    assert pain.site is not None
    assert pain.site.value == "73056007"


def test_the_example_files_are_valid_fhir() -> None:
    Bundle.model_validate(orjson.loads(BUNDLE.read_bytes()))
    for i in (1, 2):
        Bundle.model_validate(bundle(i))


def test_a_bulk_directory_is_grouped_by_patient(conn: sqlite3.Connection) -> None:
    summary = import_fhir(conn, [BULK])
    assert summary.patients == 3
    assert summary.skipped["Claim (not read)"] > 0
    rows = conn.execute("SELECT patient_id, issuer FROM patient ORDER BY 1").fetchall()
    assert rows == [(f"MRN{i:07d}", "http://hospital.smarthealthit.org") for i in (1, 2, 3)]
    for pid, _ in rows:
        assert _record(conn, pid).section(Section.LAB)


def test_bundles_and_bulk_files_of_the_same_population_give_the_same_store(
    tmp_path: Path,
) -> None:
    records = []
    for kind in ("bundles", "bulk"):
        directory = tmp_path / kind
        if kind == "bundles":
            write_bundles(directory, 5, seed=3)
        else:
            write_bulk(directory, 5, seed=3)
        connection = schema.connect_writer(tmp_path / f"{kind}.sqlite3", create=True)
        import_fhir(connection, [directory])
        records.append([_record(connection, f"MRN{i:07d}").facts for i in range(1, 6)])
        connection.close()
    assert records[0] == records[1]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c.update(onsetDateTime="2011-13"),
            r"x.json: entry 2 \(Condition/c1\): onsetDateTime: '2011-13' is not a valid date",
        ),
        (
            lambda c: c["code"]["coding"][0].update(system="http://example.org/local"),
            r"entry 2 \(Condition/c1\): code.coding: no DICOM coding scheme for system "
            r"'http://example.org/local'",
        ),
        (
            lambda c: c.pop("code"),
            r"entry 2 \(Condition/c1\): code: missing",
        ),
        (
            lambda c: c.update(abatementDateTime="2010"),
            r"abatementDateTime: 2010 is before start 201105",
        ),
    ],
)
def test_a_bad_resource_is_one_line_and_writes_nothing(
    conn: sqlite3.Connection, tmp_path: Path, change: Any, message: str
) -> None:
    import_fhir(conn, [_write(tmp_path / "before.json", _bundle(PATIENT))], issuer_map=MAP)
    before = writer.stats(conn)
    condition = copy.deepcopy(CONDITION)
    change(condition)
    path = _write(tmp_path / "x.json", _bundle(PATIENT, condition))
    with pytest.raises(ImportFailed, match=message) as info:
        import_fhir(conn, [path], issuer_map=MAP)
    assert "\n" not in str(info.value)
    assert str(info.value).endswith("nothing was imported")
    assert writer.stats(conn) == before


def test_bad_json_names_the_line(conn: sqlite3.Connection, tmp_path: Path) -> None:
    path = tmp_path / "Condition.ndjson"
    path.write_bytes(orjson.dumps(CONDITION) + b"\n{not json\n")
    with pytest.raises(ImportFailed, match=r"Condition.ndjson: line 2: invalid JSON"):
        import_fhir(conn, [path])
    assert writer.stats(conn)["patients"] == 0


def test_a_patient_without_a_usable_identifier_is_an_error(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    path = _write(tmp_path / "p.json", PATIENT)
    with pytest.raises(ImportFailed, match=r"p.json \(Patient/p1\): identifier: no Patient ID"):
        import_fhir(conn, [path])  # no MR type, no --issuer-map
    with pytest.raises(ImportFailed, match="no Patient ID: needs an identifier of a system"):
        import_fhir(conn, [path], issuer_map={"http://other": "X"})


def test_unusable_resources_are_skipped_and_counted(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    orphan = {**CONDITION, "id": "c2", "subject": {"reference": "Patient/nobody"}}
    no_subject = {k: v for k, v in CONDITION.items() if k != "subject"}
    void = {**CONDITION, "id": "c3", "verificationStatus": {"coding": [{"code": "refuted"}]}}
    other = {"resourceType": "Coverage", "id": "x"}
    path = _write(tmp_path / "b.json", _bundle(PATIENT, CONDITION, orphan, no_subject, void, other))
    summary = import_fhir(conn, [path], issuer_map=MAP)
    assert summary.patients == 1
    assert summary.skipped == {
        "Condition without a subject": 1,
        "Condition entered in error, refuted or not done": 1,
        "Coverage (not read)": 1,
        "resource whose patient is in neither the input nor the store": 1,
    }


def test_a_reimported_resource_replaces_its_earlier_version_and_others_are_kept(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    import_fhir(conn, [_write(tmp_path / "1.json", _bundle(PATIENT, CONDITION))], issuer_map=MAP)
    first = _record(conn, "M1")
    # A later export holds only a changed Condition and a new one: the patient is found
    # through the reference of the earlier import.
    changed = {**CONDITION, "onsetDateTime": "2012"}
    added = {
        **CONDITION,
        "id": "c9",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "195662009"}]},
    }
    summary = import_fhir(conn, [_write(tmp_path / "2.json", _bundle(changed, added))])
    assert summary.patients == 1
    second = _record(conn, "M1")
    assert second.version == first.version + 1
    problems = {f.code.value: f.start for f in second.section(Section.PROBLEM) if f.code}
    assert problems == {"44054006": "2012", "195662009": "201105"}
    assert len(second.section(Section.CARDIAC_CONCERN)) == 1  # replaced, not added


def test_fhir_facts_are_added_to_a_document_patient(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    from rpi_async.store.model import Fact

    writer.write_patients(
        conn,
        [
            PatientRecord(
                "M1",
                "HOSP",
                facts=(Fact(Section.DEVICE, code=Code("14106009", "SCT", "Pacemaker")),),
            )
        ],
    )
    import_fhir(conn, [_write(tmp_path / "1.json", _bundle(PATIENT, CONDITION))], issuer_map=MAP)
    import_fhir(conn, [_write(tmp_path / "2.json", _bundle(PATIENT, CONDITION))], issuer_map=MAP)
    record = _record(conn, "M1", "HOSP")
    assert [f.section for f in record.facts].count(Section.DEVICE) == 1
    assert record.sex == "M"


def test_the_latest_observation_of_a_concept_wins(conn: sqlite3.Connection, tmp_path: Path) -> None:
    def hdl(rid: str, when: str, value: float) -> dict[str, Any]:
        return {
            "resourceType": "Observation",
            "id": rid,
            "status": "final",
            "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "2085-9"}]},
            "effectiveDateTime": when,
            "valueQuantity": {
                "value": value,
                "system": "http://unitsofmeasure.org",
                "code": "mg/dL",
            },
        }

    path = _bundle(PATIENT, hdl("o2", "2024-01-01", 61), hdl("o1", "2020-01-01", 40))
    import_fhir(conn, [_write(tmp_path / "b.json", path)], issuer_map=MAP)
    (lab,) = _record(conn, "M1").section(Section.LAB)
    assert lab.number == 61


@pytest.mark.slow
def test_a_fhir_population_renders_within_its_rows_value_sets(tmp_path: Path) -> None:
    """The value-set check of the demo population, on FHIR-imported patients."""
    from tests.sr.test_sr_valueset_population import _problems, _rows

    write_bulk(tmp_path / "bulk", 200, seed=5)
    connection = schema.connect_writer(tmp_path / "v.sqlite3", create=True)
    issuers = {**CLINIC, "http://hospital.smarthealthit.org": "SYNTHEA"}
    import_fhir(connection, [tmp_path / "bulk", BUNDLE], issuer_map=issuers)
    records = [
        _record(connection, pid, issuer)
        for pid, issuer in connection.execute("SELECT patient_id, issuer FROM patient")
    ]
    connection.close()
    assert len(records) == 201
    sections = {f.section for r in records for f in r.facts}
    assert Section.DIAGNOSTIC_TEST in sections
    problems: list[str] = []
    for template in TEMPLATES.values():
        rows = _rows(template)
        for record in records:
            problems += _problems(record, template, rows)
    assert problems == []


def test_long_code_meanings_follow_one_rule() -> None:
    text = "A" * 70
    assert codes.meaning(text) == "A" * 61 + "..."
    assert len(codes.meaning(text)) == 64
    assert codes.meaning("a\\b\tc") == "a/b c"
    mapper = codes.CodeMapper({"http://example.org/local": "99LOCAL"})
    found = mapper.concept(
        {"coding": [{"system": "http://example.org/local", "code": "X1", "display": text}]}, "code"
    )
    assert found == Code("X1", "99LOCAL", "A" * 61 + "...")


def test_snomed_wins_over_icd10_in_one_concept() -> None:
    concept = {
        "coding": [
            {"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10", "display": "HTN"},
            {"system": "http://snomed.info/sct", "code": "38341003", "display": "HTN"},
        ]
    }
    found = codes.CodeMapper().concept(concept, "code")
    assert found is not None
    assert found.scheme == "SCT"


def test_summary_describes_skips() -> None:
    summary = FhirSummary(patients=2, resources=5, facts=7)
    summary.skipped["Claim (not read)"] += 3
    assert summary.describe() == "2 patients (5 resources, 7 facts); skipped 3: 3 Claim (not read)"
