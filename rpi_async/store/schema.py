"""SQLite schema, versioned by ``PRAGMA user_version``.

Each migration takes the database from version N-1 to N. ``open_checked`` refuses files
that are missing, are not SQLite, or carry a schema newer than this code knows, without
modifying them. ``migrate`` brings an older database up to date in one transaction.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable
from operator import itemgetter
from pathlib import Path

from rpi_async.errors import StoreError
from rpi_async.store import compact
from rpi_async.store.answers import ANSWER_TABLE
from rpi_async.store.fhir.tables import FHIR_TABLES

_CODE_COLUMNS = ("concept", "code", "laterality", "site", "modifier", "result", "unit")


def _code_cols(name: str) -> str:
    return f"{name}_value TEXT, {name}_scheme TEXT, {name}_meaning TEXT"


_V1 = f"""
CREATE TABLE patient (
    pk          INTEGER PRIMARY KEY,
    patient_id  TEXT NOT NULL CHECK (length(patient_id) BETWEEN 1 AND 64),
    issuer      TEXT NOT NULL DEFAULT '' CHECK (length(issuer) <= 64),
    name        TEXT NOT NULL DEFAULT '',
    birth_date  TEXT NOT NULL DEFAULT '',
    sex         TEXT NOT NULL DEFAULT '' CHECK (sex IN ('', 'M', 'F', 'O')),
    version     INTEGER NOT NULL DEFAULT 1,
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    UNIQUE (patient_id, issuer)
);

CREATE TABLE other_patient_id (
    patient_pk  INTEGER NOT NULL REFERENCES patient(pk) ON DELETE CASCADE,
    other_id    TEXT NOT NULL,
    issuer      TEXT NOT NULL DEFAULT '',
    type_of_id  TEXT NOT NULL DEFAULT 'TEXT',
    PRIMARY KEY (patient_pk, other_id, issuer)
) WITHOUT ROWID;

CREATE TABLE fact (
    patient_pk  INTEGER NOT NULL REFERENCES patient(pk) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    section     TEXT NOT NULL,
    {", ".join(_code_cols(c) for c in _CODE_COLUMNS)},
    start       TEXT,
    "end"       TEXT,
    number      REAL,
    text        TEXT,
    ongoing     INTEGER CHECK (ongoing IN (0, 1)),
    PRIMARY KEY (patient_pk, seq)
) WITHOUT ROWID;

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

INSERT INTO meta (key, value) VALUES ('generation', '0');
"""

FACT_COLUMNS: tuple[str, ...] = (
    "section",
    *(f"{c}_{part}" for c in _CODE_COLUMNS for part in ("value", "scheme", "meaning")),
    "start",
    "end",
    "number",
    "text",
    "ongoing",
)


def _v2_compact_facts(conn: sqlite3.Connection) -> None:
    """Version 2: ``patient.facts_doc``, the compact copy of each patient's facts.

    Filled here for every existing patient from the fact table (see ``store.compact``);
    the writer keeps it up to date from then on.
    """
    conn.execute("ALTER TABLE patient ADD COLUMN facts_doc TEXT")
    fill_compact_copies(conn)


def fill_compact_copies(conn: sqlite3.Connection) -> int:
    """(Re)write every patient's compact copy from the fact table; the patient count.

    Part of the version 2 migration; also repairs a database whose copies are missing
    or of an older format (the reader then falls back to the slower fact table). Run it
    inside a transaction to make it atomic.
    """
    columns = ", ".join(f'"{c}"' for c in FACT_COLUMNS)
    rows = conn.execute(f"SELECT patient_pk, {columns} FROM fact ORDER BY patient_pk, seq")
    batch: list[tuple[str, int]] = []
    count = 0
    for pk, group in itertools.groupby(rows, key=itemgetter(0)):
        batch.append((compact.encode_slots(compact.slots_from_row(r[1:]) for r in group), pk))
        count += 1
        if len(batch) >= 5000:
            conn.executemany("UPDATE patient SET facts_doc = ? WHERE pk = ?", batch)
            batch.clear()
    conn.executemany("UPDATE patient SET facts_doc = ? WHERE pk = ?", batch)
    conn.execute(
        "UPDATE patient SET facts_doc = ? WHERE pk NOT IN (SELECT DISTINCT patient_pk FROM fact)",
        (compact.EMPTY_DOC,),
    )
    return count


# A migration is an SQL script or a function run inside the migration's transaction.
Migration = str | Callable[[sqlite3.Connection], None]

# Index 0 migrates an empty database to version 1, and so on.
MIGRATIONS: tuple[Migration, ...] = (_V1, _v2_compact_facts, FHIR_TABLES, ANSWER_TABLE)
SCHEMA_VERSION = len(MIGRATIONS)

_SQLITE_MAGIC = b"SQLite format 3\x00"


def check_file(path: Path) -> None:
    """Raise StoreError unless ``path`` is an existing SQLite file. Reads 16 bytes only."""
    if not path.exists():
        raise StoreError(f"database {path} does not exist (create one with 'rpi-async db demo')")
    if path.is_dir():
        raise StoreError(f"database {path} is a directory, not a file")
    try:
        with path.open("rb") as fh:
            magic = fh.read(16)
    except OSError as exc:
        raise StoreError(f"database {path} cannot be read: {exc.strerror}") from None
    if magic != _SQLITE_MAGIC:
        raise StoreError(f"{path} is not an SQLite database")


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def check_version(conn: sqlite3.Connection, path: Path | str) -> int:
    """Return the schema version, refusing one newer than this code understands."""
    try:
        version = schema_version(conn)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a usable SQLite database: {exc}") from None
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"database {path} has schema version {version}, newer than this rpi-async "
            f"understands ({SCHEMA_VERSION}); upgrade rpi-async"
        )
    return version


def migrate(conn: sqlite3.Connection, path: Path | str = "<database>") -> int:
    """Bring the schema up to date in one transaction. Returns the new version."""
    version = check_version(conn, path)
    if version == SCHEMA_VERSION:
        return version
    if version > 0 and not _has_table(conn, "patient"):
        raise StoreError(f"{path} has user_version {version} but no rpi-async schema")
    if version == 0 and _has_foreign_tables(conn):
        raise StoreError(f"{path} is an SQLite database of another application")
    try:
        conn.execute("BEGIN IMMEDIATE")
        for step in MIGRATIONS[version:]:
            if isinstance(step, str):
                for statement in _split(step):
                    conn.execute(statement)
            else:
                step(conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except sqlite3.Error:
        conn.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION


def _split(script: str) -> list[str]:
    return [s.strip() for s in script.split(";\n") if s.strip()]


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,))
    return row.fetchone() is not None


def _has_foreign_tables(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()
    return int(row[0]) > 0


def connect_writer(path: Path, *, create: bool = False) -> sqlite3.Connection:
    """Open the one writable connection (imports, demo), migrated, in WAL mode.

    With ``create=False`` the file must already be an SQLite database.
    """
    if not create or path.exists():
        check_file(path)
    elif not path.parent.exists():
        raise StoreError(f"directory {path.parent} does not exist")
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        check_version(conn, path)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 5000")
        migrate(conn, path)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a usable SQLite database: {exc}") from None
    return conn
