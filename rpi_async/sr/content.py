"""The template language: SR templates (PS3.16) written down as frozen rows.

A template is a tree of ``Row``. Each row mirrors one line of a PS3.16 template table:
relationship with its parent, value type, concept name, value multiplicity, requirement
type, value set constraint, units. What the standard leaves to the implementation (where
the value comes from) is the row's ``source``:

- ``EachFact(section)``: a 1-n row; one content item per fact of that section, in record
  order. The fact becomes the context of the row's children. When the row's value set
  filters, only facts whose ``code`` is a member render (see ``valuesets``).
- ``FactField(field)``: a field of the context fact (its laterality, start, number+unit...).
- ``AttributeOf(section, concept)``: the fact that records ``concept`` in an attribute
  section (gynecological history, social history, laboratory values). It becomes the
  context of the row's children. ``concept`` defaults to the row's own concept name.
- ``SubjectAge()``: the patient's age at the observation date, in whole years, or for a
  child under one year in months, or under one month in days (units of CID 7456).
- ``Constant(code)``: a fixed coded value (the language of the content).
- ``None``: containers (their content comes from their children), or rows this
  implementation keeps for the record but has no data for (they never render).

Sub-templates that PS3.16 includes with parameters (TID 9002 for medications, substances,
environmental exposures and hormones; TID 9003/9004/9005 with different value sets) are
plain functions returning rows: the INCLUDE is resolved when the module is imported, so
the renderer only ever walks data.

Facts that could not be confirmed against the current standard carry an ``unconfirmed``
note on the row they concern, so they can be found and corrected in one place.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from rpi_async.dicom.codes import Code
from rpi_async.store.model import ATTRIBUTE_SECTIONS, Section


class Relationship(enum.StrEnum):
    """Relationship Type (0040,A010) defined terms (PS3.3 C.17.3.2.4)."""

    CONTAINS = "CONTAINS"
    HAS_OBS_CONTEXT = "HAS OBS CONTEXT"
    HAS_ACQ_CONTEXT = "HAS ACQ CONTEXT"
    HAS_CONCEPT_MOD = "HAS CONCEPT MOD"
    HAS_PROPERTIES = "HAS PROPERTIES"
    INFERRED_FROM = "INFERRED FROM"
    SELECTED_FROM = "SELECTED FROM"


class ValueType(enum.StrEnum):
    """Value Type (0040,A040) of the content items this project renders."""

    CONTAINER = "CONTAINER"
    CODE = "CODE"
    NUM = "NUM"
    TEXT = "TEXT"
    DATE = "DATE"
    DATETIME = "DATETIME"


class Requirement(enum.StrEnum):
    """Requirement Type of a template row (PS3.16 §6.1.7)."""

    MANDATORY = "M"
    MANDATORY_CONDITIONAL = "MC"
    USER_OPTION = "U"
    USER_OPTION_CONDITIONAL = "UC"

    @property
    def mandatory(self) -> bool:
        return self is Requirement.MANDATORY


class Multiplicity(enum.StrEnum):
    """Value Multiplicity of a template row (PS3.16 §6.1.6)."""

    ONE = "1"
    ONE_OR_MORE = "1-n"


class FactValue(enum.StrEnum):
    """The fields of ``store.model.Fact`` a row can take its value from."""

    CODE = "code"
    LATERALITY = "laterality"  # as recorded
    GENERAL_LATERALITY = "general_laterality"  # as CID 244 (Right, Left, Bilateral)
    BREAST_LATERALITY = "breast_laterality"  # as CID 6022 (Right breast, ...)
    SITE = "site"
    MODIFIER = "modifier"
    RESULT = "result"
    START = "start"
    END = "end"
    NUMBER = "number"  # number with ``unit`` (or the row's default units)
    TEXT = "text"
    ONGOING = "ongoing"  # True/False rendered as (373066001, SCT, "Yes") / (373067005, ...)


@dataclass(frozen=True, slots=True)
class ValueSet:
    """A value set constraint: a context group (``cid``) or enumerated codes (``codes``).

    ``filter`` says whether the renderer enforces it: a filtering value set keeps only
    facts (or field values) that are members. A non-filtering one documents the
    standard's constraint and renders whatever the record holds.
    """

    cid: int | None = None
    codes: tuple[Code, ...] = ()
    filter: bool = True

    def __post_init__(self) -> None:
        if (self.cid is None) == (not self.codes):
            raise ValueError("a value set names either a CID or enumerated codes")

    def __str__(self) -> str:
        if self.cid is not None:
            return f"CID {self.cid}"
        return " | ".join(str(c) for c in self.codes)


@dataclass(frozen=True, slots=True)
class EachFact:
    """1-n rows: one content item per fact of ``section``; value from ``field``."""

    section: Section
    field: FactValue = FactValue.CODE


@dataclass(frozen=True, slots=True)
class FactField:
    """The value of one field of the context fact."""

    field: FactValue


@dataclass(frozen=True, slots=True)
class AttributeOf:
    """The fact recording ``concept`` (default: the row's concept) in an attribute section."""

    section: Section
    concept: tuple[str, str] | None = None
    field: FactValue | None = None  # default: by value type (NUM->number, CODE->code, ...)

    def __post_init__(self) -> None:
        if self.section not in ATTRIBUTE_SECTIONS:
            raise ValueError(f"{self.section} is not an attribute section")


@dataclass(frozen=True, slots=True)
class SubjectAge:
    """Age at the observation date from the birth date: years, months under one year,
    days under one month (CID 7456)."""


@dataclass(frozen=True, slots=True)
class Constant:
    """A fixed coded value."""

    value: Code


Source = EachFact | FactField | AttributeOf | SubjectAge | Constant


@dataclass(frozen=True, slots=True)
class Row:
    """One row of a template table, with its nested rows."""

    relationship: Relationship | None  # None only for the root container
    value_type: ValueType
    concept: Code
    requirement: Requirement = Requirement.USER_OPTION
    multiplicity: Multiplicity = Multiplicity.ONE
    source: Source | None = None
    value_set: ValueSet | None = None
    units: Code | None = None  # NUM: units used when the fact carries none
    children: tuple[Row, ...] = ()
    # A mandatory 1-n row's value for a record with no fact to render (then one item,
    # without children): how a sub-template used as the root keeps its mandatory row.
    when_empty: Code | None = None
    origin: str = ""  # where the row comes from, e.g. "TID 9003 row 2"
    unconfirmed: str = ""  # what could not be confirmed against the current standard

    def __post_init__(self) -> None:
        many = self.multiplicity is Multiplicity.ONE_OR_MORE
        if isinstance(self.source, EachFact) != many:
            raise ValueError(f"{self.concept}: 1-n rows and only they iterate facts")
        if self.value_type is ValueType.CONTAINER:
            if self.source is not None and not isinstance(self.source, EachFact):
                raise ValueError(f"{self.concept}: a container takes no value")
        elif self.children and self.source is None:
            raise ValueError(f"{self.concept}: a row without a source cannot have children")
        if self.value_type is ValueType.NUM and self.units is None:
            raise ValueError(f"{self.concept}: NUM rows need default units")
        if isinstance(self.source, Constant) and self.value_type is not ValueType.CODE:
            raise ValueError(f"{self.concept}: constants are coded values")
        if self.when_empty is not None and not (
            many and self.requirement.mandatory and self.value_type is ValueType.CODE
        ):
            raise ValueError(f"{self.concept}: only mandatory 1-n CODE rows take when_empty")

    def walk(self) -> list[Row]:
        """This row and all rows below it, depth first."""
        rows = [self]
        for child in self.children:
            rows.extend(child.walk())
        return rows


@dataclass(frozen=True, slots=True)
class Template:
    """A root template: an identifier (TID in DCMR) and its root container row."""

    tid: str
    name: str
    root: Row
    notes: tuple[str, ...] = ()  # findings about the template as a whole

    def __post_init__(self) -> None:
        if self.root.value_type is not ValueType.CONTAINER or self.root.relationship:
            raise ValueError(f"TID {self.tid}: the root row must be a bare CONTAINER")
        if not self.root.requirement.mandatory:
            raise ValueError(f"TID {self.tid}: the root container is mandatory")

    @property
    def unconfirmed(self) -> list[tuple[str, str]]:
        """(origin, note) of every row whose content is not confirmed."""
        return [(r.origin, r.unconfirmed) for r in self.root.walk() if r.unconfirmed]


# Shorthands for the template tables, which read like the standard's own rows.
U = Requirement.USER_OPTION
M = Requirement.MANDATORY
MANY = Multiplicity.ONE_OR_MORE
CONTAINS = Relationship.CONTAINS
HAS_PROPERTIES = Relationship.HAS_PROPERTIES
HAS_CONCEPT_MOD = Relationship.HAS_CONCEPT_MOD
HAS_OBS_CONTEXT = Relationship.HAS_OBS_CONTEXT
