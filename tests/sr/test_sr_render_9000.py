"""TID 9000 against the PS3.17 Annex EE worked example, attribute by attribute."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.tag import Tag

from rpi_async.sr.registry import TEMPLATES
from rpi_async.sr.render import render_identifier
from tests.sr.sr_records import (
    OBSERVED,
    ee_record,
    find,
    request,
    rich_record,
    tree,
)

LANGUAGE = (
    "HAS CONCEPT MOD",
    "CODE",
    ("121049", "DCM", "Language of Content Item and Descendants"),
    ("en", "RFC5646", "English"),
    (),
)

# PS3.17 Annex EE, with current SCT codes; unit meanings are those of CID 7456/7181.
EE_CONTENT = (
    LANGUAGE,
    ("CONTAINS", "NUM", ("121033", "DCM", "Subject Age"), ("48", ("a", "UCUM", "year")), ()),
    (
        "CONTAINS",
        "CONTAINER",
        ("267011001", "SCT", "Gynecological History"),
        None,
        (
            (
                "CONTAINS",
                "NUM",
                ("111519", "DCM", "Age at First Full Term Pregnancy"),
                ("28", ("a", "UCUM", "year")),
                (),
            ),
            ("CONTAINS", "NUM", ("11977-6", "LN", "Para"), ("2", ("1", "UCUM", "no units")), ()),
        ),
    ),
    (
        "CONTAINS",
        "CONTAINER",
        ("111513", "DCM", "Relevant Previous Procedures"),
        None,
        (
            (
                "CONTAINS",
                "CODE",
                ("111531", "DCM", "Previous Procedure"),
                ("287572003", "SCT", "Cyst aspiration"),
                (
                    (
                        "HAS PROPERTIES",
                        "CODE",
                        ("272741003", "SCT", "Laterality"),
                        ("80248007", "SCT", "Left breast"),
                        (),
                    ),
                    (
                        "HAS PROPERTIES",
                        "DATETIME",
                        ("122146", "DCM", "Procedure DateTime"),
                        "20040103",
                        (),
                    ),
                ),
            ),
        ),
    ),
    (
        "CONTAINS",
        "CONTAINER",
        ("111515", "DCM", "Relevant Risk Factors"),
        None,
        (
            (
                "CONTAINS",
                "CODE",
                ("80943009", "SCT", "Risk factor"),
                ("111559", "DCM", "Weak family history of breast cancer"),
                (
                    (
                        "INFERRED FROM",
                        "CODE",
                        ("111537", "DCM", "Family Member with Risk Factor"),
                        ("25211005", "SCT", "Aunt"),
                        (),
                    ),
                ),
            ),
        ),
    ),
)

ITEM_KEYWORDS = {
    "CONTAINER": {"ValueType", "ConceptNameCodeSequence", "ContinuityOfContent"},
    "CODE": {"ValueType", "ConceptNameCodeSequence", "ConceptCodeSequence"},
    "NUM": {"ValueType", "ConceptNameCodeSequence", "MeasuredValueSequence"},
    "DATETIME": {"ValueType", "ConceptNameCodeSequence", "DateTime"},
}


def _render() -> Dataset:
    return render_identifier(
        ee_record(), TEMPLATES["9000"], request(), observation_datetime=OBSERVED
    )


def test_ee_worked_example_content_tree() -> None:
    ds = _render()
    assert tuple(tree(item) for item in ds.ContentSequence) == EE_CONTENT


def test_ee_root_and_patient_attributes() -> None:
    ds = _render()
    assert ds.ValueType == "CONTAINER"
    root = ds.ConceptNameCodeSequence[0]
    assert (root.CodeValue, root.CodingSchemeDesignator, root.CodeMeaning) == (
        "111511",
        "DCM",
        "Relevant Patient Information for Breast Imaging",
    )
    assert ds.ContinuityOfContent == "SEPARATE"
    assert ds.ObservationDateTime == "20041102093000"
    template = ds.ContentTemplateSequence[0]
    assert (template.MappingResource, template.TemplateIdentifier) == ("DCMR", "9000")
    assert str(ds.PatientName) == "Doe^Jane"
    assert ds.PatientID == "EE-1"
    assert ds.IssuerOfPatientID == "HOSP"
    assert ds.PatientBirthDate == "19560321"
    assert ds.PatientSex == "F"
    assert "SpecificCharacterSet" not in ds
    assert "RelationshipType" not in ds


def test_top_level_keys_are_exactly_the_request_keys_and_the_content() -> None:
    ds = _render()
    assert set(ds.dir()) == {
        "PatientName",
        "PatientID",
        "IssuerOfPatientID",
        "PatientBirthDate",
        "PatientSex",
        "ObservationDateTime",
        "ValueType",
        "ConceptNameCodeSequence",
        "ContinuityOfContent",
        "ContentTemplateSequence",
        "ContentSequence",
    }


def test_every_item_has_exactly_the_content_item_attributes() -> None:
    def check(item: Dataset) -> None:
        expected = set(ITEM_KEYWORDS[item.ValueType]) | {"RelationshipType"}
        if "ContentSequence" in item:
            expected.add("ContentSequence")
            for child in item.ContentSequence:
                check(child)
        assert set(item.dir()) == expected
        tags = list(item.keys())
        assert tags == sorted(tags)

    for item in _render().ContentSequence:
        check(item)


def test_numeric_values_are_ds_in_a_measured_value_sequence() -> None:
    age = _render().ContentSequence[1]
    measured = age.MeasuredValueSequence[0]
    assert measured["NumericValue"].VR == "DS"
    assert list(measured.keys()) == [Tag(0x0040, 0x08EA), Tag(0x0040, 0xA30A)]


def test_breast_value_sets_filter_facts() -> None:
    ds = render_identifier(
        rich_record(), TEMPLATES["9000"], request(), observation_datetime=OBSERVED
    )
    procedures = find(ds, "111513").ContentSequence
    assert [p.ConceptCodeSequence[0].CodeValue for p in procedures] == ["287572003"]
    problems = find(ds, "11450-4").ContentSequence
    assert [p.ConceptCodeSequence[0].CodeValue for p in problems] == ["162164007"]
    risks = find(ds, "111515").ContentSequence
    assert [r.ConceptCodeSequence[0].CodeValue for r in risks] == ["111559"]
    hormones = find(ds, "10160-0").ContentSequence
    assert [h.ConceptCodeSequence[0].CodeValue for h in hormones] == ["61946003"]


def test_extent_of_hysterectomy_modifies_the_age() -> None:
    ds = render_identifier(
        rich_record(), TEMPLATES["9000"], request(), observation_datetime=OBSERVED
    )
    hysterectomy = tree(find(ds, "111521"))
    assert hysterectomy[3] == ("50", ("a", "UCUM", "year"))
    assert hysterectomy[4] == (
        (
            "HAS CONCEPT MOD",
            "CODE",
            ("255590007", "SCT", "Extent"),
            ("255609007", "SCT", "Partial"),
            (),
        ),
    )
    assert find(ds, "11955-2").Date == "20040920"


def test_a_section_without_matching_facts_leaves_its_container_out() -> None:
    ds = _render()
    concepts = [item.ConceptNameCodeSequence[0].CodeValue for item in ds.ContentSequence]
    assert "10160-0" not in concepts  # no hormones
    assert "11450-4" not in concepts  # no problems
