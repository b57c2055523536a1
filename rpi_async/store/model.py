"""In-memory shape of one patient's record, as one lookup returns it.

A patient is identified by (Patient ID, Issuer of Patient ID). Clinical history is a list of
facts. Each fact belongs to one section (medication, previous procedure, risk factor, ...).
The SR templates decide which sections they render and which fact fields feed which rows;
the store knows nothing about templates.

Field use per section (every coded value is a Code triple):

- ``concept``  the attribute a fact records, for sections of attributes (gynecological
               history, social history, laboratory values): e.g. (111518, DCM) age at
               first menses. None for list sections.
- ``code``     the coded value: the medication, procedure, problem, risk factor, ...
- ``laterality``, ``site``   laterality (CID 244, or CID 6022 for breasts: templates show it
               in the group of their row, ``general_laterality`` / ``breast_laterality``)
               and finding site.
- ``modifier`` a qualifier whose meaning depends on the section: procedure modifier,
               route of administration, family member with the risk factor, therapy of a
               cardiac concern, relationship of a family member, medication status.
- ``result``   procedure result, or the stage of a kidney disease concern.
- ``start``/``end``  DICOM DT (or DA) strings: started / ended, onset / resolution,
               procedure date-time.
- ``number``/``unit``  numeric value and its UCUM unit (ages, counts, lab values).
- ``text``     free text: brand name, dosage, comment.
- ``ongoing``  True/False/None for "currently ongoing".
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from rpi_async.dicom.codes import Code


class Section(enum.StrEnum):
    MEDICATION = "medication"
    HORMONE = "hormone"
    SUBSTANCE = "substance"
    ENVIRONMENT = "environment"
    PROCEDURE = "procedure"
    PROBLEM = "problem"
    RISK_FACTOR = "risk_factor"
    GYNECOLOGICAL = "gynecological"
    CARDIAC_CONCERN = "cardiac_concern"
    SOCIAL = "social"
    SURGICAL = "surgical"
    DIAGNOSTIC_TEST = "diagnostic_test"
    LAB = "lab"
    FAMILY_HISTORY = "family_history"
    DEVICE = "device"


# PS3.16 CID 244 Laterality and CID 6022 Side (of the breasts) name the same sides; a
# fact's laterality may be written in either, and each template row shows its own.
RIGHT = Code("24028007", "SCT", "Right")
LEFT = Code("7771000", "SCT", "Left")
BILATERAL = Code("51440002", "SCT", "Bilateral")
UNILATERAL = Code("66459002", "SCT", "Unilateral")
RIGHT_BREAST = Code("73056007", "SCT", "Right breast")
LEFT_BREAST = Code("80248007", "SCT", "Left breast")
BOTH_BREASTS = Code("63762007", "SCT", "Both breasts")
BREAST_SIDE: dict[tuple[str, str], Code | None] = {
    RIGHT.key: RIGHT_BREAST,
    LEFT.key: LEFT_BREAST,
    BILATERAL.key: BOTH_BREASTS,
    UNILATERAL.key: None,  # no side of CID 6022 says "one of the two"
}
GENERAL_SIDE: dict[tuple[str, str], Code] = {
    RIGHT_BREAST.key: RIGHT,
    LEFT_BREAST.key: LEFT,
    BOTH_BREASTS.key: BILATERAL,
}


def general_laterality(code: Code | None) -> Code | None:
    """A laterality as CID 244 (Right, Left, Bilateral, Unilateral)."""
    return None if code is None else GENERAL_SIDE.get(code.key, code)


def breast_laterality(code: Code | None) -> Code | None:
    """A laterality as CID 6022 (Right breast, Left breast, Both breasts)."""
    return None if code is None else BREAST_SIDE.get(code.key, code)


# Sections whose facts are attributes named by ``concept`` rather than list items.
ATTRIBUTE_SECTIONS: frozenset[Section] = frozenset(
    {Section.GYNECOLOGICAL, Section.SOCIAL, Section.LAB}
)


@dataclass(frozen=True, slots=True)
class Fact:
    section: Section
    concept: Code | None = None
    code: Code | None = None
    laterality: Code | None = None
    site: Code | None = None
    modifier: Code | None = None
    result: Code | None = None
    start: str | None = None
    end: str | None = None
    number: float | None = None
    unit: Code | None = None
    text: str | None = None
    ongoing: bool | None = None

    @property
    def general_laterality(self) -> Code | None:
        return general_laterality(self.laterality)

    @property
    def breast_laterality(self) -> Code | None:
        return breast_laterality(self.laterality)


@dataclass(frozen=True, slots=True)
class OtherPatientId:
    patient_id: str
    issuer: str = ""
    type_of_id: str = "TEXT"


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """Everything the renderer needs for one patient."""

    patient_id: str
    issuer: str = ""
    name: str = ""
    birth_date: str = ""  # DICOM DA, YYYYMMDD, or empty
    sex: str = ""  # "M", "F", "O" or empty
    other_ids: tuple[OtherPatientId, ...] = ()
    facts: tuple[Fact, ...] = ()
    version: int = 0  # bumped on every change; lets callers cache renderings safely
    by_section: dict[Section, tuple[Fact, ...]] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        grouped: dict[Section, list[Fact]] = {}
        for fact in self.facts:
            grouped.setdefault(fact.section, []).append(fact)
        object.__setattr__(self, "by_section", {k: tuple(v) for k, v in grouped.items()})

    def section(self, section: Section) -> tuple[Fact, ...]:
        return self.by_section.get(section, ())

    def attribute(self, section: Section, concept: tuple[str, str]) -> Fact | None:
        """The fact recording ``concept`` in an attribute section, if any."""
        for fact in self.by_section.get(section, ()):
            if fact.concept is not None and fact.concept.key == concept:
                return fact
        return None
