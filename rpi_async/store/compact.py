"""The compact copy of a patient's facts, and the light records read from it.

Theory of operation. The ``fact`` table is the store's normalized truth: one row of 27
columns per fact. Reading a patient's facts from it costs one Python object per column
value (about 650 for a typical demo patient) before any rendering starts, which is most
of a query's budget. The writer therefore keeps, in the same transaction, a compact
copy of each patient's facts in ``patient.facts_doc``, a JSON document::

    [1,                                   format
     [["387458008","SCT","Aspirin"],...], the patient's distinct codes
     "0012...",                           section group of each fact, in seq order
     [["medication", [[concept, code, laterality, site, modifier, result,
                       start, end, number, unit, text, ongoing], ...]],
      ...]]                               facts by section, in order of appearance

A code slot is a 1-based index into the code list, 0 meaning no code. ``parse`` reads
a document with one call of orjson (written in Rust; it also writes the documents, about
eight times faster than the standard library's encoder), so a damaged document is noticed at
lookup time. The Python work, one small tuple per fact (``CompactFact``, a NamedTuple
with the fields of ``model.Fact``), is done per section on first use: a template asks
for about half of the sections, and a caller that needs no facts builds none. Codes are
interned process-wide. ``CompactPatient`` answers the renderer's questions (``section``,
``attribute``) exactly as ``PatientRecord`` does; ``to_record`` gives the model object.

JSON rather than a binary serialisation: ``marshal`` decodes faster but can hang or
exhaust memory on a damaged value, and the copy should stay readable with any SQLite
tool. A NULL, unreadable or other-format ``facts_doc`` means "read the fact table"; the
reader does that, so the copy is an accelerator, never a second source of truth.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, NamedTuple, cast

import orjson

from rpi_async.dicom.codes import Code
from rpi_async.store.answers import StoredAnswer
from rpi_async.store.model import (
    Fact,
    OtherPatientId,
    PatientRecord,
    Section,
    breast_laterality,
    general_laterality,
)

DOC_FORMAT = 1
EMPTY_DOC = f'[{DOC_FORMAT},[],"",[]]'

CODE_FIELDS = ("concept", "code", "laterality", "site", "modifier", "result", "unit")
# Slot of each fact field in a 13-slot fact (and in CompactFact); 0 is the section.
SLOTS: dict[str, int] = {
    "concept": 1,
    "code": 2,
    "laterality": 3,
    "site": 4,
    "modifier": 5,
    "result": 6,
    "start": 7,
    "end": 8,
    "number": 9,
    "unit": 10,
    "text": 11,
    "ongoing": 12,
}
_CODE_SLOTS = tuple(SLOTS[name] for name in CODE_FIELDS)
_SECTIONS: dict[str, Section] = {s.value: s for s in Section}
_CODES: dict[tuple[str, ...], Code] = {}
_MAX_INTERNED = 1 << 16

# A parsed document: (codes, order, [[section, rows], ...]).
Parsed = tuple[list[list[str]], str, list[list[Any]]]


class CompactFact(NamedTuple):
    """A fact as the compact copy holds it: the fields of ``model.Fact``, in its order."""

    section: Section
    concept: Code | None
    code: Code | None
    laterality: Code | None
    site: Code | None
    modifier: Code | None
    result: Code | None
    start: str | None
    end: str | None
    number: float | None
    unit: Code | None
    text: str | None
    ongoing: bool | None

    def to_fact(self) -> Fact:
        return Fact(*self)

    @property
    def general_laterality(self) -> Code | None:
        return general_laterality(self.laterality)

    @property
    def breast_laterality(self) -> Code | None:
        return breast_laterality(self.laterality)


class CompactPatient:
    """One patient as a lookup returns it on the query path; read-only by convention.

    Built from a parsed compact document (facts built per section on first use) or
    from facts already built (a patient read from the fact table).
    """

    __slots__ = (
        "_attributes",
        "_code_list",
        "_codes",
        "_order",
        "_raw",
        "_sections",
        "birth_date",
        "issuer",
        "name",
        "other_ids",
        "patient_id",
        "pk",
        "sex",
        "stored",
        "version",
    )

    def __init__(
        self,
        pk: int,
        patient_id: str,
        issuer: str,
        name: str,
        birth_date: str,
        sex: str,
        version: int,
        other_ids: tuple[OtherPatientId, ...],
        *,
        doc: Parsed | None = None,
        facts: Iterable[CompactFact] = (),
        stored: StoredAnswer | None = None,
    ) -> None:
        self.stored = stored  # the requested template's stored answer (then no facts)
        self.pk = pk
        self.patient_id = patient_id
        self.issuer = issuer
        self.name = name
        self.birth_date = birth_date
        self.sex = sex
        self.version = version
        self.other_ids = other_ids
        self._attributes: dict[Section, dict[tuple[str, str], CompactFact]] = {}
        self._codes: list[Code | None] | None = None
        self._code_list: list[list[str]] = []
        self._raw: dict[str, list[Any]] = {}
        self._sections: dict[Section, tuple[CompactFact, ...]]
        if stored is not None:  # no facts: the renderer splices the stored answer
            self._sections, self._order = {}, ""
        elif doc is None:
            self._sections, self._order = group(facts)
        else:
            self._sections = {}
            self._code_list, self._order, groups = doc
            # section -> rows, built into facts on first use; dict() of pairs runs in C
            self._raw = cast(dict[str, list[Any]], dict(groups))

    def section(self, section: Section) -> tuple[CompactFact, ...]:
        """The facts of ``section``, in record order."""
        found = self._sections.get(section)
        if found is None:
            rows = self._raw.get(section)  # a StrEnum member finds its str key
            found = () if rows is None else self._build(section, rows)
            self._sections[section] = found
        return found

    def attribute(self, section: Section, concept: tuple[str, str]) -> CompactFact | None:
        """The (first) fact recording ``concept`` in an attribute section, if any."""
        index = self._attributes.get(section)
        if index is None:
            index = self._attributes[section] = {}
            for fact in self.section(section):
                if fact.concept is not None:
                    index.setdefault(fact.concept.key, fact)
        return index.get(concept)

    @property
    def by_section(self) -> dict[Section, tuple[CompactFact, ...]]:
        """Every section's facts, sections in order of first appearance."""
        names = list(self._raw) or list(self._sections)
        return {_SECTIONS[name]: self.section(_SECTIONS[name]) for name in names}

    @property
    def facts(self) -> tuple[CompactFact, ...]:
        """Every fact in record order."""
        return in_seq_order(self.by_section, self._order)

    def to_record(self) -> PatientRecord:
        return PatientRecord(
            patient_id=self.patient_id,
            issuer=self.issuer,
            name=self.name,
            birth_date=self.birth_date,
            sex=self.sex,
            other_ids=self.other_ids,
            facts=tuple(Fact(*f) for f in self.facts),
            version=self.version,
        )

    def _build(self, section: Section, rows: list[list[Any]]) -> tuple[CompactFact, ...]:
        c = self._codes
        if c is None:
            c = self._codes = _codes(self._code_list)
        new = tuple.__new__
        return tuple(
            [
                new(
                    CompactFact,
                    (
                        section,
                        c[f[0]],
                        c[f[1]],
                        c[f[2]],
                        c[f[3]],
                        c[f[4]],
                        c[f[5]],
                        f[6],
                        f[7],
                        f[8],
                        c[f[9]],
                        f[10],
                        f[11],
                    ),
                )
                for f in rows
            ]
        )


def parse(doc: str) -> Parsed | None:
    """A compact document's parts; None if it is of another format or unreadable."""
    try:
        value = orjson.loads(doc)
    except orjson.JSONDecodeError:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 4
        or value[0] != DOC_FORMAT
        or not isinstance(value[1], list)
        or not isinstance(value[2], str)
        or not isinstance(value[3], list)
    ):
        return None
    return value[1], value[2], value[3]


def _code(triple: Sequence[str]) -> Code:
    key = (triple[0], triple[1], triple[2])
    code = _CODES.get(key)
    if code is None:
        code = Code(*key)
        if len(_CODES) >= _MAX_INTERNED:
            _CODES.clear()
        _CODES[key] = code
    return code


def _codes(triples: list[list[str]]) -> list[Code | None]:
    """[None, code 1, code 2, ...], interned; keys and look-ups run in C."""
    keys = list(map(tuple, triples))
    found: list[Code | None] = [None]
    found.extend(map(_CODES.get, keys))
    if not all(found[1:]):  # (``None in`` would call Code.__eq__ on each code)
        for i, key in enumerate(keys, 1):
            if found[i] is None:
                found[i] = _code(key)
    return found


def group(facts: Iterable[CompactFact]) -> tuple[dict[Section, tuple[CompactFact, ...]], str]:
    """(facts by section in order of appearance, group of each fact in seq order)."""
    grouped: dict[Section, list[CompactFact]] = {}
    index: dict[Section, int] = {}
    order: list[str] = []
    for fact in facts:
        found = grouped.get(fact.section)
        if found is None:
            index[fact.section] = len(grouped)
            grouped[fact.section] = [fact]
        else:
            found.append(fact)
        order.append(chr(48 + index[fact.section]))
    return {section: tuple(facts) for section, facts in grouped.items()}, "".join(order)


def in_seq_order(
    by_section: dict[Section, tuple[CompactFact, ...]], order: str
) -> tuple[CompactFact, ...]:
    """The facts in record (seq) order again."""
    groups = [iter(facts) for facts in by_section.values()]
    return tuple(next(groups[ord(g) - 48]) for g in order)


def encode_slots(facts: Iterable[Sequence[Any]]) -> str:
    """The compact document of facts given as 13-slot sequences.

    Slot 0 is the section text, code slots hold (value, scheme, meaning) or None, the
    others the column values (``ongoing`` as 0/1/None or a bool).
    """
    return encode_encoded(map(_encoded_from_slots, facts))


def _encoded_from_slots(slots: Sequence[Any]) -> tuple[tuple[str, ...], list[Any]]:
    """The writer's encoded form (field names; section, then values) of a 13-slot fact."""
    shape: list[str] = []
    values: list[Any] = [str(slots[0])]
    for name, slot in SLOTS.items():
        value = slots[slot]
        if value is None:
            continue
        shape.append(name)
        if slot in _CODE_SLOTS:
            values += (value[0], value[1], value[2])
        else:
            values.append(value)
    return tuple(shape), values


@lru_cache(maxsize=1024)
def _plan(shape: tuple[str, ...]) -> tuple[tuple[int, int, bool], ...]:
    """For one writer shape: (row index, value index, is a code) per field present."""
    plan: list[tuple[int, int, bool]] = []
    i = 1
    for name in shape:
        slot = SLOTS[name]
        is_code = slot in _CODE_SLOTS
        plan.append((slot - 1, i, is_code))
        i += 3 if is_code else 1
    return tuple(plan)


_PLANS: dict[tuple[str, ...], tuple[tuple[int, int, bool], ...]] = {}
_EMPTY_ROW: tuple[Any, ...] = tuple(0 if s in _CODE_SLOTS else None for s in range(1, 13))


def encode_encoded(facts: Iterable[tuple[Sequence[str], Sequence[Any]]]) -> str:
    """The compact document of the writer's encoded facts (``encode_slots`` converts
    13-slot facts to this form). The bulk import calls it once per patient."""
    index: dict[tuple[str, str, str], int] = {}
    code_list: list[tuple[str, str, str]] = []
    groups: dict[str, list[list[Any]]] = {}
    group_of: dict[str, str] = {}
    order: list[str] = []
    plans = _PLANS
    for shape, values in facts:
        row = list(_EMPTY_ROW)
        plan = plans.get(shape)  # type: ignore[call-overload]
        if plan is None:
            plan = plans[tuple(shape)] = _plan(tuple(shape))
        for at, i, is_code in plan:
            if is_code:
                key = (values[i], values[i + 1], values[i + 2])
                n = index.get(key)
                if n is None:
                    code_list.append(key)
                    n = index[key] = len(code_list)
                row[at] = n
            else:
                row[at] = values[i]
        if row[8] is not None:
            row[8] = _real(row[8])
        if row[11] is not None:
            row[11] = bool(row[11])
        section = str(values[0])
        rows = groups.get(section)
        if rows is None:
            group_of[section] = chr(48 + len(groups))
            rows = groups[section] = []
        rows.append(row)
        order.append(group_of[section])
    doc = [DOC_FORMAT, code_list, "".join(order), list(groups.items())]
    return _dumps(doc)


def _dumps(doc: list[Any]) -> str:
    """Compact JSON, non-ASCII kept as is: what ``json.dumps(doc, ensure_ascii=False,
    separators=(",", ":"))`` writes for these documents, several times faster."""
    return orjson.dumps(doc).decode()


def _real(number: Any) -> float | None:
    """What an SQLite REAL column gives back: a float, and NULL for NaN."""
    if number is None:
        return None
    value = float(number)
    return None if math.isnan(value) else value


def slots_from_encoded(shape: Sequence[str], values: Sequence[Any]) -> list[Any]:
    """13 slots from the writer's encoded fact (field names, then section and values)."""
    slots: list[Any] = [values[0], None, None, None, None, None, None, None, None, None, None]
    slots += [None, None]
    i = 1
    for name in shape:
        slot = SLOTS[name]
        if slot in _CODE_SLOTS:
            slots[slot] = (values[i], values[i + 1], values[i + 2])
            i += 3
        else:
            slots[slot] = values[i]
            i += 1
    return slots


def slots_from_row(row: Sequence[Any]) -> list[Any]:
    """13 slots from a fact row in ``schema.FACT_COLUMNS`` order."""
    slots: list[Any] = [row[0]]
    i = 1
    for _ in CODE_FIELDS[:6]:  # concept ... result
        slots.append(None if row[i] is None else (row[i], row[i + 1], row[i + 2]))
        i += 3
    unit = None if row[i] is None else (row[i], row[i + 1], row[i + 2])
    start, end, number, text, ongoing = row[i + 3 : i + 8]
    return [*slots, start, end, number, unit, text, ongoing]


def fact_from_row(row: Sequence[Any]) -> CompactFact:
    """A fact row in ``schema.FACT_COLUMNS`` order (the table, when there is no copy)."""
    s = slots_from_row(row)
    for i in _CODE_SLOTS:
        if s[i] is not None:
            s[i] = _code(s[i])
    s[0] = _SECTIONS[s[0]]
    s[9] = _real(s[9])
    if s[12] is not None:
        s[12] = bool(s[12])
    return CompactFact._make(s)
