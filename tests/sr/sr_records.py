"""Records, requests and a tree view shared by the SR tests."""

from __future__ import annotations

import datetime
from typing import Any

from pydicom.dataset import Dataset

from rpi_async.dicom.codes import Code
from rpi_async.store.model import Fact, OtherPatientId, PatientRecord, Section

OBSERVED = datetime.datetime(2004, 11, 2, 9, 30, 0)

LEFT_BREAST = Code("80248007", "SCT", "Left breast")
AUNT = Code("25211005", "SCT", "Aunt")
CYST_ASPIRATION = Code("287572003", "SCT", "Cyst aspiration")
WEAK_FAMILY_HISTORY = Code("111559", "DCM", "Weak family history of breast cancer")
HYSTERECTOMY_AGE = Code("111521", "DCM", "Age when hysterectomy performed")


def ee_record() -> PatientRecord:
    """The patient of the PS3.17 Annex EE worked example (TID 9000)."""
    return PatientRecord(
        patient_id="EE-1",
        issuer="HOSP",
        name="Doe^Jane",
        birth_date="19560321",  # 48 on OBSERVED
        sex="F",
        facts=(
            Fact(
                Section.GYNECOLOGICAL,
                concept=Code("111519", "DCM", "Age at First Full Term Pregnancy"),
                number=28,
            ),
            Fact(Section.GYNECOLOGICAL, concept=Code("11977-6", "LN", "Para"), number=2),
            Fact(
                Section.PROCEDURE,
                code=CYST_ASPIRATION,
                laterality=LEFT_BREAST,
                start="20040103",
            ),
            Fact(Section.RISK_FACTOR, code=WEAK_FAMILY_HISTORY, modifier=AUNT),
        ),
    )


def rich_record(name: str = "Doe^Jane") -> PatientRecord:
    """Facts in every section, including codes outside the breast and cardiac value sets."""
    facts = (
        Fact(
            Section.MEDICATION,
            code=Code("387458008", "SCT", "Aspirin"),
            start="20200101",
            ongoing=True,
            text="100 mg daily",
            modifier=Code("385651009", "SCT", "In progress"),
        ),
        Fact(
            Section.MEDICATION,
            code=Code("372756006", "SCT", "Warfarin"),
            modifier=Code("26643006", "SCT", "Oral route"),
            ongoing=False,
        ),
        Fact(
            Section.HORMONE,
            code=Code("61946003", "SCT", "Estrogen product"),
            start="19990101",
            end="20010101",
        ),
        Fact(Section.HORMONE, code=Code("387458008", "SCT", "Aspirin")),  # not in CID 6080
        Fact(Section.SUBSTANCE, code=Code("53041004", "SCT", "Alcohol"), text="Brand X"),
        Fact(Section.ENVIRONMENT, code=Code("30549001", "SCT", "Radon")),
        Fact(Section.PROCEDURE, code=CYST_ASPIRATION, laterality=LEFT_BREAST, start="2004"),
        Fact(Section.PROCEDURE, code=Code("80146002", "SCT", "Appendectomy")),  # not 6083
        Fact(Section.PROBLEM, code=Code("162164007", "SCT", "Nipple discharge"), start="20030101"),
        Fact(Section.PROBLEM, code=Code("73211009", "SCT", "Diabetes mellitus")),  # not 6055
        Fact(Section.RISK_FACTOR, code=WEAK_FAMILY_HISTORY, modifier=AUNT, number=45),
        Fact(
            Section.RISK_FACTOR,
            code=Code("161501007", "SCT", "History of Hypertension"),  # 3756, not 6081
            start="20100101",
        ),
        Fact(
            Section.GYNECOLOGICAL,
            concept=HYSTERECTOMY_AGE,
            number=50,
            modifier=Code("255609007", "SCT", "Partial"),
        ),
        Fact(
            Section.GYNECOLOGICAL,
            concept=Code("11955-2", "LN", "Date of last menstrual period"),
            start="20040920",
        ),
        Fact(
            Section.CARDIAC_CONCERN,
            code=Code("161445009", "SCT", "History of Diabetes"),
            modifier=Code("170747006", "SCT", "Diabetic on Insulin"),
        ),
        Fact(
            Section.CARDIAC_CONCERN,
            code=Code("275552000", "SCT", "History of kidney disease"),
            result=Code("258219007", "SCT", "Stage 2"),
        ),
        Fact(Section.CARDIAC_CONCERN, code=Code("22298006", "SCT", "Myocardial infarction")),
        Fact(
            Section.SOCIAL,
            concept=Code("365981007", "SCT", "Tobacco smoking behavior"),
            code=Code("8517006", "SCT", "Former Smoker"),
        ),
        Fact(
            Section.SURGICAL,
            code=Code("232717009", "SCT", "Coronary artery bypass graft"),
            start="20150304",
        ),
        Fact(
            Section.DIAGNOSTIC_TEST,
            code=Code("40701008", "SCT", "Echocardiography"),
            text="normal",
        ),
        Fact(
            Section.LAB,
            concept=Code("2086-7", "LN", "HDL"),
            number=52.5,
            unit=Code("mg/dL", "UCUM", "mg/dL"),
        ),
        Fact(Section.LAB, concept=Code("2089-1", "LN", "LDL"), number=131),
        Fact(Section.FAMILY_HISTORY, code=Code("22298006", "SCT", "MI"), modifier=AUNT),
        Fact(
            Section.DEVICE,
            code=Code("14106009", "SCT", "Cardiac pacemaker"),
            start="20180101",
        ),
    )
    return PatientRecord(
        patient_id="RICH-1",
        issuer="HOSP",
        name=name,
        birth_date="19560321",
        sex="F",
        other_ids=(OtherPatientId("X-9", "OTHER"),),
        facts=facts,
    )


def request(*extra: str) -> Dataset:
    """A request identifier asking for the usual patient keys (plus ``extra`` keywords)."""
    ds = Dataset()
    ds.PatientName = ""
    ds.PatientID = "EE-1"
    ds.IssuerOfPatientID = ""
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    for keyword in extra:
        setattr(ds, keyword, None)
    item = Dataset()
    item.MappingResource = "DCMR"
    item.TemplateIdentifier = "9000"
    ds.ContentTemplateSequence = [item]
    ds.ConceptNameCodeSequence = []
    ds.ContentSequence = []
    return ds


def code_of(item: Dataset, keyword: str) -> tuple[str, str, str]:
    code = item[keyword].value[0]
    return (code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning)


def tree(item: Dataset) -> tuple[Any, ...]:
    """(relationship, value type, concept, value, children) of a content item, recursively.

    value: a code triple (CODE), (numeric value, unit triple) (NUM), the string (TEXT,
    DATE, DATETIME) or None (CONTAINER).
    """
    vt = item.ValueType
    value: Any = None
    if vt == "CODE":
        value = code_of(item, "ConceptCodeSequence")
    elif vt == "NUM":
        measured = item.MeasuredValueSequence[0]
        value = (str(measured.NumericValue), code_of(measured, "MeasurementUnitsCodeSequence"))
    elif vt == "TEXT":
        value = item.TextValue
    elif vt == "DATE":
        value = item.Date
    elif vt == "DATETIME":
        value = item.DateTime
    children = tuple(tree(child) for child in item.get("ContentSequence", []))
    return (
        item.get("RelationshipType"),
        vt,
        code_of(item, "ConceptNameCodeSequence"),
        value,
        children,
    )


def concepts_of(ds: Dataset) -> list[str]:
    """Concept code values of the top-level content items, in order."""
    return [item.ConceptNameCodeSequence[0].CodeValue for item in ds.ContentSequence]


def find(ds: Dataset, code_value: str) -> Dataset:
    """The first content item (depth first) whose concept name has ``code_value``."""
    items: list[Dataset] = ds.get("ContentSequence", [])
    for item in items:
        if item.ConceptNameCodeSequence[0].CodeValue == code_value:
            return item
        try:
            return find(item, code_value)
        except KeyError:
            continue
    raise KeyError(code_value)
