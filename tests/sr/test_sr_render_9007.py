"""TID 9007 General Relevant Patient Information: structure with and without data."""

from __future__ import annotations

from pydicom.dataset import Dataset

from rpi_async.sr.registry import TEMPLATES
from rpi_async.sr.render import render_identifier
from rpi_async.store.model import PatientRecord
from tests.sr.sr_records import OBSERVED, concepts_of, find, request, rich_record, tree


def _render(record: PatientRecord) -> Dataset:
    return render_identifier(record, TEMPLATES["9007"], request(), observation_datetime=OBSERVED)


def test_root_concept_and_language_first() -> None:
    ds = _render(rich_record())
    root = ds.ConceptNameCodeSequence[0]
    assert (root.CodeValue, root.CodeMeaning) == ("111517", "Relevant Patient Information")
    language = ds.ContentSequence[0]
    assert language.RelationshipType == "HAS CONCEPT MOD"
    assert language.ConceptCodeSequence[0].CodeValue == "en"
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "9007"


def test_sections_in_template_order() -> None:
    assert concepts_of(_render(rich_record())) == [
        "121049",  # language
        "121033",  # subject age
        "10160-0",  # medications
        "111545",  # substances
        "111547",  # environmental exposures
        "111513",  # previous procedures
        "11450-4",  # problems
        "111515",  # risk factors
        "267011001",  # gynecological history (rows 10-13, unconfirmed)
    ]


def test_mandatory_rows_present_without_data() -> None:
    empty = PatientRecord(patient_id="EE-1")
    ds = _render(empty)
    assert concepts_of(ds) == ["121049"]  # no birth date: no age either
    assert ds.ValueType == "CONTAINER"
    assert ds.ContinuityOfContent == "SEPARATE"


def test_general_template_shows_every_fact_whatever_its_code() -> None:
    ds = _render(rich_record())
    procedures = [p.ConceptCodeSequence[0].CodeValue for p in find(ds, "111513").ContentSequence]
    assert procedures == ["287572003", "80146002"]
    risks = [r.ConceptCodeSequence[0].CodeValue for r in find(ds, "111515").ContentSequence]
    assert risks == ["111559", "161501007"]
    problems = [p.ConceptCodeSequence[0].CodeValue for p in find(ds, "11450-4").ContentSequence]
    assert problems == ["162164007", "73211009"]


def test_medication_route_status_dosage_and_ongoing() -> None:
    medications = find(_render(rich_record()), "10160-0").ContentSequence
    aspirin, warfarin = (tree(item) for item in medications)
    assert aspirin[3] == ("387458008", "SCT", "Aspirin")
    assert {child[2][0]: child[3] for child in aspirin[4]} == {
        "111526": "20200101",
        "111528": ("373066001", "SCT", "Yes"),
        "260911001": "100 mg daily",
        "33999-4": ("385651009", "SCT", "In progress"),  # a status, not a route
    }
    assert {child[2][0]: child[3] for child in warfarin[4]} == {
        "111528": ("373067005", "SCT", "No"),
        "410675002": ("26643006", "SCT", "Oral route"),  # a route, not a status
    }


def test_substance_text_is_the_brand_name() -> None:
    alcohol = tree(find(_render(rich_record()), "111545").ContentSequence[0])
    assert alcohol[4] == (
        ("HAS PROPERTIES", "TEXT", ("111529", "DCM", "Brand Name"), "Brand X", ()),
    )


def test_optional_children_without_data_are_left_out() -> None:
    radon = find(_render(rich_record()), "111547").ContentSequence[0]
    assert "ContentSequence" not in radon
