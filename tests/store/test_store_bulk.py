"""First loads into a new database use a rollback journal, then go back to WAL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rpi_async.store import bulk, schema, writer
from rpi_async.store.model import PatientRecord


def _mode(conn: sqlite3.Connection) -> str:
    return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


def _count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM patient").fetchone()[0])


def test_new_database_loads_without_wal_and_ends_in_wal(tmp_path: Path) -> None:
    conn = schema.connect_writer(tmp_path / "new.sqlite3", create=True)
    with bulk.first_load(conn, new_database=True):
        assert _mode(conn) == "delete"
        writer.write_patients(conn, [PatientRecord("P1")])
    assert _mode(conn) == "wal"
    assert _count(conn) == 1
    conn.close()


def test_failure_rolls_back_and_ends_in_wal(tmp_path: Path) -> None:
    conn = schema.connect_writer(tmp_path / "new.sqlite3", create=True)

    def records() -> list[PatientRecord]:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"), bulk.first_load(conn, new_database=True):
        writer.write_patients(conn, [PatientRecord("P1"), *records()])
    assert _mode(conn) == "wal"
    assert _count(conn) == 0
    conn.close()


def test_existing_database_stays_in_wal(tmp_path: Path) -> None:
    conn = schema.connect_writer(tmp_path / "old.sqlite3", create=True)
    with bulk.first_load(conn, new_database=False):
        assert _mode(conn) == "wal"
    conn.close()


def test_other_connection_keeps_wal(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    conn = schema.connect_writer(path, create=True)
    reader = sqlite3.connect(path)
    reader.execute("SELECT count(*) FROM patient").fetchone()
    try:
        with bulk.first_load(conn, new_database=True):
            assert _mode(conn) == "wal"
            writer.write_patients(conn, [PatientRecord("P1")])
    finally:
        reader.close()
    assert _count(conn) == 1
    conn.close()
