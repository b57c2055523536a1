"""Patient documents: normalisation, validation, and agreement with the JSON Schema."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rpi_async.dicom.codes import Code
from rpi_async.store import document
from rpi_async.store.document import DocumentError, parse_patient, record_to_json
from rpi_async.store.model import Section
from rpi_async.store.writer import CODE_FIELDS, EncodedFact, encode_fact


def _schema() -> dict[str, Any]:
    text = resources.files("rpi_async").joinpath("schemas/patient-document.schema.json")
    schema: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


SCHEMA = _schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
PATIENT_SCHEMA = {"$ref": "#/$defs/patient", "$defs": SCHEMA["$defs"]}
PATIENT_VALIDATOR = jsonschema.Draft202012Validator(PATIENT_SCHEMA)


def _example() -> Any:
    text = resources.files("rpi_async").joinpath("examples/patients.json")
    return json.loads(text.read_text(encoding="utf-8"))


def test_example_file_is_valid_for_schema_and_parser() -> None:
    example = _example()
    assert not list(VALIDATOR.iter_errors(example))
    records = [parse_patient(p) for p in example["patients"]]
    full = records[0]
    assert {f.section for f in full.facts} == set(Section)  # one patient uses every section


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20200102", "20200102"),
        ("202001021030", "202001021030"),
        ("20200102103000.25", "20200102103000.25"),
        ("20200102103000+0100", "20200102103000+0100"),
        ("2020-01-02", "20200102"),
        ("2020-01-02T10:30", "202001021030"),
        ("2020-01-02 10:30:15.5", "20200102103015.5"),
        ("2020-01-02T10:30:00Z", "20200102103000+0000"),
        ("2020-01-02T10:30:00-05:00", "20200102103000-0500"),
        ("2020", "2020"),
        ("202001", "202001"),
        ("2020-01", "202001"),
        ("2020+0100", "2020+0100"),
    ],
)
def test_date_times_are_normalised_to_dt(text: str, expected: str) -> None:
    assert document.dicom_datetime(text, "start") == expected


@pytest.mark.parametrize(
    "text",
    [
        "2020-13-01",
        "20200230",
        "2020-01-02T25:00",
        "2020-13",
        "202013",
        "20",
        "02/01/2020",
        "",
        "x",
    ],
)
def test_bad_date_times_are_refused(text: str) -> None:
    with pytest.raises(DocumentError, match="start"):
        document.dicom_datetime(text, "start")


@pytest.mark.parametrize(
    ("text", "expected"), [("1970-02-03", "19700203"), ("19700203", "19700203")]
)
def test_dates(text: str, expected: str) -> None:
    assert document.dicom_date(text, "birth_date") == expected


@pytest.mark.parametrize("text", ["1970-02-30", "1970-0203", "19700231", "70-02-03", ""])
def test_bad_dates(text: str) -> None:
    with pytest.raises(DocumentError, match="birth_date"):
        document.dicom_date(text, "birth_date")


def test_code_forms() -> None:
    compact = document.code("80248007|SCT|Left breast", "laterality")
    full = document.code(
        {"value": "80248007", "scheme": "SCT", "meaning": "Left breast"}, "laterality"
    )
    assert compact == full == Code("80248007", "SCT", "Left breast")
    assert document.code("1|DCM|a|b", "code").meaning == "a|b"  # the meaning may hold '|'


@pytest.mark.parametrize(
    "value",
    [
        "80248007|SCT",
        "80248007||Left",
        "|SCT|Left",
        "80248007|SCT|" + "m" * 65,
        "80248007|SCTSCTSCTSCTSCTSCT|Left",
        "80248007|SCT|Left\\breast",
        " 80248007|SCT|Left",
        {"value": "1", "scheme": "SCT"},
        {"value": "1", "scheme": "SCT", "meaning": "m", "extra": 1},
        {"value": 1, "scheme": "SCT", "meaning": "m"},
        42,
    ],
)
def test_malformed_codes_are_refused_by_parser_and_schema(value: object) -> None:
    doc = {"patient_id": "P", "sections": {"procedure": [{"code": value}]}}
    with pytest.raises(DocumentError, match=r"sections\.procedure\[0\]\.code"):
        parse_patient(doc)
    assert list(PATIENT_VALIDATOR.iter_errors(doc))


def test_names() -> None:
    assert document.person_name({"family": "Doe", "given": "Jane"}, "name") == "Doe^Jane"
    parts = {"family": "Doe", "given": "J", "prefix": "Dr"}
    assert document.person_name(parts, "name") == "Doe^J^^Dr"
    assert document.person_name("Doe^Jane", "name") == "Doe^Jane"
    with pytest.raises(DocumentError, match="name"):
        document.person_name("A^B^C^D^E^F", "name")
    with pytest.raises(DocumentError, match=r"name\.given"):
        document.person_name({"family": "Doe", "given": "Ja^ne"}, "name")


BAD_PATIENTS: list[tuple[dict[str, Any], str]] = [
    ({"name": "Doe^Jane"}, "patient_id: missing"),
    ({"patient_id": ""}, "patient_id: must not be empty"),
    ({"patient_id": "   "}, "patient_id: must not be empty"),
    ({"patient_id": "A" * 65}, "patient_id: longer than 64"),
    ({"patient_id": "A\\B"}, "patient_id: contains a backslash"),
    ({"patient_id": "A\nB"}, "patient_id: contains a backslash or a control character"),
    ({"patient_id": 12}, "patient_id: expected a string"),
    ({"patient_id": "P", "sex": "X"}, "sex"),
    ({"patient_id": "P", "birth_date": "1970-02-30"}, "birth_date"),
    ({"patient_id": "P", "colour": "blue"}, "colour: unknown field"),
    ({"patient_id": "P", "sections": {"medications": []}}, "sections.medications: unknown section"),
    ({"patient_id": "P", "sections": {"medication": {}}}, "sections.medication: expected an array"),
    (
        {"patient_id": "P", "sections": {"medication": [{"code": "1|SCT|x", "dose": 1}]}},
        "unknown fact field 'dose'",
    ),
    (
        {"patient_id": "P", "sections": {"lab": [{"number": 1, "unit": "mg/dL|UCUM|mg/dL"}]}},
        "needs a 'concept'",
    ),
    (
        {"patient_id": "P", "sections": {"lab": [{"concept": "2086-7|LN|HDL"}]}},
        "a concept needs a value",
    ),
    (
        {"patient_id": "P", "sections": {"lab": [{"concept": "2086-7|LN|HDL", "number": 3}]}},
        r"sections.lab\[0\].unit: a number needs a unit",
    ),
    (
        {"patient_id": "P", "sections": {"device": [{"start": "20200101"}]}},
        "needs a 'code'",
    ),
    (
        {"patient_id": "P", "sections": {"device": [{"code": "1|SCT|x", "concept": "1|SCT|x"}]}},
        "concept: only attribute sections",
    ),
    (
        {"patient_id": "P", "sections": {"device": [{"code": "1|SCT|x", "ongoing": "yes"}]}},
        "ongoing: expected true or false",
    ),
    (
        {"patient_id": "P", "sections": {"device": [{"code": "1|SCT|x", "number": True}]}},
        "number: expected a number",
    ),
    (
        {"patient_id": "P", "other_ids": [{"id": "X", "type": "CHIP"}]},
        r"other_ids\[0\].type",
    ),
    ({"patient_id": "P", "other_ids": [{"issuer": "X"}]}, r"other_ids\[0\]: missing 'id'"),
]


# What only the parser can see: the schema checks shapes, not calendars.
SEMANTIC_ONLY = {"birth_date"}


@pytest.mark.parametrize(("doc", "message"), BAD_PATIENTS)
def test_bad_patients_are_refused_by_parser_and_schema(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(DocumentError, match=message):
        parse_patient(doc)
    if message not in SEMANTIC_ONLY:
        assert list(PATIENT_VALIDATOR.iter_errors(doc))


def test_end_before_start_is_refused() -> None:
    fact = {"code": "1|SCT|x", "start": "2020-02-01", "end": "2020-01-31"}
    with pytest.raises(DocumentError, match=r"medication\[0\]\.end: 20200131 is before start"):
        parse_patient({"patient_id": "P", "sections": {"medication": [fact]}})


def test_nulls_mean_absent() -> None:
    doc = {
        "patient_id": " P1 ",
        "issuer": None,
        "name": None,
        "sections": {"medication": [{"code": "1|SCT|x", "end": None}], "lab": None},
    }
    record = parse_patient(doc)
    assert record.patient_id == "P1"
    assert record.issuer == ""
    assert record.facts[0].end is None


def _columns(encoded: EncodedFact) -> dict[str, Any]:
    """An encoded fact as {column: value}, whatever the order of its fields."""
    shape, values = encoded
    columns = ["section"]
    for name in shape:
        columns += [f"{name}_{p}" for p in _VSM] if name in CODE_FIELDS else [name]
    return dict(zip(columns, values, strict=True))


_VSM = ("value", "scheme", "meaning")


def test_rows_path_agrees_with_record_path() -> None:
    for doc in _example()["patients"]:
        record = parse_patient(doc)
        rows = document.parse_patient_rows(doc)
        assert [_columns(f) for f in rows.facts] == [_columns(encode_fact(f)) for f in record.facts]
        assert (rows.patient_id, rows.issuer, rows.name, rows.birth_date, rows.sex) == (
            record.patient_id,
            record.issuer,
            record.name,
            record.birth_date,
            record.sex,
        )
        assert rows.other_ids == record.other_ids


def test_record_to_json_round_trip() -> None:
    for doc in _example()["patients"]:
        record = parse_patient(doc)
        again = record_to_json(record)
        assert not list(PATIENT_VALIDATOR.iter_errors(again))
        assert parse_patient(again) == record


_words = (
    st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\\|^="),
        min_size=1,
        max_size=20,
    )
    .map(str.strip)
    .filter(bool)
)


@given(pid=_words, family=_words, meaning=_words, value=_words)
def test_any_clean_document_round_trips(pid: str, family: str, meaning: str, value: str) -> None:
    doc = {
        "patient_id": pid,
        "name": {"family": family},
        "sections": {"problem": [{"code": {"value": value, "scheme": "SCT", "meaning": meaning}}]},
    }
    record = parse_patient(doc)
    assert parse_patient(record_to_json(record)) == record
    assert not list(PATIENT_VALIDATOR.iter_errors(doc))


def test_partial_dates_round_trip_through_a_record() -> None:
    value = {
        "patient_id": "P",
        "sections": {
            "problem": [{"code": "1|SCT|x", "start": "2019", "end": "2019-04"}],
            "medication": [{"code": "2|SCT|y", "start": "201903", "end": "2019"}],
        },
    }
    assert not list(PATIENT_VALIDATOR.iter_errors(value))
    record = parse_patient(value)
    assert [(f.start, f.end) for f in record.facts] == [("201903", "2019"), ("2019", "201904")]
    assert parse_patient(document.record_to_json(record)) == record


def test_partial_end_before_start_is_refused() -> None:
    with pytest.raises(DocumentError, match=r"sections.problem\[0\].end: 2018 is before"):
        parse_patient(
            {
                "patient_id": "P",
                "sections": {"problem": [{"code": "1|SCT|x", "start": "2019-04", "end": "2018"}]},
            }
        )


def test_an_attribute_date_must_be_full() -> None:
    fact = {"concept": "11955-2|LN|Date of last menstrual period", "start": "2024-12"}
    with pytest.raises(DocumentError, match="partial"):
        parse_patient({"patient_id": "P", "sections": {"gynecological": [fact]}})


@pytest.mark.parametrize(
    ("section", "fact", "number", "unit"),
    [
        (
            "lab",
            {"concept": "2086-7|LN|HDL", "number": 1.2, "unit": "mmol/L|UCUM|mmol/L"},
            46.4,
            "mg/dL",
        ),
        (
            "gynecological",
            {"concept": "111518|DCM|Age at menarche", "number": 150, "unit": "mo|UCUM|month"},
            12.5,
            "a",
        ),
        (
            "gynecological",
            {"concept": "11977-6|LN|Para", "number": 2, "unit": "{1}|UCUM|x"},
            2.0,
            "1",
        ),
        ("risk_factor", {"code": "111559|DCM|x", "number": 104, "unit": "wk|UCUM|week"}, 1.99, "a"),
    ],
)
def test_numbers_are_converted_to_their_rows_units(
    section: str, fact: dict[str, object], number: float, unit: str
) -> None:
    value = {"patient_id": "P", "sections": {section: [fact]}}
    record = parse_patient(value)
    (stored,) = record.facts
    assert stored.number == number
    assert stored.unit is not None
    assert stored.unit.value == unit
    # The bulk path's encoded row says the same.
    ((_, row),) = document.parse_patient_rows(value).facts
    assert number in row
    assert unit in row


def test_an_unconvertible_unit_is_refused() -> None:
    fact = {"concept": "2089-1|LN|LDL", "number": 3, "unit": "%|UCUM|percent"}
    with pytest.raises(DocumentError, match=r"sections.lab\[0\].unit: '%' cannot be converted"):
        parse_patient({"patient_id": "P", "sections": {"lab": [fact]}})
