"""Rendered identifiers survive encoding and decoding; character set handling."""

from __future__ import annotations

import copy
from dataclasses import replace
from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

from rpi_async.dicom.codes import Code
from rpi_async.sr.registry import TEMPLATES
from rpi_async.sr.render import render_identifier
from tests.sr.sr_records import OBSERVED, ee_record, request, rich_record

SYNTAXES = [pytest.param(True, id="implicit-vr-le"), pytest.param(False, id="explicit-vr-le")]


def _roundtrip(ds: Dataset, implicit: bool) -> Dataset:
    buffer = DicomBytesIO()
    buffer.is_little_endian = True
    buffer.is_implicit_VR = implicit
    write_dataset(buffer, ds)
    return read_dataset(BytesIO(buffer.getvalue()), implicit, True)


@pytest.mark.parametrize("implicit", SYNTAXES)
@pytest.mark.parametrize("tid", sorted(TEMPLATES))
def test_every_template_roundtrips(tid: str, implicit: bool) -> None:
    ds = render_identifier(
        rich_record(),
        TEMPLATES[tid],
        request("OtherPatientIDsSequence"),
        observation_datetime=OBSERVED,
    )
    decoded = _roundtrip(ds, implicit)
    assert decoded == ds
    assert len(decoded.ContentSequence) == len(ds.ContentSequence) >= 1


@pytest.mark.parametrize("implicit", SYNTAXES)
def test_non_ascii_text_selects_utf8_and_roundtrips(implicit: bool) -> None:
    record = rich_record(name="Müller^Zoë")
    ds = render_identifier(record, TEMPLATES["9007"], request(), observation_datetime=OBSERVED)
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    decoded = _roundtrip(ds, implicit)
    assert str(decoded.PatientName) == "Müller^Zoë"
    assert decoded == ds


def test_non_ascii_code_meaning_selects_utf8() -> None:
    record = ee_record()
    aunt = replace(record.facts[3], modifier=Code("25211005", "SCT", "Tante (mütterlich)"))
    changed = replace(record, facts=(*record.facts[:3], aunt))
    ds = render_identifier(changed, TEMPLATES["9000"], request(), observation_datetime=OBSERVED)
    assert ds.SpecificCharacterSet == "ISO_IR 192"


def test_ascii_only_has_no_character_set() -> None:
    ds = render_identifier(ee_record(), TEMPLATES["9000"], request(), observation_datetime=OBSERVED)
    assert "SpecificCharacterSet" not in ds


def test_specific_character_set_in_the_request_is_not_echoed() -> None:
    query = request("SpecificCharacterSet")
    ds = render_identifier(ee_record(), TEMPLATES["9000"], query, observation_datetime=OBSERVED)
    assert "SpecificCharacterSet" not in ds


def test_unknown_keys_come_back_zero_length_and_other_ids_with_values() -> None:
    query = request("PatientWeight", "EthnicGroup", "OtherPatientIDsSequence", "PatientAge")
    ds = render_identifier(rich_record(), TEMPLATES["9007"], query, observation_datetime=OBSERVED)
    assert ds["PatientWeight"].is_empty
    assert ds["EthnicGroup"].is_empty
    assert ds["PatientAge"].is_empty
    (other,) = ds.OtherPatientIDsSequence
    assert (other.PatientID, other.IssuerOfPatientID, other.TypeOfPatientID) == (
        "X-9",
        "OTHER",
        "TEXT",
    )
    assert "PatientComments" not in ds  # not requested, not returned


def test_renderings_do_not_share_top_level_state() -> None:
    first = render_identifier(
        ee_record(), TEMPLATES["9000"], request(), observation_datetime=OBSERVED
    )
    second = render_identifier(
        ee_record(), TEMPLATES["9000"], request(), observation_datetime=OBSERVED
    )
    first.PatientID = "CHANGED"
    first.ContentSequence.append(Dataset())
    assert second.PatientID == "EE-1"
    assert len(second.ContentSequence) == 5
    assert copy.deepcopy(second) == second
