"""TID 9007 General Relevant Patient Information (PS3.16), the General RPI Query default.

The value sets of this template document the standard's constraint without filtering:
the general template shows all facts of the sections it covers (medications, substances,
environmental exposures, procedures, problems), whatever their codes. Two exceptions:
risk factors are those of CID 6087 only (the section also holds the breast and cardiac
risk factors of CID 6081 and 3756), and laterality is shown as CID 244 (a breast side of
CID 6022 as Right, Left or Bilateral).
"""

from __future__ import annotations

from dataclasses import replace

from rpi_async.sr import concepts as c
from rpi_async.sr.content import Requirement, Row, Template, ValueSet, ValueType
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


_ROWS_10_13 = (
    "TID 9007 rows 10-13 include further sub-templates; which ones could not be confirmed "
    "against the current PS3.16 text. The record's gynecological history (TID 9001) is "
    "rendered in their place; TID 9006 Obstetric History has no data in the record model."
)

TID_9007 = Template(
    tid="9007",
    name="General Relevant Patient Information",
    root=Row(
        None,
        ValueType.CONTAINER,
        c.RELEVANT_PATIENT_INFORMATION,
        Requirement.MANDATORY,
        children=(
            language_of_content(),
            *subject_context_patient(),
            medication_substance_exposure(
                container=c.HISTORY_OF_MEDICATION_USE,
                item=c.MEDICATION_TYPE,
                section=Section.MEDICATION,
                medication=True,
            ),
            medication_substance_exposure(
                container=c.SUBSTANCE_USE_HISTORY,
                item=c.USED_SUBSTANCE_TYPE,
                section=Section.SUBSTANCE,
                values=_documented(6089),
            ),
            medication_substance_exposure(
                container=c.ENVIRONMENTAL_EXPOSURE_HISTORY,
                item=c.ENVIRONMENTAL_FACTOR,
                section=Section.ENVIRONMENT,
            ),
            previous_procedures(laterality=_documented(244)),
            indicated_problems(laterality=_documented(244)),
            # Only risk factors of CID 6087: the section also holds breast (CID 6081) and
            # cardiac (CID 3756) risk factors that other templates show.
            risk_factors(risks=ValueSet(cid=6087), family_members=_documented(7451)),
            replace(
                gynecological_history(),
                origin="TID 9007 rows 10-13: TID 9001",
                unconfirmed=_ROWS_10_13,
            ),
        ),
        origin="TID 9007 row 1",
    ),
    notes=(_ROWS_10_13,),
)
