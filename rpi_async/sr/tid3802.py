"""TID 3802 Cardiovascular Patient History (PS3.16), the Cardiac RPI Query template.

Its sub-templates are written here as functions: TID 3829 Problem Properties (a concern
with its problem, therapy and stage), TID 3830 Procedure Properties (confirmed against
PS3.16 2024c) and TID 3831 Medical Device Properties. The problem list shows cardiac risk
factors (RISK_FACTOR facts in CID 3756, filtering) and the specific concerns the template
names (CARDIAC_CONCERN facts whose code is the concern's code, filtering).
"""

from __future__ import annotations

from rpi_async.dicom.codes import Code
from rpi_async.sr import concepts as c
from rpi_async.sr.content import (
    CONTAINS,
    HAS_PROPERTIES,
    MANY,
    AttributeOf,
    EachFact,
    FactField,
    FactValue,
    M,
    Row,
    Template,
    U,
    ValueSet,
    ValueType,
)
from rpi_async.sr.tid1204_1007 import language_of_content
from rpi_async.store.model import Section

_TID_3829_NOTE = (
    "TID 3829 Problem Properties rows (concern container, problem code, therapy and stage "
    "concept names) could not be confirmed against the current PS3.16 text"
)


def _documented(cid: int) -> ValueSet:
    return ValueSet(cid=cid, filter=False)


def _concern(
    section: Section,
    problems: ValueSet,
    origin: str,
    *,
    therapy: ValueSet | None = None,
    stage: ValueSet | None = None,
) -> Row:
    """TID 3829 Problem Properties, one concern per matching fact."""
    qualifiers: list[Row] = []
    if therapy is not None:
        qualifiers.append(
            Row(
                HAS_PROPERTIES,
                ValueType.CODE,
                c.THERAPY,
                source=FactField(FactValue.MODIFIER),
                value_set=therapy,
            )
        )
    if stage is not None:
        qualifiers.append(
            Row(
                HAS_PROPERTIES,
                ValueType.CODE,
                c.STAGE,
                source=FactField(FactValue.RESULT),
                value_set=stage,
            )
        )
    return Row(
        CONTAINS,
        ValueType.CONTAINER,
        c.CONCERN,
        U,
        MANY,
        source=EachFact(section),
        value_set=problems,
        children=(
            Row(
                CONTAINS,
                ValueType.DATETIME,
                c.DATETIME_CONCERN_NOTED,
                source=FactField(FactValue.START),
            ),
            Row(
                CONTAINS,
                ValueType.DATETIME,
                c.DATETIME_CONCERN_RESOLVED,
                source=FactField(FactValue.END),
            ),
            Row(
                CONTAINS,
                ValueType.CODE,
                c.PROBLEM,
                M,
                source=FactField(FactValue.CODE),
                children=tuple(qualifiers),
            ),
            Row(CONTAINS, ValueType.TEXT, c.COMMENT, source=FactField(FactValue.TEXT)),
        ),
        origin=origin,
        unconfirmed=_TID_3829_NOTE,
    )


def _specific_concern(code: Code, *, therapy: int | None, stage: int | None = None) -> Row:
    codes = (code, c.ARRHYTHMIA_CURRENT) if code == c.ARRHYTHMIA else (code,)
    return _concern(
        Section.CARDIAC_CONCERN,
        ValueSet(codes=codes),
        f"TID 3802 problem list: {code.meaning}",
        therapy=None if therapy is None else _documented(therapy),
        stage=None if stage is None else _documented(stage),
    )


def _procedures(proc_type: Code, section: Section, values: ValueSet | None) -> Row:
    """TID 3830 Procedure Properties, one procedure per fact of ``section``."""
    return Row(
        CONTAINS,
        ValueType.CODE,
        proc_type,
        M,
        MANY,
        source=EachFact(section),
        value_set=values,
        children=(
            Row(
                HAS_PROPERTIES,
                ValueType.DATETIME,
                c.PROCEDURE_DATETIME,
                source=FactField(FactValue.START),
                origin="TID 3830 row 3",
            ),
            Row(
                HAS_PROPERTIES,
                ValueType.TEXT,
                c.COMMENT,
                source=FactField(FactValue.TEXT),
                origin="TID 3830 row 10",
            ),
            Row(
                HAS_PROPERTIES,
                ValueType.CODE,
                c.PROCEDURE_RESULT,
                source=FactField(FactValue.RESULT),
                origin="TID 3830 row 11",
            ),
        ),
        origin="TID 3830 row 1",
    )


def _section(concept: Code, children: tuple[Row, ...], origin: str, note: str = "") -> Row:
    return Row(
        CONTAINS,
        ValueType.CONTAINER,
        concept,
        U,
        children=children,
        origin=origin,
        unconfirmed=note,
    )


def _lab(concept: Code) -> Row:
    return Row(
        CONTAINS,
        ValueType.NUM,
        concept,
        source=AttributeOf(Section.LAB),
        units=c.MG_PER_DL,
        origin=f"TID 3802 {concept.meaning}",
    )


TID_3802 = Template(
    tid="3802",
    name="Cardiovascular Patient History",
    root=Row(
        None,
        ValueType.CONTAINER,
        c.HISTORY,
        M,
        children=(
            language_of_content(),
            Row(CONTAINS, ValueType.TEXT, c.HISTORY, origin="TID 3802 row 2 (no record field)"),
            _section(
                c.PROBLEM_LIST,
                (
                    _concern(
                        Section.RISK_FACTOR,
                        ValueSet(cid=3756),
                        "TID 3802 problem list: cardiac risk factors",
                    ),
                    _specific_concern(c.HISTORY_OF_DIABETES, therapy=3722),
                    _specific_concern(c.HISTORY_OF_HYPERTENSION, therapy=3760),
                    _specific_concern(c.HISTORY_OF_HYPERCHOLESTEROLEMIA, therapy=3761),
                    _specific_concern(c.ARRHYTHMIA, therapy=3762),
                    _specific_concern(c.HISTORY_OF_MYOCARDIAL_INFARCTION, therapy=3764),
                    _specific_concern(c.HISTORY_OF_KIDNEY_DISEASE, therapy=None, stage=3778),
                ),
                "TID 3802 problem list",
            ),
            _section(
                c.SOCIAL_HISTORY,
                (
                    Row(
                        CONTAINS,
                        ValueType.CODE,
                        c.TOBACCO_SMOKING_BEHAVIOR,
                        source=AttributeOf(Section.SOCIAL),
                        value_set=_documented(3724),
                    ),
                    Row(
                        CONTAINS,
                        ValueType.CODE,
                        c.DRUG_MISUSE_BEHAVIOR,
                        source=AttributeOf(Section.SOCIAL),
                    ),
                ),
                "TID 3802 social history",
            ),
            _section(
                c.PAST_SURGICAL_HISTORY,
                (_procedures(c.SURGICAL_PROCEDURE, Section.SURGICAL, None),),
                "TID 3802 past surgical history",
            ),
            _section(
                c.RELEVANT_DIAGNOSTIC_TESTS,
                (
                    _procedures(c.DIAGNOSTIC_PROCEDURE, Section.DIAGNOSTIC_TEST, _documented(3757)),
                    _lab(c.HDL_CHOLESTEROL),
                    _lab(c.LDL_CHOLESTEROL),
                ),
                "TID 3802 diagnostic tests and laboratory data",
            ),
            _section(
                c.HISTORY_OF_MEDICATION_USE,
                (
                    Row(
                        CONTAINS,
                        ValueType.CODE,
                        c.MEDICATION_TYPE,
                        M,
                        MANY,
                        source=EachFact(Section.MEDICATION),
                        children=(
                            Row(
                                HAS_PROPERTIES,
                                ValueType.CODE,
                                c.STATUS,
                                source=FactField(FactValue.MODIFIER),
                                value_set=ValueSet(cid=3773),
                            ),
                            Row(
                                HAS_PROPERTIES,
                                ValueType.TEXT,
                                c.DOSAGE,
                                source=FactField(FactValue.TEXT),
                            ),
                        ),
                    ),
                ),
                "TID 3802 medication history",
                "relationship types of the status and dosage rows",
            ),
            _section(
                c.HISTORY_OF_FAMILY_MEMBER_DISEASES,
                (
                    Row(
                        CONTAINS,
                        ValueType.CODE,
                        c.FAMILY_HISTORY_OF_CLINICAL_FINDING,
                        M,
                        MANY,
                        source=EachFact(Section.FAMILY_HISTORY),
                        children=(
                            Row(
                                HAS_PROPERTIES,
                                ValueType.CODE,
                                c.SUBJECT_RELATIONSHIP,
                                source=FactField(FactValue.MODIFIER),
                                value_set=_documented(7451),
                            ),
                        ),
                    ),
                ),
                "TID 3802 family history",
            ),
            _section(
                c.HISTORY_OF_MEDICAL_DEVICE_USE,
                (
                    Row(
                        CONTAINS,
                        ValueType.CODE,
                        c.MEDICAL_DEVICE_USED,
                        M,
                        MANY,
                        source=EachFact(Section.DEVICE),
                        value_set=_documented(3777),
                        children=(
                            Row(
                                HAS_PROPERTIES,
                                ValueType.DATETIME,
                                c.DATETIME_STARTED,
                                source=FactField(FactValue.START),
                            ),
                            Row(
                                HAS_PROPERTIES,
                                ValueType.DATETIME,
                                c.DATETIME_ENDED,
                                source=FactField(FactValue.END),
                            ),
                            Row(
                                HAS_PROPERTIES,
                                ValueType.TEXT,
                                c.COMMENT,
                                source=FactField(FactValue.TEXT),
                            ),
                        ),
                        origin="TID 3831 Medical Device Properties",
                    ),
                ),
                "TID 3802 medical device history",
                "TID 3831 rows could not be confirmed against the current PS3.16 text",
            ),
        ),
        origin="TID 3802 row 1",
    ),
    notes=(
        "TID 3802 has no TID 1204 row; the language item is added first as for the other "
        "root templates (the template is extensible).",
    ),
)
