"""A version 1 database (no compact copy): refused by the reader, migrated by the writer
(``rpi-async db migrate``), then read the same."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest

from rpi_async.errors import StoreError
from rpi_async.store import compact, demo, schema, writer
from rpi_async.store.codec import fact_to_row
from rpi_async.store.model import OtherPatientId, PatientRecord
from rpi_async.store.reader import PatientStore, lookup_compact_now

RECORDS = (
    *itertools.islice(demo.generate(30, seed=11), 30),
    PatientRecord(patient_id="BARE", issuer="", other_ids=(OtherPatientId("O", "I"),)),
)


def _version_1(path: Path, records: tuple[PatientRecord, ...]) -> None:
    """A database as rpi-async wrote it before the compact copy existed."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        for statement in schema._split(schema._V1):
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        columns = ", ".join(f'"{c}"' for c in ("patient_pk", "seq", *schema.FACT_COLUMNS))
        marks = ", ".join("?" for _ in range(2 + len(schema.FACT_COLUMNS)))
        for pk, r in enumerate(records, 1):
            conn.execute(
                "INSERT INTO patient (pk, patient_id, issuer, name, birth_date, sex) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (pk, r.patient_id, r.issuer, r.name, r.birth_date, r.sex),
            )
            conn.executemany(
                "INSERT INTO other_patient_id VALUES (?, ?, ?, ?)",
                [(pk, o.patient_id, o.issuer, o.type_of_id) for o in r.other_ids],
            )
            conn.executemany(
                f"INSERT INTO fact ({columns}) VALUES ({marks})",
                [(pk, seq, *fact_to_row(f)) for seq, f in enumerate(r.facts)],
            )
        conn.execute("COMMIT")
    finally:
        conn.close()


def _table_records(path: Path) -> list[PatientRecord]:
    """Every patient read from the normalized tables only (what version 1 served)."""
    conn = sqlite3.connect(path)
    columns = ", ".join(f'"{c}"' for c in schema.FACT_COLUMNS)
    out = []
    try:
        for pk, pid, issuer, name, birth, sex, version in conn.execute(
            "SELECT pk, patient_id, issuer, name, birth_date, sex, version FROM patient"
        ).fetchall():
            rows = conn.execute(
                f"SELECT {columns} FROM fact WHERE patient_pk = ? ORDER BY seq", (pk,)
            )
            others = conn.execute(
                "SELECT other_id, issuer, type_of_id FROM other_patient_id WHERE patient_pk = ?",
                (pk,),
            )
            out.append(
                PatientRecord(
                    pid,
                    issuer,
                    name,
                    birth,
                    sex,
                    tuple(OtherPatientId(*o) for o in others),
                    tuple(compact.fact_from_row(r).to_fact() for r in rows),
                    version,
                )
            )
    finally:
        conn.close()
    return out


async def test_a_version_1_database_is_refused_then_served_once_migrated(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite3"
    _version_1(path, RECORDS)
    before = _table_records(path)
    unmigrated = path.read_bytes()
    with pytest.raises(StoreError, match=r"schema version 1, older .*'rpi-async db migrate --db"):
        await PatientStore.open(path)
    assert path.read_bytes() == unmigrated  # the reader never writes
    schema.connect_writer(path).close()  # what `rpi-async db migrate` does
    store = await PatientStore.open(path)
    try:
        served = [(await store.lookup(r.patient_id, r.issuer))[0] for r in before]
    finally:
        await store.close()
    assert served == before
    conn = sqlite3.connect(path)
    try:
        assert schema.schema_version(conn) == schema.SCHEMA_VERSION == 4
        docs = [r[0] for r in conn.execute("SELECT facts_doc FROM patient ORDER BY pk")]
    finally:
        conn.close()
    assert all(compact.parse(doc) is not None for doc in docs)
    assert docs[-1] == compact.EMPTY_DOC  # the patient without facts


def test_the_writer_migrates_too_and_then_maintains_the_copy(tmp_path: Path) -> None:
    path = tmp_path / "v1w.sqlite3"
    _version_1(path, RECORDS[:3])
    conn = schema.connect_writer(path)
    try:
        writer.write_patients(conn, [RECORDS[3], RECORDS[0]])  # one new, one replaced
        assert (
            conn.execute("SELECT count(*) FROM patient WHERE facts_doc IS NULL").fetchone()[0] == 0
        )
        compact_records = [
            lookup_compact_now(conn, r.patient_id, r.issuer)[0].to_record() for r in RECORDS[:4]
        ]
    finally:
        conn.close()
    assert compact_records == _table_records(path)
    assert compact_records[0].version == 2


def test_stale_copies_are_repaired(tmp_path: Path) -> None:
    path = tmp_path / "stale.sqlite3"
    _version_1(path, RECORDS)
    conn = schema.connect_writer(path)  # migrates to version 2
    try:
        conn.execute("UPDATE patient SET facts_doc = '1\n[]\n'")  # an unreadable format
        conn.execute("BEGIN")
        assert schema.fill_compact_copies(conn) == len(RECORDS) - 1  # one has no facts
        conn.execute("COMMIT")
        docs = [r[0] for r in conn.execute("SELECT facts_doc FROM patient ORDER BY pk")]
        served = [lookup_compact_now(conn, r.patient_id, r.issuer)[0].to_record() for r in RECORDS]
    finally:
        conn.close()
    assert all(compact.parse(doc) is not None for doc in docs)
    assert docs[-1] == compact.EMPTY_DOC
    assert served == _table_records(path)
