"""One renderer: a patient record and a root template in, a C-FIND response identifier out.

Theory of operation (PS3.4 Annex Q.2.1.1.3, PS3.3 C.17.3 SR Document Content Module):
the identifier echoes every patient-level key of the request with the record's values
(unknown keys come back zero-length), echoes the template in Content Template Sequence,
and carries the SR content tree of the template: the root CONTAINER's Value Type, Concept
Name Code Sequence, Continuity Of Content, Observation DateTime and Content Sequence.

Templates are compiled once into ``Node`` trees holding the constant parts of each
content item, both as ready data elements (relationship, value type, concept name) and
as their encoded bytes in each VR mode. One walk decides what renders: a row is rendered
when it has data: a 1-n row once per fact of its section that passes its value set
filter, a field row when the context fact has that field, a container when it is
mandatory or something below it rendered. The walk hands each content item (node, value,
children) to a backend that builds it: pydicom Datasets here (``render_identifier``), or
bytes in ``render_bytes`` (``render_identifier_bytes``), which must equal pydicom's
encoding of the Dataset. The walk also decides the character set: ISO_IR 192 as soon as
any rendered text is not ASCII. A Dataset result shares code items with other
renderings and is treated as read-only below its top level.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Any, Protocol, TypeVar

from pydicom.dataelem import DataElement, empty_value_for_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.valuerep import DSfloat, format_number_as_ds

from rpi_async.dicom.codes import Code
from rpi_async.sr import concepts, wire
from rpi_async.sr.age import subject_age
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
from rpi_async.store.answers import StoredAnswer
from rpi_async.store.compact import CompactFact, CompactPatient
from rpi_async.store.model import Fact, OtherPatientId, PatientRecord, Section

# What the renderer reads: the full model, or the light records of the query path.
Record = PatientRecord | CompactPatient
AnyFact = Fact | CompactFact
# The request's keys the response echoes, in request order: (tag, VR).
RequestKeys = tuple[tuple[int, str], ...]

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

# The patient-level keys answered from the record: tag -> (VR, record attribute).
# Plain int keys: comparing a pydicom BaseTag runs a Python-level __eq__.
RECORD_KEYS: dict[int, tuple[str, str]] = {
    int(PATIENT_NAME): ("PN", "name"),
    int(PATIENT_ID): ("LO", "patient_id"),
    int(ISSUER_OF_PATIENT_ID): ("LO", "issuer"),
    int(PATIENT_BIRTH_DATE): ("DA", "birth_date"),
    int(PATIENT_SEX): ("CS", "sex"),
}
_OTHER_IDS = int(OTHER_PATIENT_IDS_SEQUENCE)

_SEPARATE = element(CONTINUITY_OF_CONTENT, "CS", "SEPARATE")
_VALUE_TYPES = {vt: element(VALUE_TYPE, "CS", vt.value) for vt in ValueType}

# Enum members as module constants: ``ValueType.CODE`` costs a metaclass lookup per use.
_CONTAINER, _CODE, _NUM, _TEXT, _DATE, _DATETIME = (
    ValueType.CONTAINER,
    ValueType.CODE,
    ValueType.NUM,
    ValueType.TEXT,
    ValueType.DATE,
    ValueType.DATETIME,
)
# Source kinds, for a cheap dispatch on the hot path.
_NONE, _EACH, _FIELD, _ATTRIBUTE, _AGE, _CONSTANT = range(6)
# Fact fields whose value is not the field itself.
_PLAIN, _NUMBER, _ONGOING = range(3)
_SPECIAL = {FactValue.NUMBER.value: _NUMBER, FactValue.ONGOING.value: _ONGOING}
_DEFAULT_FIELD = {
    ValueType.NUM: FactValue.NUMBER,
    ValueType.CODE: FactValue.CODE,
    ValueType.TEXT: FactValue.TEXT,
    ValueType.DATE: FactValue.START,
    ValueType.DATETIME: FactValue.START,
    ValueType.CONTAINER: FactValue.CODE,
}


@dataclass(slots=True)
class NodeWire:
    """A node's constant head (relationship, value type, concept name) as bytes."""

    head: tuple[bytes, bytes]  # Implicit VR, Explicit VR
    ascii: bool  # the head's text is ASCII (valid without ISO_IR 192)
    # Whole items without children, per VR mode: CODE id(code) -> (code, encoding),
    # NUM (number, id(units)) -> (units, encoding).
    leaves: tuple[dict[int, tuple[Code, bytes]], dict[int, tuple[Code, bytes]]]
    numbers: tuple[dict[tuple[float, int], tuple[Code, bytes]], ...]
    top: dict[bool, list[tuple[int, bytes]]]  # root only: constant top-level elements


@dataclass(frozen=True, slots=True)
class Node:
    row: Row
    head: dict[BaseTag, DataElement]  # relationship, value type, concept name; never mutated
    wire: NodeWire
    kind: int
    value_type: ValueType
    mandatory: bool
    field: str
    section: Section | None
    concept_key: tuple[str, str] | None
    allowed: frozenset[tuple[str, str]] | None  # filtering value set, if any
    constant: Code | None
    units: Code | None
    children: tuple[Node, ...]
    # Per child: (child, getter of its fact field or None if not a field row, _PLAIN...).
    probes: tuple[tuple[Node, Callable[[Any], Any] | None, int], ...]
    # When every child is a field row: all their fields in one call, and (child, _PLAIN...).
    fields: Callable[[Any], tuple[Any, ...]] | None
    field_probes: tuple[tuple[Node, int], ...]
    code_filter: frozenset[tuple[str, str]] | None  # value set a CODE value must be in


def _compile(row: Row) -> Node:
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
    texts = (row.relationship or "", row.concept.value, row.concept.scheme, row.concept.meaning)
    children = tuple(n for n in map(_compile, row.children) if _can_render(n))
    probes = tuple(
        (c, attrgetter(c.field) if c.kind == _FIELD else None, _SPECIAL.get(c.field, _PLAIN))
        for c in children
    )
    fields = None
    if children and all(c.kind == _FIELD for c in children):
        fields = _getter(*(c.field for c in children))
    return Node(
        row=row,
        head=dict(head),
        wire=NodeWire(wire.both(dict(head)), wire.ascii_strings(*texts), ({}, {}), ({}, {}), {}),
        kind=kind,
        value_type=row.value_type,
        mandatory=row.requirement.mandatory,
        field=field.value,
        section=section,
        concept_key=concept_key,
        allowed=allowed,
        constant=constant,
        units=row.units,
        children=children,
        probes=probes,
        fields=fields,
        field_probes=tuple((c, special) for c, _, special in probes),
        code_filter=allowed if kind != _EACH and row.value_type is ValueType.CODE else None,
    )


def _getter(*names: str) -> Callable[[Any], tuple[Any, ...]]:
    """One C call returning the tuple of ``names`` of an object (attrgetter)."""
    if len(names) > 1:
        return attrgetter(*names)
    single = attrgetter(names[0])
    return lambda obj: (single(obj),)


def _can_render(node: Node) -> bool:
    """False for rows that never produce an item: no source, or an optional empty container."""
    if node.value_type is ValueType.CONTAINER:
        return node.mandatory or bool(node.children)
    return node.kind != _NONE


T_co = TypeVar("T_co", covariant=True)

# A backend builds one content item from (node, value, children).
MakeItem = Callable[[Node, Any, list[Any]], Any]


CodeInfo = tuple[Code, Code, bool, tuple[str, str]]


class RenderCache:
    """What rendering keeps between identifiers: compiled templates, facts about codes.

    One per renderer (``sr.render_bytes.Renderer`` owns one); ``clear`` forgets all.
    Entries are keyed by identity (hashing a template or a Code is deep or builds a
    tuple) and hold their key object, so an id cannot be reused while its entry exists.
    """

    __slots__ = ("_codes", "_datetimes", "_storable", "_templates")

    MAX_CODES = 1 << 15

    def __init__(self) -> None:
        self._templates: dict[int, tuple[Template, Node]] = {}
        self._codes: dict[int, CodeInfo] = {}
        self._datetimes: dict[str, str] = {}
        self._storable: dict[int, tuple[Node, bool]] = {}

    def storable(self, root: Node) -> bool:
        """Whether ``root``'s content can be stored (``_storable``), decided once."""
        entry = self._storable.get(id(root))
        if entry is None or entry[0] is not root:
            entry = self._storable[id(root)] = (root, _storable(root))
        return entry[1]

    def compiled(self, template: Template) -> Node:
        """The node tree of ``template``, compiled on first use."""
        entry = self._templates.get(id(template))
        if entry is None or entry[0] is not template:
            entry = (template, _compile(template.root))
            self._templates[id(template)] = entry
        return entry[1]

    def code_info(self, code: Code) -> CodeInfo:
        """(code, code as rendered with SRT made SCT, rendered text is ASCII, value set key)."""
        entry = self._codes.get(id(code))
        if entry is None or entry[0] is not code:
            shown = current(code)
            ascii_only = shown.value.isascii() and shown.meaning.isascii()
            entry = (code, shown, ascii_only, key_of(code))
            if len(self._codes) >= self.MAX_CODES:
                self._codes.clear()
            self._codes[id(code)] = entry
        return entry

    def dicom_datetime(self, moment: datetime.datetime) -> str:
        """Observation DateTime (DT): YYYYMMDDHHMMSS, plus &ZZXX when ``moment`` has a zone."""
        key = moment.isoformat(timespec="seconds")  # one-to-one with the text, and cheap
        text = self._datetimes.get(key)
        if text is None:
            text = dicom_datetime(moment)
            if len(self._datetimes) >= 64:
                self._datetimes.clear()
            self._datetimes[key] = text
        return text

    def clear(self) -> None:
        self._storable.clear()
        self._templates.clear()
        self._codes.clear()
        self._datetimes.clear()


class Context:
    """One rendering: the record, the subject's age, the backend, the character set flag."""

    __slots__ = ("age", "ascii_only", "code_info", "make", "record")

    def __init__(
        self,
        record: Record,
        age: tuple[float, Code] | None,
        make: MakeItem,
        code_info: Callable[[Code], CodeInfo],
    ) -> None:
        self.record = record
        self.age = age
        self.make = make
        self.code_info = code_info
        self.ascii_only = True


def numeric_text(number: float) -> str:
    """A NUM value as Decimal String text (at most 16 characters)."""
    number = float(number)  # the store may hand back an int
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return format_number_as_ds(number)


def _value(node: Node, fact: AnyFact | None, ctx: Context) -> Any:
    """The row's value in context, or None when the record has none."""
    kind = node.kind
    if kind == _AGE:
        return ctx.age
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


def emit(node: Node, fact: AnyFact | None, ctx: Context, out: list[Any]) -> None:
    """Append the content items of ``node`` in the context of ``fact`` to ``out``."""
    kind = node.kind
    if kind == _EACH:
        allowed = node.allowed
        assert node.section is not None
        empty = True
        for each in ctx.record.section(node.section):
            if allowed is not None and (
                each.code is None or ctx.code_info(each.code)[3] not in allowed
            ):
                continue
            item = _item(node, each, _value(node, each, ctx), ctx)
            if item is not None:
                out.append(item)
                empty = False
        if empty and node.row.when_empty is not None:
            out.append(_finish(node, node.row.when_empty, [], ctx))
        return
    if kind == _ATTRIBUTE:
        assert node.section is not None
        assert node.concept_key is not None
        fact = ctx.record.attribute(node.section, node.concept_key)
    item = _item(node, fact, _value(node, fact, ctx), ctx)
    if item is not None:
        out.append(item)


def _item(node: Node, fact: AnyFact | None, value: Any, ctx: Context) -> Any:
    """The backend's content item for ``node``, or None when it does not render.

    The value handed to the backend: None (CONTAINER), the Code as rendered (CODE),
    (number, units Code) (NUM), the text (TEXT, DATETIME) or the date (DATE).
    """
    vt = node.value_type
    if vt is not _CONTAINER:
        if value is None:
            return None
        if node.code_filter is not None and ctx.code_info(value)[3] not in node.code_filter:
            return None
    children: list[Any] = []
    if node.fields is not None:
        # Only field rows below: ``_value`` inlined, every field read in one call. This
        # is the common case (the rows under each fact), and most fields are empty.
        if fact is not None:
            for (child, special), field in zip(node.field_probes, node.fields(fact), strict=True):
                if special == _PLAIN:
                    if not field:
                        continue
                    child_value = field
                elif field is None:
                    continue
                elif special == _NUMBER:
                    child_value = (field, fact.unit)
                else:
                    child_value = concepts.YES if field else concepts.NO
                if child.children:
                    child_item = _item(child, fact, child_value, ctx)
                    if child_item is not None:
                        children.append(child_item)
                elif (
                    child.code_filter is None or ctx.code_info(child_value)[3] in child.code_filter
                ):  # a leaf: ``_item`` without the parts that do nothing
                    children.append(_finish(child, child_value, [], ctx))
    else:
        for child, get, _ in node.probes:
            if get is None:
                emit(child, fact, ctx, children)
                continue
            child_value = _value(child, fact, ctx)
            if child_value is not None:
                child_item = _item(child, fact, child_value, ctx)
                if child_item is not None:
                    children.append(child_item)
    if vt is _CONTAINER and not children and not node.mandatory:
        return None
    return _finish(node, value, children, ctx)


def _finish(node: Node, value: Any, children: list[Any], ctx: Context) -> Any:
    """Hand a rendering item to the backend: the value as rendered, the character set."""
    vt = node.value_type
    if vt is _CODE:
        _, value, ascii_only, _ = ctx.code_info(value)
        if not ascii_only:
            ctx.ascii_only = False
    elif vt is _NUM:
        number, unit = value
        units = unit if unit is not None else node.units
        assert units is not None  # NUM rows have default units (content.Row)
        _, units, ascii_only, _ = ctx.code_info(units)
        if not ascii_only:
            ctx.ascii_only = False
        value = (number, units)
    elif vt is _TEXT:
        if ctx.ascii_only and not value.isascii():
            ctx.ascii_only = False
    elif vt is _DATE:  # a date-time value is cut to its date
        value = value[:8]
    return ctx.make(node, value, children)


def _dataset_item(node: Node, value: Any, children: list[Dataset]) -> Dataset:
    """The Dataset backend: one content item."""
    elements = node.head.copy()
    vt = node.value_type
    if vt is _CONTAINER:
        elements[CONTINUITY_OF_CONTENT] = _SEPARATE
    elif vt is _CODE:
        elements[CONCEPT_CODE_SEQUENCE] = code_sequence(CONCEPT_CODE_SEQUENCE, value)
    elif vt is _NUM:
        number, units = value
        measured = new_dataset(
            {
                MEASUREMENT_UNITS_CODE_SEQUENCE: code_sequence(
                    MEASUREMENT_UNITS_CODE_SEQUENCE, units
                ),
                NUMERIC_VALUE: element(
                    NUMERIC_VALUE, "DS", DSfloat(numeric_text(number), auto_format=False)
                ),
            }
        )
        elements[MEASURED_VALUE_SEQUENCE] = sequence_element(MEASURED_VALUE_SEQUENCE, [measured])
    elif vt is _TEXT:
        elements[TEXT_VALUE] = element(TEXT_VALUE, "UT", value)
    elif vt is _DATETIME:
        elements[DATETIME] = element(DATETIME, "DT", value)
    else:
        elements[DATE] = element(DATE, "DA", value)
    if children:
        elements[CONTENT_SEQUENCE] = sequence_element(CONTENT_SEQUENCE, children)
    return new_dataset(elements)


def content(
    record: Record, root: Node, moment: datetime.datetime, make: MakeItem, cache: RenderCache
) -> tuple[Context, list[Any]]:
    """Walk the compiled template ``root`` for ``record``: the context and its content items."""
    ctx = Context(record, subject_age(record.birth_date, moment.date()), make, cache.code_info)
    items: list[Any] = []
    for child in root.children:
        emit(child, None, ctx, items)
    return ctx, items


def _storable(root: Node) -> bool:
    """True when Subject Age, the one date-dependent row, is at most a child of the root."""

    def nested_age(node: Node) -> bool:
        return any(c.kind == _AGE or nested_age(c) for c in node.children)

    return not any(nested_age(child) for child in root.children)


def stored_content(
    record: Record, root: Node, make: Callable[[Node, Any, list[Any]], bytes], cache: RenderCache
) -> StoredAnswer | None:
    """The root's content items as bytes without the Subject Age item (``store.answers``).

    None when the template has a date-dependent row below the root. ``make`` must be the
    Explicit VR byte backend; its ``wire.Fallback`` propagates.
    """
    if not cache.storable(root):
        return None
    ctx = Context(record, None, make, cache.code_info)
    parts: list[bytes] = []
    age_at, size = -1, 0
    for child in root.children:
        if child.kind == _AGE:
            age_at = size
            continue
        before = len(parts)
        emit(child, None, ctx, parts)
        size += sum(len(p) for p in parts[before:])
    return StoredAnswer(b"".join(parts), age_at, ctx.ascii_only)


def _spliced(
    record: Record,
    root: Node,
    moment: datetime.datetime,
    make: MakeItem,
    cache: RenderCache,
    stored: StoredAnswer,
) -> tuple[Context, list[Any]]:
    """``content`` from a stored answer: the stored items with today's Subject Age."""
    ctx = Context(record, subject_age(record.birth_date, moment.date()), make, cache.code_info)
    ctx.ascii_only = stored.ascii
    if stored.age_at < 0:
        return ctx, [stored.content]
    age: list[Any] = []
    for child in root.children:
        if child.kind == _AGE:
            emit(child, None, ctx, age)
    return ctx, [stored.content[: stored.age_at], *age, stored.content[stored.age_at :]]


def dicom_datetime(moment: datetime.datetime) -> str:
    """Observation DateTime (DT): YYYYMMDDHHMMSS, plus &ZZXX when ``moment`` has a zone."""
    text = moment.strftime("%Y%m%d%H%M%S")
    if moment.tzinfo is not None:
        text += moment.strftime("%z")
    return text


def request_keys(request: Dataset) -> RequestKeys:
    """The keys of a request identifier the response echoes, with their VRs, in order.

    Skipped: the SR content keys (answered by the content itself), group lengths,
    command elements and private elements. A key's VR is the dictionary's for the keys
    answered from the record, else the request's (the first of an ambiguous "US or SS").
    """
    keys: list[tuple[int, str]] = []
    tags: list[BaseTag] = list(request.keys())  # iterating a Dataset yields elements
    for tag in tags:
        if tag in CONTENT_KEYS or tag.group == 0 or tag.element == 0 or tag.is_private:
            continue
        known = RECORD_KEYS.get(tag)
        if known is not None:
            keys.append((tag, known[0]))
        elif tag == OTHER_PATIENT_IDS_SEQUENCE:
            keys.append((tag, "SQ"))
        else:
            keys.append((tag, str(request[tag].VR).split(" or ")[0]))
    return tuple(keys)


Echo = list[tuple[int, str, "str | tuple[OtherPatientId, ...] | None"]]


def echoed(record: Record, keys: RequestKeys, ctx: Context) -> Echo:
    """(tag, VR, value) for each requested key: a record value, the other IDs, or None."""
    out: Echo = []
    for tag, vr in keys:
        known = RECORD_KEYS.get(tag)
        if known is not None:
            value: str = getattr(record, known[1])
            if ctx.ascii_only and not value.isascii():
                ctx.ascii_only = False
            out.append((tag, vr, value))
        elif tag == _OTHER_IDS:
            for other in record.other_ids:
                if not (other.patient_id.isascii() and other.issuer.isascii()):
                    ctx.ascii_only = False
            out.append((tag, vr, record.other_ids))
        else:
            out.append((tag, vr, None))
    return out


class Backend(Protocol[T_co]):
    """Builds an identifier's parts; ``assemble`` decides which and in what order."""

    def item(self, node: Node, value: Any, children: list[Any]) -> Any:
        """One content item (``render.content``'s ``make``)."""

    def echo(self, tag: int, vr: str, value: str | tuple[OtherPatientId, ...] | None) -> Any:
        """A requested key: a record value, the other patient IDs, or zero-length."""

    def constant(self, template: Template, root: Node) -> list[tuple[int, Any]]:
        """The template's constant top-level elements (Value Type, Concept Name, ...)."""

    def observed(self, text: str) -> Any:
        """Observation DateTime."""

    def content_sequence(self, items: list[Any]) -> Any:
        """The root's Content Sequence."""

    def charset(self) -> Any:
        """Specific Character Set ISO_IR 192."""

    def finish(self, top: list[tuple[int, Any]]) -> T_co:
        """The identifier from its top-level elements, sorted by tag."""


def assemble(
    record: Record,
    template: Template,
    keys: RequestKeys,
    moment: datetime.datetime,
    backend: Backend[T_co],
    cache: RenderCache,
    stored: StoredAnswer | None = None,
) -> T_co:
    """The one top-level assembly of a response identifier, for any backend.

    The echoed request keys, the template's constant elements, Observation DateTime, the
    Content Sequence and, when any rendered text needs it, Specific Character Set, in
    tag order as PS3.5 §7.1 requires. The content is the template walked for the
    record, or (Explicit VR byte backend only) the record's ``stored`` answer spliced
    with the Subject Age of the query's date.
    """
    root = cache.compiled(template)
    constant = backend.constant(template, root)
    if stored is None:
        ctx, items = content(record, root, moment, backend.item, cache)
    else:
        ctx, items = _spliced(record, root, moment, backend.item, cache, stored)
    top = [(tag, backend.echo(tag, vr, value)) for tag, vr, value in echoed(record, keys, ctx)]
    top += constant
    top.append((int(OBSERVATION_DATETIME), backend.observed(cache.dicom_datetime(moment))))
    top.append((int(CONTENT_SEQUENCE), backend.content_sequence(items)))
    if not ctx.ascii_only:
        top.append((int(SPECIFIC_CHARACTER_SET), backend.charset()))
    top.sort(key=_TAG)
    return backend.finish(top)


_TAG = itemgetter(0)


def _other_ids(others: tuple[OtherPatientId, ...]) -> DataElement:
    items: list[Dataset] = []
    for other in others:
        item = Dataset()
        item.PatientID = other.patient_id
        if other.issuer:
            item.IssuerOfPatientID = other.issuer
        item.TypeOfPatientID = other.type_of_id
        items.append(item)
    return DataElement(OTHER_PATIENT_IDS_SEQUENCE, "SQ", Sequence(items))


class DatasetBackend:
    """Builds the identifier as a pydicom Dataset (the reference encoding's input)."""

    def item(self, node: Node, value: Any, children: list[Any]) -> Dataset:
        return _dataset_item(node, value, children)

    def echo(self, tag: int, vr: str, value: str | tuple[OtherPatientId, ...] | None) -> Any:
        key = BaseTag(tag)
        if value is None:
            return DataElement(key, vr, empty_value_for_VR(vr))
        if isinstance(value, str):
            return DataElement(key, vr, value)
        return _other_ids(value)

    def constant(self, template: Template, root: Node) -> list[tuple[int, Any]]:
        template_item = new_dataset(
            {
                MAPPING_RESOURCE_TAG: element(MAPPING_RESOURCE_TAG, "CS", MAPPING_RESOURCE),
                TEMPLATE_IDENTIFIER: element(TEMPLATE_IDENTIFIER, "CS", template.tid),
            }
        )
        return [
            (int(VALUE_TYPE), _VALUE_TYPES[ValueType.CONTAINER]),
            (int(CONCEPT_NAME_CODE_SEQUENCE), root.head[CONCEPT_NAME_CODE_SEQUENCE]),
            (int(CONTINUITY_OF_CONTENT), _SEPARATE),
            (
                int(CONTENT_TEMPLATE_SEQUENCE),
                sequence_element(CONTENT_TEMPLATE_SEQUENCE, [template_item]),
            ),
        ]

    def observed(self, text: str) -> Any:
        return element(OBSERVATION_DATETIME, "DT", text)

    def content_sequence(self, items: list[Any]) -> Any:
        return sequence_element(CONTENT_SEQUENCE, items)

    def charset(self) -> Any:
        return DataElement(SPECIFIC_CHARACTER_SET, "CS", UTF8)

    def finish(self, top: list[tuple[int, Any]]) -> Dataset:
        return new_dataset({BaseTag(tag): elem for tag, elem in top})


DATASET_BACKEND = DatasetBackend()


def render_identifier(
    record: Record,
    template: Template,
    request: Dataset | RequestKeys,
    *,
    observation_datetime: datetime.datetime,
    cache: RenderCache | None = None,
) -> Dataset:
    """The C-FIND response identifier for ``record`` rendered with ``template``.

    ``request`` is the request identifier (or its ``request_keys``): its patient-level
    keys are returned with the record's values (keys this renderer does not know come
    back zero-length). The result shares code items with other renderings: do not
    modify it below its top level.
    """
    keys = request_keys(request) if isinstance(request, Dataset) else request
    return assemble(
        record,
        template,
        keys,
        observation_datetime,
        DATASET_BACKEND,
        cache if cache is not None else RenderCache(),
    )
