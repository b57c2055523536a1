"""One renderer: a patient record and a root template in, a C-FIND response identifier out.

Theory of operation (PS3.4 Annex Q.2.1.1.3, PS3.3 C.17.3 SR Document Content Module):
the identifier echoes every patient-level key of the request with the record's values
(unknown keys come back zero-length), echoes the template in Content Template Sequence,
and carries the SR content tree of the template: the root CONTAINER's Value Type, Concept
Name Code Sequence, Continuity Of Content, Observation DateTime and Content Sequence.

Templates are compiled once into ``_Node`` trees holding the constant parts of each
content item as ready data elements (relationship, value type, concept name); a rendering
walks the nodes, creates one dataset per content item and shares code items (see
``dsbuild``). A row is rendered when it has data: a 1-n row once per fact of its section
that passes its value set filter, a field row when the context fact has that field, a
container when it is mandatory or something below it rendered. The result is treated as
read-only below its top level.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, empty_value_for_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.valuerep import DSfloat, format_number_as_ds

from rpi_async.dicom.codes import Code
from rpi_async.sr import concepts
from rpi_async.sr.content import (
    AttributeOf,
    Constant,
    EachFact,
    FactField,
    FactValue,
    Row,
    SubjectAge,
    Template,
    ValueType,
)
from rpi_async.sr.dsbuild import code_sequence, element, new_dataset, sequence_element
from rpi_async.sr.valuesets import current, key_of, members
from rpi_async.store.model import Fact, PatientRecord, Section

MAPPING_RESOURCE = "DCMR"
UTF8 = "ISO_IR 192"

# --- tags (PS3.6) -------------------------------------------------------------------------
SPECIFIC_CHARACTER_SET = BaseTag(0x00080005)
CODE_VALUE = BaseTag(0x00080100)
MAPPING_RESOURCE_TAG = BaseTag(0x00080105)
PATIENT_NAME = BaseTag(0x00100010)
PATIENT_ID = BaseTag(0x00100020)
ISSUER_OF_PATIENT_ID = BaseTag(0x00100021)
TYPE_OF_PATIENT_ID = BaseTag(0x00100022)
PATIENT_BIRTH_DATE = BaseTag(0x00100030)
PATIENT_SEX = BaseTag(0x00100040)
OTHER_PATIENT_IDS_SEQUENCE = BaseTag(0x00101002)
MEASUREMENT_UNITS_CODE_SEQUENCE = BaseTag(0x004008EA)
RELATIONSHIP_TYPE = BaseTag(0x0040A010)
OBSERVATION_DATETIME = BaseTag(0x0040A032)
VALUE_TYPE = BaseTag(0x0040A040)
CONCEPT_NAME_CODE_SEQUENCE = BaseTag(0x0040A043)
CONTINUITY_OF_CONTENT = BaseTag(0x0040A050)
DATETIME = BaseTag(0x0040A120)
DATE = BaseTag(0x0040A121)
TEXT_VALUE = BaseTag(0x0040A160)
CONCEPT_CODE_SEQUENCE = BaseTag(0x0040A168)
MEASURED_VALUE_SEQUENCE = BaseTag(0x0040A300)
NUMERIC_VALUE = BaseTag(0x0040A30A)
CONTENT_TEMPLATE_SEQUENCE = BaseTag(0x0040A504)
CONTENT_SEQUENCE = BaseTag(0x0040A730)
TEMPLATE_IDENTIFIER = BaseTag(0x0040DB00)

# Keys of the request that the SR content answers (never echoed as zero-length).
CONTENT_KEYS: frozenset[BaseTag] = frozenset(
    {
        SPECIFIC_CHARACTER_SET,
        OBSERVATION_DATETIME,
        VALUE_TYPE,
        CONCEPT_NAME_CODE_SEQUENCE,
        CONTINUITY_OF_CONTENT,
        CONTENT_TEMPLATE_SEQUENCE,
        CONTENT_SEQUENCE,
    }
)

_SEPARATE = element(CONTINUITY_OF_CONTENT, "CS", "SEPARATE")
_VALUE_TYPES = {vt: element(VALUE_TYPE, "CS", vt.value) for vt in ValueType}

# Source kinds, for a cheap dispatch on the hot path.
_NONE, _EACH, _FIELD, _ATTRIBUTE, _AGE, _CONSTANT = range(6)
_DEFAULT_FIELD = {
    ValueType.NUM: FactValue.NUMBER,
    ValueType.CODE: FactValue.CODE,
    ValueType.TEXT: FactValue.TEXT,
    ValueType.DATE: FactValue.START,
    ValueType.DATETIME: FactValue.START,
    ValueType.CONTAINER: FactValue.CODE,
}


@dataclass(frozen=True, slots=True)
class _Node:
    row: Row
    head: dict[BaseTag, DataElement]  # relationship, value type, concept name; never mutated
    kind: int
    value_type: ValueType
    mandatory: bool
    field: str
    section: Section | None
    concept_key: tuple[str, str] | None
    allowed: frozenset[tuple[str, str]] | None  # filtering value set, if any
    constant: Code | None
    units: Code | None
    children: tuple[_Node, ...]


def _compile(row: Row) -> _Node:
    head: list[tuple[BaseTag, DataElement]] = []
    if row.relationship is not None:
        head.append((RELATIONSHIP_TYPE, element(RELATIONSHIP_TYPE, "CS", row.relationship.value)))
    head.append((VALUE_TYPE, _VALUE_TYPES[row.value_type]))
    head.append(
        (CONCEPT_NAME_CODE_SEQUENCE, code_sequence(CONCEPT_NAME_CODE_SEQUENCE, row.concept))
    )
    source = row.source
    kind, field, section, concept_key, constant = (
        _NONE,
        _DEFAULT_FIELD[row.value_type],
        None,
        None,
        None,
    )
    if isinstance(source, EachFact):
        kind, field, section = _EACH, source.field, source.section
    elif isinstance(source, FactField):
        kind, field = _FIELD, source.field
    elif isinstance(source, AttributeOf):
        kind, section = _ATTRIBUTE, source.section
        concept_key = source.concept or row.concept.key
        field = source.field or field
    elif isinstance(source, SubjectAge):
        kind = _AGE
    elif isinstance(source, Constant):
        kind, constant = _CONSTANT, current(source.value)
    allowed = None
    if row.value_set is not None and row.value_set.filter:
        allowed = members(row.value_set)
    return _Node(
        row=row,
        head=dict(head),
        kind=kind,
        value_type=row.value_type,
        mandatory=row.requirement.mandatory,
        field=field.value,
        section=section,
        concept_key=concept_key,
        allowed=allowed,
        constant=constant,
        units=row.units,
        children=tuple(n for n in map(_compile, row.children) if _can_render(n)),
    )


def _can_render(node: _Node) -> bool:
    """False for rows that never produce an item: no source, or an optional empty container."""
    if node.value_type is ValueType.CONTAINER:
        return node.mandatory or bool(node.children)
    return node.kind != _NONE


_COMPILED: dict[int, tuple[Template, _Node]] = {}


def compiled(template: Template) -> _Node:
    """The node tree of ``template``, compiled on first use."""
    entry = _COMPILED.get(id(template))
    if entry is None or entry[0] is not template:
        entry = (template, _compile(template.root))
        _COMPILED[id(template)] = entry
    return entry[1]


class _Context:
    __slots__ = ("age", "ascii_only", "record")

    def __init__(self, record: PatientRecord, age: int | None) -> None:
        self.record = record
        self.age = age
        self.ascii_only = True


def _age_in_years(birth_date: str, on: datetime.date) -> int | None:
    if len(birth_date) != 8 or not birth_date.isdigit():
        return None
    try:
        born = datetime.date(int(birth_date[:4]), int(birth_date[4:6]), int(birth_date[6:]))
    except ValueError:
        return None
    years = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    return years if years >= 0 else None


def _numeric(number: float) -> DSfloat:
    number = float(number)  # the store may hand back an int
    if number.is_integer() and abs(number) < 1e15:
        text = str(int(number))
    else:
        text = format_number_as_ds(number)
    return DSfloat(text, auto_format=False)


@lru_cache(maxsize=16384)
def _coded(tag: BaseTag, code: Code) -> tuple[DataElement, bool]:
    """The shared Code Sequence element for ``code`` (SRT made SCT), and whether it is ASCII."""
    code = current(code)
    return code_sequence(tag, code), code.value.isascii() and code.meaning.isascii()


def _value(node: _Node, fact: Fact | None, ctx: _Context) -> Any:
    """The row's value in context, or None when the record has none."""
    kind = node.kind
    if kind == _AGE:
        return None if ctx.age is None else (float(ctx.age), None)
    if kind == _CONSTANT:
        return node.constant
    if fact is None or kind == _NONE:
        return None
    field = node.field
    if field == "number":
        return None if fact.number is None else (fact.number, fact.unit)
    if field == "ongoing":
        if fact.ongoing is None:
            return None
        return concepts.YES if fact.ongoing else concepts.NO
    return getattr(fact, field) or None


def _emit(node: _Node, fact: Fact | None, ctx: _Context, out: list[Dataset]) -> None:
    """Append the content items of ``node`` in the context of ``fact`` to ``out``."""
    kind = node.kind
    if kind == _EACH:
        allowed = node.allowed
        assert node.section is not None
        for each in ctx.record.section(node.section):
            if allowed is not None and (each.code is None or key_of(each.code) not in allowed):
                continue
            item = _item(node, each, _value(node, each, ctx), ctx)
            if item is not None:
                out.append(item)
        return
    if kind == _ATTRIBUTE:
        assert node.section is not None
        assert node.concept_key is not None
        fact = ctx.record.attribute(node.section, node.concept_key)
    item = _item(node, fact, _value(node, fact, ctx), ctx)
    if item is not None:
        out.append(item)


def _item(node: _Node, fact: Fact | None, value: Any, ctx: _Context) -> Dataset | None:
    vt = node.value_type
    if vt is not ValueType.CONTAINER:
        if value is None:
            return None
        allowed = node.allowed
        if (
            allowed is not None
            and node.kind != _EACH
            and vt is ValueType.CODE
            and key_of(value) not in allowed
        ):
            return None
    children: list[Dataset] = []
    for child in node.children:
        if child.kind == _FIELD:  # inlined: the common case, most fields are empty
            child_value = _value(child, fact, ctx)
            if child_value is not None:
                child_item = _item(child, fact, child_value, ctx)
                if child_item is not None:
                    children.append(child_item)
        else:
            _emit(child, fact, ctx, children)
    if vt is ValueType.CONTAINER and not children and not node.mandatory:
        return None
    elements = node.head.copy()
    if vt is ValueType.CONTAINER:
        elements[CONTINUITY_OF_CONTENT] = _SEPARATE
    elif vt is ValueType.CODE:
        coded, ascii_only = _coded(CONCEPT_CODE_SEQUENCE, value)
        if not ascii_only:
            ctx.ascii_only = False
        elements[CONCEPT_CODE_SEQUENCE] = coded
    elif vt is ValueType.NUM:
        number, unit = value
        units = unit if unit is not None else node.units
        assert units is not None
        coded, ascii_only = _coded(MEASUREMENT_UNITS_CODE_SEQUENCE, units)
        if not ascii_only:
            ctx.ascii_only = False
        measured = new_dataset(
            {
                MEASUREMENT_UNITS_CODE_SEQUENCE: coded,
                NUMERIC_VALUE: element(NUMERIC_VALUE, "DS", _numeric(number)),
            }
        )
        elements[MEASURED_VALUE_SEQUENCE] = sequence_element(MEASURED_VALUE_SEQUENCE, [measured])
    elif vt is ValueType.TEXT:
        if ctx.ascii_only and not value.isascii():
            ctx.ascii_only = False
        elements[TEXT_VALUE] = element(TEXT_VALUE, "UT", value)
    elif vt is ValueType.DATETIME:
        elements[DATETIME] = element(DATETIME, "DT", value)
    else:  # DATE: a date-time value is cut to its date
        elements[DATE] = element(DATE, "DA", value[:8])
    if children:
        elements[CONTENT_SEQUENCE] = sequence_element(CONTENT_SEQUENCE, children)
    return new_dataset(elements)


def _dicom_datetime(moment: datetime.datetime) -> str:
    text = moment.strftime("%Y%m%d%H%M%S")
    if moment.tzinfo is not None:
        text += moment.strftime("%z")
    return text


def _patient_elements(
    record: PatientRecord, request: Dataset, ctx: _Context
) -> dict[BaseTag, DataElement]:
    values: dict[BaseTag, Any] = {
        PATIENT_NAME: record.name,
        PATIENT_ID: record.patient_id,
        ISSUER_OF_PATIENT_ID: record.issuer,
        PATIENT_BIRTH_DATE: record.birth_date,
        PATIENT_SEX: record.sex,
    }
    out: dict[BaseTag, DataElement] = {}
    requested = list(request.keys())
    for tag in requested:
        if tag in CONTENT_KEYS or tag.group == 0 or tag.element == 0 or tag.is_private:
            continue
        if tag in values:
            value = values[tag]
            if ctx.ascii_only and not value.isascii():
                ctx.ascii_only = False
            out[tag] = DataElement(tag, dictionary_VR(tag), value)
        elif tag == OTHER_PATIENT_IDS_SEQUENCE:
            out[tag] = _other_ids(record, ctx)
        else:
            vr = str(request[tag].VR).split(" or ")[0]
            out[tag] = DataElement(tag, vr, empty_value_for_VR(vr))
    return out


def _other_ids(record: PatientRecord, ctx: _Context) -> DataElement:
    items: list[Dataset] = []
    for other in record.other_ids:
        item = Dataset()
        item.PatientID = other.patient_id
        if other.issuer:
            item.IssuerOfPatientID = other.issuer
        item.TypeOfPatientID = other.type_of_id
        if not (other.patient_id.isascii() and other.issuer.isascii()):
            ctx.ascii_only = False
        items.append(item)
    return DataElement(OTHER_PATIENT_IDS_SEQUENCE, "SQ", Sequence(items))


def render_identifier(
    record: PatientRecord,
    template: Template,
    request: Dataset,
    *,
    observation_datetime: datetime.datetime,
) -> Dataset:
    """The C-FIND response identifier for ``record`` rendered with ``template``.

    ``request`` is the request identifier: its patient-level keys are returned with the
    record's values (keys this renderer does not know come back zero-length). The result
    shares code items with other renderings: do not modify it below its top level.
    """
    ctx = _Context(record, _age_in_years(record.birth_date, observation_datetime.date()))
    root = compiled(template)
    content: list[Dataset] = []
    for child in root.children:
        _emit(child, None, ctx, content)
    top = _patient_elements(record, request, ctx)
    template_item = new_dataset(
        {
            MAPPING_RESOURCE_TAG: element(MAPPING_RESOURCE_TAG, "CS", MAPPING_RESOURCE),
            TEMPLATE_IDENTIFIER: element(TEMPLATE_IDENTIFIER, "CS", template.tid),
        }
    )
    top[OBSERVATION_DATETIME] = element(
        OBSERVATION_DATETIME, "DT", _dicom_datetime(observation_datetime)
    )
    top[VALUE_TYPE] = _VALUE_TYPES[ValueType.CONTAINER]
    top[CONCEPT_NAME_CODE_SEQUENCE] = root.head[CONCEPT_NAME_CODE_SEQUENCE]
    top[CONTINUITY_OF_CONTENT] = _SEPARATE
    top[CONTENT_TEMPLATE_SEQUENCE] = sequence_element(CONTENT_TEMPLATE_SEQUENCE, [template_item])
    top[CONTENT_SEQUENCE] = sequence_element(CONTENT_SEQUENCE, content)
    if not ctx.ascii_only:
        top[SPECIFIC_CHARACTER_SET] = DataElement(SPECIFIC_CHARACTER_SET, "CS", UTF8)
    return new_dataset({tag: top[tag] for tag in sorted(top)})
