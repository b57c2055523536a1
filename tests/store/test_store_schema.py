"""Schema versioning: fresh databases, WAL, migrations, and files that must be refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rpi_async.errors import StoreError
from rpi_async.store import schema
from rpi_async.store.reader import PatientStore
from tests.conftest import make_newer_schema_db


def _snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def test_fresh_database_is_at_current_version_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    conn = schema.connect_writer(path, create=True)
    try:
        assert schema.schema_version(conn) == schema.SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"patient", "fact", "other_patient_id", "meta"} <= tables
        assert conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0] == "0"
    finally:
        conn.close()


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    schema.connect_writer(path, create=True).close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        before = list(conn.iterdump())
        assert schema.migrate(conn, path) == schema.SCHEMA_VERSION
        assert schema.migrate(conn, path) == schema.SCHEMA_VERSION
        assert list(conn.iterdump()) == before
    finally:
        conn.close()


def test_migrate_from_empty_database(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite3"
    sqlite3.connect(path).close()  # a valid, empty SQLite file (user_version 0)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert schema.migrate(conn, path) == schema.SCHEMA_VERSION
        assert schema.schema_version(conn) == schema.SCHEMA_VERSION
    finally:
        conn.close()


def test_missing_file_is_refused_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "missing.sqlite3"
    with pytest.raises(StoreError, match="does not exist"):
        schema.connect_writer(path)
    assert not path.exists()


def test_non_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite3"
    path.write_text("these are not the patients you are looking for\n" * 10)
    before = _snapshot(path)
    with pytest.raises(StoreError, match="not an SQLite database"):
        schema.connect_writer(path, create=True)
    assert _snapshot(path) == before


def test_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    path = make_newer_schema_db(tmp_path)
    before = _snapshot(path)
    with pytest.raises(StoreError, match="schema version 99"):
        schema.connect_writer(path)
    assert _snapshot(path) == before


async def test_reader_refuses_newer_schema(tmp_path: Path) -> None:
    path = make_newer_schema_db(tmp_path)
    before = _snapshot(path)
    with pytest.raises(StoreError, match="schema version 99"):
        await PatientStore.open(path)
    assert _snapshot(path) == before


def test_other_applications_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="another application"):
        schema.connect_writer(path)
