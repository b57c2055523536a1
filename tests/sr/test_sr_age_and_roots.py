"""Subject Age in the units of CID 7456, and sub-templates as roots keep row 2."""

from __future__ import annotations

import datetime

import pytest

from rpi_async.dicom.transfer import EXPLICIT, IMPLICIT, write_identifier
from rpi_async.sr.age import subject_age
from rpi_async.sr.concepts import DAYS, MONTHS, YEARS
from rpi_async.sr.registry import TEMPLATES
from rpi_async.sr.render import render_identifier
from rpi_async.sr.render_bytes import render_identifier_bytes
from rpi_async.store.model import PatientRecord

ON = datetime.date(2026, 6, 15)


@pytest.mark.parametrize(
    ("birth", "expected"),
    [
        ("19700615", (56.0, YEARS)),
        ("19700616", (55.0, YEARS)),
        ("20250615", (1.0, YEARS)),
        ("20250616", (11.0, MONTHS)),
        ("20260515", (1.0, MONTHS)),
        ("20260516", (30.0, DAYS)),
        ("20260615", (0.0, DAYS)),
    ],
)
def test_subject_age_units(birth: str, expected: tuple[float, object]) -> None:
    assert subject_age(birth, ON) == expected


@pytest.mark.parametrize("birth", ["", "2026", "20261301", "20260616"])
def test_no_subject_age(birth: str) -> None:
    assert subject_age(birth, ON) is None


def _items(tid: str, record: PatientRecord) -> list[tuple[str, str]]:
    moment = datetime.datetime(2026, 6, 15, 9, 0, 0)
    ds = render_identifier(record, TEMPLATES[tid], (), observation_datetime=moment)
    out = []
    for item in ds.ContentSequence:
        value = item.ConceptCodeSequence[0].CodeMeaning if "ConceptCodeSequence" in item else ""
        out.append((item.ConceptNameCodeSequence[0].CodeMeaning, str(value)))
    return out


@pytest.mark.parametrize(
    ("tid", "row"),
    [("9003", "Previous Procedure"), ("9004", "Indicated Problem"), ("9005", "Risk factor")],
)
def test_a_sub_template_root_without_facts_keeps_its_mandatory_row(tid: str, row: str) -> None:
    items = _items(tid, PatientRecord("EMPTY"))
    assert items[1:] == [(row, "None")]


def test_the_none_row_is_only_for_roots() -> None:
    assert all(name != "Risk factor" for name, _ in _items("9007", PatientRecord("EMPTY")))


def test_an_infant_in_months_in_both_backends() -> None:
    record = PatientRecord("BABY", birth_date="20251201")
    moment = datetime.datetime(2026, 6, 15, 9, 0, 0)
    ds = render_identifier(record, TEMPLATES["9007"], (), observation_datetime=moment)
    (age,) = [i for i in ds.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "121033"]
    measured = age.MeasuredValueSequence[0]
    assert measured.NumericValue == 6
    assert measured.MeasurementUnitsCodeSequence[0].CodeValue == "mo"
    for syntax in (EXPLICIT, IMPLICIT):
        encoded = render_identifier_bytes(
            record, TEMPLATES["9007"], (), syntax, observation_datetime=moment
        )
        assert encoded == write_identifier(ds, syntax)


def test_the_none_row_in_both_backends() -> None:
    moment = datetime.datetime(2026, 6, 15, 9, 0, 0)
    record = PatientRecord("EMPTY")
    ds = render_identifier(record, TEMPLATES["9005"], (), observation_datetime=moment)
    encoded = render_identifier_bytes(
        record, TEMPLATES["9005"], (), EXPLICIT, observation_datetime=moment
    )
    assert encoded == write_identifier(ds, EXPLICIT)
