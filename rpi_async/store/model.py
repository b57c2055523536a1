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
- ``laterality``, ``site``   laterality and finding site.
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
