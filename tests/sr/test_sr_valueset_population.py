"""Every coded value and unit rendered for the whole demo population fits its row.

Each content item of a rendering is matched to its template row by the path of concept
names from the root; where several rows share a path (TID 3802's specific concerns),
the item must fit one of them. A CODE item in a row with a value set (a context group
from pydicom's PS3.16 tables, or enumerated codes) must be a member; a NUM item carries
the row's units (Subject Age: a unit of CID 7456).
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Iterator

import pytest
from pydicom.dataset import Dataset

from rpi_async.dicom.codes import Code
from rpi_async.sr.content import Row, SubjectAge, Template, ValueType
from rpi_async.sr.registry import TEMPLATES
from rpi_async.sr.render import render_identifier
from rpi_async.sr.valuesets import cid_members, key_of, members
from rpi_async.store import demo
from rpi_async.store.model import PatientRecord

DEMO_PATIENTS = 2000  # the population of ``rpi-async serve --demo``
WHEN = datetime.datetime(2026, 6, 1, 12, 0, 0)
AGE_UNITS = cid_members(7456)
# Context groups pydicom does not enumerate: CID 5000 Languages is defined by reference to
# RFC 5646 (language tags), so no table lists its members.
UNENUMERATED = frozenset({5000})

Path = tuple[tuple[str, str], ...]


def _rows(template: Template) -> dict[Path, list[Row]]:
    index: dict[Path, list[Row]] = {}

    def walk(row: Row, path: Path) -> None:
        for child in row.children:
            here = (*path, child.concept.key)
            index.setdefault(here, []).append(child)
            walk(child, here)

    walk(template.root, ())
    return index


def _code(item: Dataset) -> Code:
    value = item.get("CodeValue") or item.get("LongCodeValue")
    return Code(str(value), str(item.CodingSchemeDesignator), str(item.CodeMeaning))


def _items(ds: Dataset, path: Path) -> Iterator[tuple[Path, Dataset]]:
    for item in ds.get("ContentSequence", []):
        here = (*path, _code(item.ConceptNameCodeSequence[0]).key)
        yield here, item
        yield from _items(item, here)


def _problems(
    record: PatientRecord, template: Template, rows: dict[Path, list[Row]]
) -> Iterator[str]:
    identifier = render_identifier(record, template, (), observation_datetime=WHEN)
    for path, item in _items(identifier, ()):
        candidates = rows[path]
        kind = item.ValueType
        if kind == ValueType.CODE:
            value = key_of(_code(item.ConceptCodeSequence[0]))
            sets = [r.value_set for r in candidates]
            if any(s is not None and s.cid in UNENUMERATED for s in sets):
                continue
            if all(s is not None for s in sets) and not any(
                value in members(s) for s in sets if s is not None
            ):
                yield f"{template.tid} {candidates[0].origin}: {value} not in {sets[0]}"
        elif kind == ValueType.NUM:
            units = _code(item.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0]).key
            if isinstance(candidates[0].source, SubjectAge):
                if units not in AGE_UNITS:
                    yield f"{template.tid} Subject Age in {units}"
            elif not any(r.units is not None and r.units.key == units for r in candidates):
                yield f"{template.tid} {candidates[0].origin}: units {units}"


@pytest.fixture(scope="module")
def population() -> list[PatientRecord]:
    return list(demo.generate(DEMO_PATIENTS, seed=0))


@pytest.mark.slow
@pytest.mark.parametrize("tid", sorted(TEMPLATES))
def test_rendered_codes_and_units_fit_their_rows(tid: str, population: list[PatientRecord]) -> None:
    template = TEMPLATES[tid]
    rows = _rows(template)
    problems: Counter[str] = Counter()
    for record in population:
        problems.update(_problems(record, template, rows))
    assert not problems, problems.most_common(10)


def test_only_the_known_groups_are_not_enumerated() -> None:
    cids = {
        r.value_set.cid
        for t in TEMPLATES.values()
        for r in t.root.walk()
        if r.value_set is not None and r.value_set.cid is not None
    }
    assert {cid for cid in cids if not cid_members(cid)} == UNENUMERATED


def test_the_check_finds_a_code_outside_its_group() -> None:
    """The check itself: a 9007 laterality that is not in CID 244 is reported."""
    from rpi_async.store.model import Fact, Section

    record = PatientRecord(
        "X",
        facts=(
            Fact(
                Section.PROCEDURE,
                code=Code("1", "SCT", "p"),
                laterality=Code("99", "SCT", "Sideways"),
            ),
        ),
    )
    template = TEMPLATES["9007"]
    found = list(_problems(record, template, _rows(template)))
    assert found == [
        "9007 TID 9003 laterality (PS3.17 EE: HAS PROPERTIES): ('99', 'SCT') not in CID 244"
    ]
