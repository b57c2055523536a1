"""TID 3802 Cardiovascular Patient History: structure with and without data."""

from __future__ import annotations

from pydicom.dataset import Dataset

from rpi_async.sr.registry import TEMPLATES
from rpi_async.sr.render import render_identifier
from rpi_async.store.model import PatientRecord
from tests.sr.sr_records import AUNT, OBSERVED, concepts_of, find, request, rich_record, tree


def _render(record: PatientRecord) -> Dataset:
    return render_identifier(record, TEMPLATES["3802"], request(), observation_datetime=OBSERVED)


def test_root_concept_language_and_sections() -> None:
    ds = _render(rich_record())
    root = ds.ConceptNameCodeSequence[0]
    assert (root.CodeValue, root.CodingSchemeDesignator, root.CodeMeaning) == (
        "11329-0",
        "LN",
        "History",
    )
    assert concepts_of(ds) == [
        "121049",
        "11450-4",  # problem list
        "29762-2",  # social history
        "10167-5",  # past surgical history
        "30954-2",  # diagnostic tests and laboratory data
        "10160-0",  # medications
        "10157-6",  # family history
        "46264-8",  # devices
    ]


def test_mandatory_rows_present_without_data() -> None:
    ds = _render(PatientRecord(patient_id="EE-1"))
    assert concepts_of(ds) == ["121049"]
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "3802"


def test_problem_list_concerns() -> None:
    concerns = find(_render(rich_record()), "11450-4").ContentSequence
    problems = [tree(c) for c in concerns]
    assert all(p[1:3] == ("CONTAINER", ("121430", "DCM", "Concern")) for p in problems)
    coded = [next(ch[3] for ch in p[4] if ch[2][0] == "55607006") for p in problems]
    # the CID 3756 risk factor, then the specific concerns in template order; the
    # myocardial infarction fact (22298006) is none of the concern codes and is left out
    assert [code[0] for code in coded] == ["161501007", "161445009", "275552000"]
    diabetes = next(ch for ch in problems[1][4] if ch[2][0] == "55607006")
    assert diabetes[4] == (
        (
            "HAS PROPERTIES",
            "CODE",
            ("277132007", "SCT", "Therapy"),
            ("170747006", "SCT", "Diabetic on Insulin"),
            (),
        ),
    )
    kidney = next(ch for ch in problems[2][4] if ch[2][0] == "55607006")
    assert kidney[4][0][2:4] == (("261612004", "SCT", "Stage"), ("258219007", "SCT", "Stage 2"))


def test_social_history_labs_medications_and_family() -> None:
    ds = _render(rich_record())
    smoking = tree(find(ds, "365981007"))
    assert smoking[3] == ("8517006", "SCT", "Former Smoker")
    assert tree(find(ds, "2086-7"))[3] == ("52.5", ("mg/dL", "UCUM", "mg/dL"))
    assert tree(find(ds, "2089-1"))[3] == ("131", ("mg/dL", "UCUM", "mg/dL"))
    medications = [tree(m) for m in find(ds, "10160-0").ContentSequence]
    assert [m[2][0] for m in medications] == ["111516", "111516"]
    assert [ch[2][0] for ch in medications[0][4]] == ["33999-4", "260911001"]
    assert medications[1][4] == ()  # the oral route is not a status
    family = tree(find(ds, "10157-6").ContentSequence[0])
    relationship = ("408732007", "SCT", "Subject relationship")
    assert family[4][0][2:4] == (relationship, (AUNT.value, AUNT.scheme, AUNT.meaning))


def test_procedures_use_tid_3830() -> None:
    ds = _render(rich_record())
    surgery = tree(find(ds, "10167-5").ContentSequence[0])
    assert surgery[:4] == (
        "CONTAINS",
        "CODE",
        ("387713003", "SCT", "Surgical procedure"),
        ("232717009", "SCT", "Coronary artery bypass graft"),
    )
    assert surgery[4] == (
        ("HAS PROPERTIES", "DATETIME", ("122146", "DCM", "Procedure DateTime"), "20150304", ()),
    )
    echo = tree(find(ds, "30954-2").ContentSequence[0])
    assert echo[4] == (("HAS PROPERTIES", "TEXT", ("121106", "DCM", "Comment"), "normal", ()),)
