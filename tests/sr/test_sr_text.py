"""Readable text of response identifiers."""

from __future__ import annotations

from pydicom.dataset import Dataset

from rpi_async.sr.registry import TEMPLATES
from rpi_async.sr.render import render_identifier
from rpi_async.sr.text import content_tree_text, patient_header
from tests.sr.sr_records import OBSERVED, ee_record, request, rich_record

EE_TEXT = """\
Relevant Patient Information for Breast Imaging
  HAS CONCEPT MOD Language of Content Item and Descendants = English
  CONTAINS Subject Age = 48 year
  CONTAINS Gynecological History
    CONTAINS Age at First Full Term Pregnancy = 28 year
    CONTAINS Para = 2
  CONTAINS Relevant Previous Procedures
    CONTAINS Previous Procedure = Cyst aspiration
      HAS PROPERTIES Laterality = Left breast
      HAS PROPERTIES Procedure DateTime = 2004-01-03
  CONTAINS Relevant Risk Factors
    CONTAINS Risk factor = Weak family history of breast cancer
      INFERRED FROM Family Member with Risk Factor = Aunt"""


def test_tree_of_the_ee_example() -> None:
    ds = render_identifier(ee_record(), TEMPLATES["9000"], request(), observation_datetime=OBSERVED)
    text = content_tree_text(ds, header=False)
    assert text == EE_TEXT


def test_header_line() -> None:
    ds = render_identifier(ee_record(), TEMPLATES["9000"], request(), observation_datetime=OBSERVED)
    assert patient_header(ds) == (
        "Patient Doe^Jane, ID EE-1 (issuer HOSP), born 1956-03-21, sex F, "
        "template DCMR 9000, observed 2004-11-02 09:30:00"
    )
    assert content_tree_text(ds).splitlines()[0] == patient_header(ds)


def test_text_and_datetime_values() -> None:
    ds = render_identifier(
        rich_record(), TEMPLATES["3802"], request(), observation_datetime=OBSERVED
    )
    text = content_tree_text(ds)
    assert "HAS PROPERTIES Comment = 'normal'" in text
    assert "CONTAINS Cholesterol in HDL = 52.5 mg/dL" in text
    assert "HAS PROPERTIES Procedure DateTime = 2015-03-04" in text


def test_foreign_or_incomplete_identifiers_do_not_raise() -> None:
    ds = Dataset()
    ds.PatientID = "X"
    item = Dataset()
    item.ValueType = "UIDREF"
    item.UID = "1.2.3"
    odd = Dataset()
    odd.ValueType = "SCOORD"
    num = Dataset()
    num.ValueType = "NUM"
    ds.ValueType = "CONTAINER"
    ds.ContentSequence = [item, odd, num]
    lines = content_tree_text(ds).splitlines()
    assert lines == [
        "Patient (no name), ID X",
        "?",
        "  ? = 1.2.3",
        "  ? = <scoord>",
        "  ? = (no value)",
    ]


def test_header_only_for_an_identifier_without_content() -> None:
    ds = Dataset()
    ds.PatientName = "A^B"
    assert content_tree_text(ds) == "Patient A^B"
