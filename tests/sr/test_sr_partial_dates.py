"""Partial dates (DT ``YYYY``, ``YYYYMM``) render as they are stored, in both backends."""

from __future__ import annotations

import datetime

from rpi_async.dicom.codes import Code
from rpi_async.dicom.transfer import EXPLICIT, write_identifier
from rpi_async.sr.registry import TEMPLATES
from rpi_async.sr.render import render_identifier
from rpi_async.sr.render_bytes import render_identifier_bytes
from rpi_async.sr.text import content_tree_text
from rpi_async.store.model import Fact, PatientRecord, Section

MOMENT = datetime.datetime(2026, 6, 15, 9, 0, 0)
RECORD = PatientRecord(
    "PARTIAL",
    facts=(
        Fact(Section.PROBLEM, code=Code("38341003", "SCT", "Hypertension"), start="2009"),
        Fact(Section.MEDICATION, code=Code("1", "SCT", "Drug"), start="202103", end="2022"),
    ),
)


def _datetimes(ds: object) -> list[str]:
    out: list[str] = []
    for item in getattr(ds, "ContentSequence", []):
        if item.ValueType == "DATETIME":
            out.append(str(item.DateTime))
        out += _datetimes(item)
    return out


def test_partial_dates_render_as_dt() -> None:
    ds = render_identifier(RECORD, TEMPLATES["9007"], (), observation_datetime=MOMENT)
    assert _datetimes(ds) == ["202103", "2022", "2009"]
    encoded = render_identifier_bytes(
        RECORD, TEMPLATES["9007"], (), EXPLICIT, observation_datetime=MOMENT
    )
    assert encoded == write_identifier(ds, EXPLICIT)
    text = content_tree_text(ds)
    assert "DateTime Started = 2021-03" in text
    assert "DateTime problem observed = 2009" in text
