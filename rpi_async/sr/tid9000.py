"""TID 9000 Relevant Patient Information for Breast Imaging (PS3.16), PS3.17 Annex EE.

The breast template narrows the general sub-templates with breast-specific value sets,
and these filter: only hormones in CID 6080, procedures in CID 6083, problems in CID 6055
and risk factors in CID 6081 are rendered. Modifier, laterality, result and family member
value sets document the constraint without filtering.
"""

from __future__ import annotations

from rpi_async.sr import concepts as c
from rpi_async.sr.content import FactValue, Requirement, Row, Template, ValueSet, ValueType
from rpi_async.sr.tid900x import (
    gynecological_history,
    indicated_problems,
    medication_substance_exposure,
    previous_procedures,
    risk_factors,
)
from rpi_async.sr.tid1204_1007 import language_of_content, subject_context_patient
from rpi_async.store.model import Section


def _documented(cid: int) -> ValueSet:
    return ValueSet(cid=cid, filter=False)


TID_9000 = Template(
    tid="9000",
    name="Relevant Patient Information for Breast Imaging",
    root=Row(
        None,
        ValueType.CONTAINER,
        c.RELEVANT_PATIENT_INFORMATION_BREAST,
        Requirement.MANDATORY,
        children=(
            language_of_content(),
            *subject_context_patient(),
            gynecological_history(),
            medication_substance_exposure(
                container=c.HISTORY_OF_MEDICATION_USE,
                item=c.MEDICATION_TYPE,
                section=Section.HORMONE,
                values=ValueSet(cid=6080),
            ),
            previous_procedures(
                procedures=ValueSet(cid=6083),
                modifiers=_documented(6058),
                laterality=_documented(6022),
                side=FactValue.BREAST_LATERALITY,
                results=_documented(6063),
                complications=_documented(6062),
            ),
            indicated_problems(
                problems=ValueSet(cid=6055),
                laterality=_documented(6022),
                side=FactValue.BREAST_LATERALITY,
            ),
            risk_factors(risks=ValueSet(cid=6081), family_members=_documented(7451)),
        ),
        origin="TID 9000 row 1",
    ),
)
