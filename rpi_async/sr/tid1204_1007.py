"""TID 1204 Language of Content Item and Descendants, TID 1007 Subject Context, Patient.

Only the rows the RPI templates need: the language of the content (always English here,
PS3.16 CID 5000) and the patient's age at the time of the observation.
"""

from __future__ import annotations

from rpi_async.sr import concepts as c
from rpi_async.sr.content import (
    Constant,
    Relationship,
    Requirement,
    Row,
    SubjectAge,
    ValueSet,
    ValueType,
)


def language_of_content() -> Row:
    """TID 1204 row 1, included with HAS CONCEPT MOD; country of language (row 2) omitted."""
    return Row(
        Relationship.HAS_CONCEPT_MOD,
        ValueType.CODE,
        c.LANGUAGE_OF_CONTENT,
        Requirement.MANDATORY,
        source=Constant(c.ENGLISH),
        value_set=ValueSet(cid=5000, filter=False),
        origin="TID 1204 row 1",
    )


def subject_context_patient() -> tuple[Row, ...]:
    """TID 1007 as far as the record supports it: Subject Age (CID 7456 units, in years)."""
    return (
        Row(
            Relationship.CONTAINS,
            ValueType.NUM,
            c.SUBJECT_AGE,
            source=SubjectAge(),
            units=c.YEARS,
            origin="TID 1007 Subject Age",
        ),
    )
