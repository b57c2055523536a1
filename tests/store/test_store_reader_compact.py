"""The reader's compact records: the same patients as the fact table, in both modes."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from rpi_async.dicom.codes import Code
from rpi_async.errors import StoreUnavailable
from rpi_async.store import compact, demo, schema, writer
from rpi_async.store.codec import fact_to_row
from rpi_async.store.compact import CompactFact
from rpi_async.store.model import Fact, OtherPatientId, PatientRecord, Section
from rpi_async.store.reader import PatientStore, lookup_compact_now
from tests.conftest import make_db

LEFT = Code("80248007", "SCT", "Left breast")
BIOPSY = Code("44578009", "SCT", "Core needle biopsy of breast")
SRT = Code("T-04000", "SRT", "Breast")
YEAR = Code("a", "UCUM", "year")
MENARCHE = Code("111518", "DCM", "Age when first menstrual period occurred")

# Every field, shared and repeated codes, sections interleaved, empty and odd values.
FACTS = (
    Fact(Section.PROCEDURE, code=BIOPSY, laterality=LEFT, site=SRT, start="20200102103000"),
    Fact(Section.GYNECOLOGICAL, concept=MENARCHE, number=12, unit=YEAR),
    Fact(Section.MEDICATION, code=BIOPSY, ongoing=False, text='x\ny\t"z"', end="20200101"),
    Fact(Section.PROCEDURE, code=BIOPSY, result=LEFT, modifier=SRT, number=2.5),
    Fact(Section.MEDICATION, code=Code("1", "L", "Ärztlich verordnet"), ongoing=True),
    Fact(Section.DEVICE, text=""),
    Fact(Section.LAB, concept=MENARCHE, number=-0.5, start="2020"),
)
JANE = PatientRecord(
    patient_id="P1",
    issuer="H",
    name="Doe^Jane",
    birth_date="19700101",
    sex="F",
    other_ids=(OtherPatientId("Z9", "B"), OtherPatientId("A1", "", "RFID")),
    facts=FACTS,
)
EMPTY = PatientRecord(patient_id="P2", issuer="H", name="No^Facts")
TWINS = (replace(JANE, issuer="X", facts=FACTS[:1]), replace(JANE, issuer="Y", facts=()))


def _expected(record: PatientRecord) -> PatientRecord:
    """What the store gives back: numbers as REAL, other IDs in key order, version 1."""
    facts = tuple(
        replace(f, number=None if f.number is None else float(f.number)) for f in record.facts
    )
    others = tuple(sorted(record.other_ids, key=lambda o: (o.patient_id, o.issuer)))
    return replace(record, facts=facts, other_ids=others, version=1)


@pytest.fixture(params=[True, False], ids=["inline", "threads"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PatientStore]:
    path = make_db(tmp_path / "c.sqlite3", (JANE, EMPTY, *TWINS))
    opened = await PatientStore.open(path, readers=2, inline=request.param)
    try:
        yield opened
    finally:
        await opened.close()


async def test_records_equal_what_was_written(store: PatientStore) -> None:
    [jane] = await store.lookup("P1", "H")
    assert jane == _expected(JANE)
    [empty] = await store.lookup("P2")
    assert empty == _expected(EMPTY)
    assert await store.lookup("NOBODY") == []


async def test_compact_records_answer_like_the_model(store: PatientStore) -> None:
    [patient] = await store.lookup_compact("P1", "H")
    record = _expected(JANE)
    for section in Section:
        assert [f.to_fact() for f in patient.section(section)] == list(record.section(section))
    assert patient.attribute(Section.GYNECOLOGICAL, MENARCHE.key) == CompactFact(
        Section.GYNECOLOGICAL, MENARCHE, None, None, None, None, None, None, None, 12.0, YEAR,
        None, None,
    )  # fmt: skip
    assert patient.attribute(Section.GYNECOLOGICAL, ("0", "X")) is None
    assert (patient.pk, patient.version, patient.name) == (1, 1, "Doe^Jane")


async def test_same_id_in_two_issuers(store: PatientStore) -> None:
    both = await store.lookup("P1")
    assert sorted(p.issuer for p in both) == ["H", "X"]  # at most two
    [y] = await store.lookup("P1", "Y")
    assert y.facts == ()


async def test_ping_generation_and_closed_store(store: PatientStore) -> None:
    await store.ping()
    assert await store.generation() == 1
    await store.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.lookup_compact("P1")


def _fact_table(path: Path, pk: int) -> tuple[CompactFact, ...]:
    conn = sqlite3.connect(path)
    columns = ", ".join(f'"{c}"' for c in schema.FACT_COLUMNS)
    rows = conn.execute(f"SELECT {columns} FROM fact WHERE patient_pk=? ORDER BY seq", (pk,))
    try:
        return tuple(map(compact.fact_from_row, rows))
    finally:
        conn.close()


@pytest.mark.parametrize(
    "doc",
    [None, "not json", "[1,[]]", '[2,[],"",[]]', "[1,[], 5, []]", '[1,[],"",[]] trailing'],
    ids=["null", "garbage", "short", "format-2", "wrong-type", "trailing"],
)
def test_missing_or_unreadable_copy_reads_the_fact_table(tmp_path: Path, doc: str | None) -> None:
    path = make_db(tmp_path / "u.sqlite3", (JANE,))
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("UPDATE patient SET facts_doc = ?", (doc,))
        [patient] = lookup_compact_now(conn, "P1")
    finally:
        conn.close()
    assert patient.facts == _fact_table(path, 1)
    assert patient.to_record() == _expected(JANE)


def test_demo_population_copy_equals_the_table(tmp_path: Path) -> None:
    records = tuple(itertools.islice(demo.generate(60, seed=3), 60))
    path = make_db(tmp_path / "d.sqlite3", records)
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        for pk, record in enumerate(records, 1):
            [patient] = lookup_compact_now(conn, record.patient_id, record.issuer)
            assert patient.pk == pk
            assert patient.facts == _fact_table(path, pk)
            assert patient.to_record() == _expected(record)
    finally:
        conn.close()


def test_writer_keeps_the_copy_in_step(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite3"
    conn = schema.connect_writer(path, create=True)
    try:
        writer.write_patients(conn, [JANE])
        writer.write_patients(conn, [replace(JANE, facts=FACTS[2:4])])  # replace: version 2
        writer.merge_demographics(conn, [replace(EMPTY, name="Only^Demographics")])
        writer.merge_demographics(conn, [replace(JANE, name="Renamed^Jane", facts=())])
        [jane] = lookup_compact_now(conn, "P1", "H")
        [added] = lookup_compact_now(conn, "P2", "H")
        docs = dict(conn.execute("SELECT patient_id, facts_doc FROM patient"))
    finally:
        conn.close()
    assert jane.version == 3
    assert jane.name == "Renamed^Jane"
    assert jane.facts == _fact_table(path, 1)
    assert [f.to_fact() for f in jane.facts] == list(
        _expected(replace(JANE, facts=FACTS[2:4])).facts
    )
    assert added.facts == ()
    assert docs["P2"] == compact.EMPTY_DOC


async def test_sqlite_errors_are_store_unavailable(tmp_path: Path) -> None:
    path = make_db(tmp_path / "e.sqlite3", (JANE,))
    store = await PatientStore.open(path)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("ALTER TABLE patient RENAME TO gone")
        with pytest.raises(StoreUnavailable, match="read failed"):
            await store.lookup_compact("P1")
    finally:
        conn.close()
        await store.close()


def test_encoded_slots_from_the_writer_and_from_rows_agree() -> None:
    for fact in FACTS:
        shape, values = writer.encode_fact(fact)
        from_writer = compact.slots_from_encoded(shape, values)
        from_row = compact.slots_from_row(fact_to_row(fact))
        assert compact.encode_slots([from_writer]) == compact.encode_slots([from_row])
