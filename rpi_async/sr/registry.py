"""Which root templates each RPI SOP class answers with (PS3.4 Q.2.1.1.3, PS3.16).

The General Relevant Patient Information Query defaults to TID 9007 and also accepts the
other root-capable templates implemented here: TID 9000, TID 3802 and the general forms
of TID 9001, 9003, 9004 and 9005 (without value set filtering). TID 9002 is not
root-capable (PS3.16 2024e marks it "Root: No"). The Breast and Cardiac queries answer
with TID 9000 and TID 3802 only.

``resolve`` returns None for any template a SOP class does not support (the service then
answers C200) and for a mapping resource other than DCMR (the service checks that first
and answers A900).
"""

from __future__ import annotations

from dataclasses import replace

from rpi_async.dicom.codes import Code
from rpi_async.dicom.uids import SopClass
from rpi_async.sr import concepts as c
from rpi_async.sr.content import EachFact, Requirement, Row, Template
from rpi_async.sr.render import MAPPING_RESOURCE
from rpi_async.sr.tid900x import (
    gynecological_history,
    indicated_problems,
    previous_procedures,
    risk_factors,
)
from rpi_async.sr.tid1204_1007 import language_of_content
from rpi_async.sr.tid3802 import TID_3802
from rpi_async.sr.tid9000 import TID_9000
from rpi_async.sr.tid9007 import TID_9007

# The value of a sub-template's mandatory row 2 (TID 9003, 9004, 9005) when the patient
# has no fact for it: SNOMED CT "None" (also a member of CID 606 and others).
NONE = Code("260413007", "SCT", "None")


def _as_root(tid: str, name: str, container: Row) -> Template:
    """A sub-template requested as the root: mandatory, language item first, and its
    mandatory 1-n rows rendered as "None" for a patient with nothing to list."""
    children = tuple(
        replace(row, when_empty=NONE)
        if isinstance(row.source, EachFact) and row.requirement.mandatory
        else row
        for row in container.children
    )
    root = replace(
        container,
        relationship=None,
        requirement=Requirement.MANDATORY,
        children=(language_of_content(), *children),
    )
    return Template(
        tid=tid,
        name=name,
        root=root,
        notes=(
            f"TID {tid} as a root template: TID 1204 language item added first; a "
            "mandatory list row without facts is rendered once as (260413007, SCT, 'None').",
        ),
    )


TID_9001 = _as_root("9001", c.GYNECOLOGICAL_HISTORY.meaning, gynecological_history())
TID_9003 = _as_root("9003", "Previous Procedures", previous_procedures())
TID_9004 = _as_root("9004", "Indicated Problems", indicated_problems())
TID_9005 = _as_root("9005", "Risk Factors", risk_factors())

TEMPLATES: dict[str, Template] = {
    t.tid: t for t in (TID_9007, TID_9000, TID_3802, TID_9001, TID_9003, TID_9004, TID_9005)
}

# Supported root templates per SOP class, the default first.
ROOT_TEMPLATES: dict[SopClass, tuple[Template, ...]] = {
    SopClass.GENERAL_RPI_QUERY: (
        TID_9007,
        TID_9000,
        TID_3802,
        TID_9001,
        TID_9003,
        TID_9004,
        TID_9005,
    ),
    SopClass.BREAST_RPI_QUERY: (TID_9000,),
    SopClass.CARDIAC_RPI_QUERY: (TID_3802,),
}


def supported(sop_class: SopClass) -> tuple[str, ...]:
    """Template identifiers ``sop_class`` accepts, the default first; () if not an RPI class."""
    return tuple(t.tid for t in ROOT_TEMPLATES.get(sop_class, ()))


def default_template(sop_class: SopClass) -> Template:
    """The template a SOP class answers with by default. KeyError for non-RPI classes."""
    return ROOT_TEMPLATES[sop_class][0]


def resolve(sop_class: SopClass, mapping_resource: str, template_id: str) -> Template | None:
    """The template to render for a request, or None if unsupported (C200)."""
    if mapping_resource.strip() != MAPPING_RESOURCE:
        return None
    wanted = template_id.strip()
    for template in ROOT_TEMPLATES.get(sop_class, ()):
        if template.tid == wanted:
            return template
    return None
