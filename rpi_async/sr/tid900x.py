"""TID 9001-9005: the sub-templates of the Relevant Patient Information templates.

Each function returns the container row of one sub-template, parameterised the way PS3.16
includes it (container and item concepts, value sets). The requirement passed in is the
requirement of the INCLUDE row in the including template: the container is left out when
the include is optional and nothing below it has data.

Field bindings (which ``Fact`` field feeds which row) are this project's decision and are
summarised in ``rpi_async.sr``.
"""

from __future__ import annotations

from rpi_async.dicom.codes import Code
from rpi_async.sr import concepts as c
from rpi_async.sr.content import (
    CONTAINS,
    HAS_CONCEPT_MOD,
    HAS_OBS_CONTEXT,
    HAS_PROPERTIES,
    MANY,
    AttributeOf,
    EachFact,
    FactField,
    FactValue,
    M,
    Relationship,
    Requirement,
    Row,
    U,
    ValueSet,
    ValueType,
)
from rpi_async.store.model import Section

GYN = Section.GYNECOLOGICAL


def _gyn_num(concept: Code, units: Code, row: int, children: tuple[Row, ...] = ()) -> Row:
    return Row(
        CONTAINS,
        ValueType.NUM,
        concept,
        source=AttributeOf(GYN),
        units=units,
        children=children,
        origin=f"TID 9001 row {row}",
    )


_COUNT_ORDER_NOTE = (
    "order of the count rows (6-13) follows the project's digest of PS3.16; the PS3.16-2013 "
    "table confirms eight count rows with units (1, UCUM, 'no units') but the order was not "
    "confirmed"
)


def gynecological_history(requirement: Requirement = U) -> Row:
    """TID 9001 Gynecological History: attribute facts of the GYNECOLOGICAL section."""
    counts = (c.PARA, c.TERM, c.PRETERM, c.LIVE_BIRTHS, c.LBW_OR_IUGR, c.GRAVIDA, c.ABORTA)
    count_rows = tuple(_gyn_num(concept, c.NO_UNITS, 6 + i) for i, concept in enumerate(counts))
    count_rows += (
        Row(
            CONTAINS,
            ValueType.NUM,
            c.ECTOPIC_PREGNANCIES,
            source=AttributeOf(GYN),
            units=c.NO_UNITS,
            origin="TID 9001 row 13",
            unconfirmed=_COUNT_ORDER_NOTE,
        ),
    )
    return Row(
        CONTAINS,
        ValueType.CONTAINER,
        c.GYNECOLOGICAL_HISTORY,
        requirement,
        children=(
            Row(
                HAS_OBS_CONTEXT,
                ValueType.CODE,
                c.ROLE_OF_PERSON_REPORTING,
                source=AttributeOf(GYN),
                value_set=ValueSet(cid=7450, filter=False),
                origin="TID 9001 row 2",
            ),
            Row(
                CONTAINS,
                ValueType.DATE,
                c.DATE_OF_LAST_MENSTRUAL_PERIOD,
                source=AttributeOf(GYN),
                origin="TID 9001 row 3",
            ),
            _gyn_num(c.AGE_AT_FIRST_MENSES, c.YEARS, 4),
            _gyn_num(c.AGE_AT_FIRST_FULL_TERM_PREGNANCY, c.YEARS, 5),
            *count_rows,
            _gyn_num(c.AGE_AT_MENOPAUSE, c.YEARS, 14),
            _gyn_num(
                c.AGE_AT_HYSTERECTOMY,
                c.YEARS,
                15,
                children=(
                    Row(
                        HAS_CONCEPT_MOD,
                        ValueType.CODE,
                        c.EXTENT,
                        source=FactField(FactValue.MODIFIER),
                        value_set=ValueSet(codes=(c.COMPLETE, c.PARTIAL)),
                        origin="TID 9001 row 16",
                    ),
                ),
            ),
            _gyn_num(c.AGE_LEFT_OVARY_REMOVED, c.YEARS, 17),
            _gyn_num(c.AGE_RIGHT_OVARY_REMOVED, c.YEARS, 18),
            Row(
                CONTAINS,
                ValueType.CODE,
                c.BREAST_FEEDING_HISTORY,
                source=AttributeOf(GYN),
                value_set=ValueSet(cid=231, filter=False),
                children=(
                    Row(
                        HAS_PROPERTIES,
                        ValueType.NUM,
                        c.AVERAGE_BREAST_FEEDING_PERIOD,
                        source=FactField(FactValue.NUMBER),
                        units=c.WEEKS,
                    ),
                ),
                origin="TID 9001 breast feeding history",
                unconfirmed="row numbers and relationship of the duration row",
            ),
            Row(
                CONTAINS,
                ValueType.CODE,
                c.PREGNANCY_OBSERVABLE,
                source=AttributeOf(GYN),
                value_set=ValueSet(cid=6096, filter=False),
                origin="TID 9001 pregnancy status",
            ),
            Row(
                CONTAINS,
                ValueType.CODE,
                c.MENSTRUAL_CYCLE_PHASE,
                source=AttributeOf(GYN),
                value_set=ValueSet(cid=6163, filter=False),
                origin="TID 9001 menstrual cycle phase",
            ),
        ),
        origin="TID 9001 row 1",
    )


def medication_substance_exposure(
    *,
    container: Code,
    item: Code,
    section: Section,
    values: ValueSet | None = None,
    requirement: Requirement = U,
    medication: bool = False,
) -> Row:
    """TID 9002 Medication, Substance, Environmental Exposure.

    ``$ContainerConcept`` = ``container``, ``$CodeConcept`` = ``item``, ``$CodeValue`` =
    ``values``; the items are the facts of ``section``. The fact's ``modifier`` is the
    route of administration (only rendered when it is in CID 11 "Route of
    Administration"). For medications (``medication=True``) the ``modifier`` may instead
    carry the use status (CID 3773) and ``text`` is the dosage; for the other uses
    ``text`` is the brand name.
    """
    text_row = (
        Row(
            HAS_PROPERTIES,
            ValueType.TEXT,
            c.DOSAGE,
            source=FactField(FactValue.TEXT),
            origin="TID 9002 extension: dosage",
            unconfirmed="TID 9002 has dose rows whose concepts were not confirmed; the "
            "medication's free-text dosage is rendered as (260911001, SCT, 'Dosage')",
        )
        if medication
        else Row(
            HAS_PROPERTIES,
            ValueType.TEXT,
            c.BRAND_NAME,
            source=FactField(FactValue.TEXT),
            origin="TID 9002 brand name",
        )
    )
    status_rows = (
        (
            Row(
                HAS_PROPERTIES,
                ValueType.CODE,
                c.STATUS,
                source=FactField(FactValue.MODIFIER),
                value_set=ValueSet(cid=3773),
                origin="TID 9002 extension: use status",
                unconfirmed="not a TID 9002 row; the status TID 3802 records for medications",
            ),
        )
        if medication
        else ()
    )
    return Row(
        CONTAINS,
        ValueType.CONTAINER,
        container,
        requirement,
        children=(
            Row(
                CONTAINS,
                ValueType.CODE,
                item,
                M,
                MANY,
                source=EachFact(section),
                value_set=values,
                children=(
                    Row(
                        HAS_CONCEPT_MOD,
                        ValueType.CODE,
                        c.CLASSIFICATION,
                        origin="TID 9002 row 3",
                    ),
                    Row(
                        HAS_PROPERTIES,
                        ValueType.DATETIME,
                        c.DATETIME_STARTED,
                        source=FactField(FactValue.START),
                        origin="TID 9002 row 7",
                    ),
                    Row(
                        HAS_PROPERTIES,
                        ValueType.DATETIME,
                        c.DATETIME_ENDED,
                        source=FactField(FactValue.END),
                        origin="TID 9002 row 8",
                    ),
                    Row(
                        HAS_PROPERTIES,
                        ValueType.CODE,
                        c.ONGOING,
                        source=FactField(FactValue.ONGOING),
                        value_set=ValueSet(cid=231, filter=False),
                        origin="TID 9002 ongoing",
                    ),
                    text_row,
                    *status_rows,
                    Row(
                        HAS_PROPERTIES,
                        ValueType.CODE,
                        c.ROUTE_OF_ADMINISTRATION,
                        source=FactField(FactValue.MODIFIER),
                        value_set=ValueSet(cid=11),
                        children=(
                            Row(
                                HAS_PROPERTIES,
                                ValueType.CODE,
                                c.SITE_OF,
                                source=FactField(FactValue.SITE),
                            ),
                            Row(
                                HAS_CONCEPT_MOD,
                                ValueType.CODE,
                                c.LATERALITY,
                                source=FactField(FactValue.GENERAL_LATERALITY),
                                value_set=ValueSet(cid=244, filter=False),
                            ),
                        ),
                        origin="TID 9002 route of administration",
                        unconfirmed="relationship types and nesting of rows after row 8 "
                        "(route, site, laterality)",
                    ),
                ),
                origin="TID 9002 row 2",
            ),
        ),
        origin="TID 9002 row 1",
    )


def previous_procedures(
    *,
    procedures: ValueSet | None = None,
    modifiers: ValueSet | None = None,
    laterality: ValueSet | None = None,
    results: ValueSet | None = None,
    complications: ValueSet | None = None,
    requirement: Requirement = U,
    side: FactValue = FactValue.GENERAL_LATERALITY,
) -> Row:
    """TID 9003 Previous Procedures: the facts of the PROCEDURE section.

    ``side`` is the fact's laterality in the group of ``laterality`` (CID 244, or CID
    6022 for breast imaging).
    """
    return Row(
        CONTAINS,
        ValueType.CONTAINER,
        c.RELEVANT_PREVIOUS_PROCEDURES,
        requirement,
        children=(
            Row(
                CONTAINS,
                ValueType.CODE,
                c.PREVIOUS_PROCEDURE,
                M,
                MANY,
                source=EachFact(Section.PROCEDURE),
                value_set=procedures,
                children=(
                    Row(
                        HAS_CONCEPT_MOD,
                        ValueType.CODE,
                        c.PROCEDURE_MODIFIER,
                        source=FactField(FactValue.MODIFIER),
                        value_set=modifiers,
                        origin="TID 9003 procedure modifier",
                    ),
                    Row(
                        HAS_PROPERTIES,
                        ValueType.CODE,
                        c.LATERALITY,
                        source=FactField(side),
                        value_set=laterality,
                        origin="TID 9003 laterality (PS3.17 EE: HAS PROPERTIES)",
                    ),
                    Row(
                        HAS_PROPERTIES,
                        ValueType.DATETIME,
                        c.PROCEDURE_DATETIME,
                        source=FactField(FactValue.START),
                        origin="TID 9003 procedure datetime",
                    ),
                    Row(
                        HAS_PROPERTIES,
                        ValueType.NUM,
                        c.NUMBER_OF_OCCURRENCES,
                        source=FactField(FactValue.NUMBER),
                        units=c.NO_UNITS,
                        origin="TID 9003 number of occurrences",
                    ),
                    Row(
                        HAS_PROPERTIES,
                        ValueType.CODE,
                        c.COMPLICATION,
                        value_set=complications,
                        origin="TID 9003 complication (no record field)",
                    ),
                    Row(
                        HAS_PROPERTIES,
                        ValueType.CODE,
                        c.PROCEDURE_RESULT,
                        source=FactField(FactValue.RESULT),
                        value_set=results,
                        origin="TID 9003 procedure result",
                    ),
                ),
                origin="TID 9003 row 2",
            ),
        ),
        origin="TID 9003 row 1",
    )


def indicated_problems(
    *,
    problems: ValueSet | None = None,
    laterality: ValueSet | None = None,
    requirement: Requirement = U,
    side: FactValue = FactValue.GENERAL_LATERALITY,
) -> Row:
    """TID 9004 Indicated Problems: the facts of the PROBLEM section (``side`` as in
    ``previous_procedures``)."""
    return Row(
        CONTAINS,
        ValueType.CONTAINER,
        c.PROBLEM_LIST,
        requirement,
        children=(
            Row(
                CONTAINS,
                ValueType.CODE,
                c.INDICATED_PROBLEM,
                M,
                MANY,
                source=EachFact(Section.PROBLEM),
                value_set=problems,
                children=(
                    Row(
                        HAS_OBS_CONTEXT,
                        ValueType.CODE,
                        c.ROLE_OF_PERSON_REPORTING,
                        origin="TID 9004 reporter (no record field)",
                    ),
                    Row(
                        HAS_PROPERTIES,
                        ValueType.DATETIME,
                        c.DATETIME_PROBLEM_OBSERVED,
                        source=FactField(FactValue.START),
                        origin="TID 9004 onset",
                    ),
                    Row(
                        HAS_CONCEPT_MOD,
                        ValueType.CODE,
                        c.LATERALITY,
                        source=FactField(side),
                        value_set=laterality,
                        origin="TID 9004 laterality",
                        unconfirmed="relationship type of the laterality row",
                    ),
                    Row(
                        HAS_PROPERTIES,
                        ValueType.CODE,
                        c.FINDING_SITE,
                        source=FactField(FactValue.SITE),
                        origin="TID 9004 finding site",
                    ),
                    Row(
                        HAS_PROPERTIES,
                        ValueType.DATETIME,
                        c.DATETIME_PROBLEM_RESOLVED,
                        source=FactField(FactValue.END),
                        origin="TID 9004 resolution",
                        unconfirmed="the digest names (111536, DCM) for resolution, whose "
                        "current meaning is 'DateTime of last evaluation'; the resolution "
                        "date is rendered as (121433, DCM, 'DateTime Problem Resolved')",
                    ),
                    Row(
                        HAS_PROPERTIES,
                        ValueType.TEXT,
                        c.COMMENT,
                        source=FactField(FactValue.TEXT),
                        origin="TID 9004 comment",
                    ),
                ),
                origin="TID 9004 row 2",
            ),
        ),
        origin="TID 9004 row 1",
    )


def risk_factors(
    *,
    risks: ValueSet | None = None,
    family_members: ValueSet | None = None,
    requirement: Requirement = U,
) -> Row:
    """TID 9005 Risk Factors: the facts of the RISK_FACTOR section."""
    return Row(
        CONTAINS,
        ValueType.CONTAINER,
        c.RELEVANT_RISK_FACTORS,
        requirement,
        children=(
            Row(
                CONTAINS,
                ValueType.CODE,
                c.RISK_FACTOR,
                M,
                MANY,
                source=EachFact(Section.RISK_FACTOR),
                value_set=risks,
                children=(
                    Row(
                        HAS_PROPERTIES,
                        ValueType.NUM,
                        c.AGE_AT_OCCURRENCE,
                        source=FactField(FactValue.NUMBER),
                        units=c.YEARS,
                        origin="TID 9005 age at onset",
                    ),
                    Row(
                        HAS_PROPERTIES,
                        ValueType.TEXT,
                        c.COMMENT,
                        source=FactField(FactValue.TEXT),
                        origin="TID 9005 comment",
                    ),
                    Row(
                        Relationship.INFERRED_FROM,
                        ValueType.CODE,
                        c.FAMILY_MEMBER_WITH_RISK_FACTOR,
                        source=FactField(FactValue.MODIFIER),
                        value_set=family_members,
                        origin="TID 9005 family member (PS3.17 EE: INFERRED FROM)",
                    ),
                ),
                origin="TID 9005 row 2",
            ),
        ),
        origin="TID 9005 row 1",
    )
