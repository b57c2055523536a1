"""The bulk writer: replace semantics, atomicity, row encoding, demographics merging."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from rpi_async.dicom.codes import Code
from rpi_async.store import schema, writer
from rpi_async.store.codec import fact_to_row, row_to_fact
from rpi_async.store.model import Fact, OtherPatientId, PatientRecord, Section
from rpi_async.store.reader import PatientStore

LEFT = Code("80248007", "SCT", "Left breast")
BIOPSY = Code("44578009", "SCT", "Core needle biopsy of breast")
YEAR = Code("a", "UCUM", "year")
MENARCHE = Code("111518", "DCM", "Age when first menstrual period occurred")

FACTS = (
    Fact(Section.PROCEDURE, code=BIOPSY, laterality=LEFT, start="20200102103000"),
    Fact(Section.GYNECOLOGICAL, concept=MENARCHE, number=12.0, unit=YEAR),
    Fact(Section.MEDICATION, code=BIOPSY, ongoing=False, text="x", end="20200101"),
    Fact(Section.MEDICATION, code=BIOPSY, ongoing=True),
    Fact(Section.DEVICE, text="no code at all"),
)


def _record(pid: str, issuer: str = "H", **kw: object) -> PatientRecord:
    return PatientRecord(patient_id=pid, issuer=issuer, **kw)  # type: ignore[arg-type]


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = schema.connect_writer(tmp_path / "w.sqlite3", create=True)
    yield c
    c.close()


def _count(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_encoded_rows_match_the_codec(conn: sqlite3.Connection) -> None:
    writer.write_patients(conn, [_record("P", facts=FACTS)])
    columns = ", ".join(f'"{c}"' for c in schema.FACT_COLUMNS)
    rows = conn.execute(f"SELECT {columns} FROM fact ORDER BY seq").fetchall()
    assert [tuple(r) for r in rows] == [fact_to_row(f) for f in FACTS]
    assert tuple(row_to_fact(r) for r in rows) == FACTS


def test_every_fact_column_is_written() -> None:
    shape = (*writer.CODE_FIELDS, *writer.SCALAR_FIELDS)
    sql = writer._fact_sql(shape)
    for column in schema.FACT_COLUMNS:
        assert f'"{column}"' in sql


def test_replace_bumps_version_and_drops_old_facts(conn: sqlite3.Connection) -> None:
    writer.write_patients(conn, [_record("P", name="A^B", facts=FACTS)])
    writer.write_patients(conn, [_record("P", name="C^D", facts=FACTS[:1]), _record("Q")])
    row = conn.execute("SELECT name, version FROM patient WHERE patient_id='P'").fetchone()
    assert tuple(row) == ("C^D", 2)
    assert _count(conn, "fact") == 1
    assert _count(conn, "patient") == 2
    assert conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0] == "2"


def test_same_patient_twice_in_one_call_keeps_the_last(conn: sqlite3.Connection) -> None:
    others = (OtherPatientId("X1", "O"),)
    writer.write_patients(
        conn,
        [
            _record("P", facts=FACTS, other_ids=others),
            _record("P", name="Last^One", facts=FACTS[:2]),
        ],
    )
    assert _count(conn, "patient") == 1
    assert _count(conn, "fact") == 2
    assert _count(conn, "other_patient_id") == 0
    assert conn.execute("SELECT name FROM patient").fetchone()[0] == "Last^One"


def test_failure_while_iterating_rolls_everything_back(conn: sqlite3.Connection) -> None:
    writer.write_patients(conn, [_record("KEEP")])

    def records() -> Iterator[PatientRecord]:
        yield from (_record(f"N{i}", facts=FACTS) for i in range(5000))
        raise ValueError("bad record")

    with pytest.raises(ValueError, match="bad record"):
        writer.write_patients(conn, records())
    assert _count(conn, "patient") == 1
    assert _count(conn, "fact") == 0
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0] == "1"


def test_fixed_timestamp(conn: sqlite3.Connection) -> None:
    writer.write_patients(conn, [_record("P")], timestamp="2025-01-01T00:00:00Z")
    assert conn.execute("SELECT updated_at FROM patient").fetchone()[0] == "2025-01-01T00:00:00Z"


async def test_merge_demographics_keeps_facts(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    conn = schema.connect_writer(path, create=True)
    writer.write_patients(conn, [_record("P", name="Doe^Jane", sex="F", facts=FACTS)])
    added, updated = writer.merge_demographics(
        conn,
        [
            _record("P", birth_date="19700101", other_ids=(OtherPatientId("X1", "O"),)),
            _record("NEW", name="New^Patient"),
            _record("P", name="Doe^Jane"),  # nothing new: not counted as an update
        ],
    )
    conn.close()
    assert (added, updated) == (1, 1)
    store = await PatientStore.open(path, readers=1)
    try:
        [p] = await store.lookup("P", "H")
        [new] = await store.lookup("NEW")
    finally:
        await store.close()
    assert (p.name, p.sex, p.birth_date) == ("Doe^Jane", "F", "19700101")
    assert p.facts == FACTS
    assert p.other_ids == (OtherPatientId("X1", "O"),)
    assert p.version == 2
    assert new.name == "New^Patient"


def test_stats(conn: sqlite3.Connection) -> None:
    writer.write_patients(conn, [_record("P", facts=FACTS), _record("P", issuer="Other")])
    out = writer.stats(conn)
    assert out["patients"] == 2
    assert out["issuers"] == 2
    assert out["facts"] == len(FACTS)
    assert out["facts.medication"] == 2
    assert out["schema_version"] == schema.SCHEMA_VERSION
