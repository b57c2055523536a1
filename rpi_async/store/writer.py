"""The single writer: inserts or replaces whole patient records inside one transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable

from rpi_async.store import schema
from rpi_async.store.codec import fact_to_row
from rpi_async.store.model import PatientRecord

_FACT_INSERT = (
    "INSERT INTO fact (patient_pk, seq, "
    + ", ".join(f'"{c}"' for c in schema.FACT_COLUMNS)
    + ") VALUES (?, ?, "
    + ", ".join("?" for _ in schema.FACT_COLUMNS)
    + ")"
)


def write_patients(
    conn: sqlite3.Connection,
    records: Iterable[PatientRecord],
    *,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Insert or replace every record in one transaction; all or nothing.

    A record that already exists (same Patient ID and issuer) is replaced whole, and its
    version is bumped. The store's generation counter is bumped once, so that cached
    renderings can be invalidated. Returns the number of records written.
    """
    count = 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        for record in records:
            _write_one(conn, record)
            count += 1
            if progress is not None and count % 1000 == 0:
                progress(count)
        conn.execute(
            "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'"
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    if progress is not None:
        progress(count)
    return count


def _write_one(conn: sqlite3.Connection, record: PatientRecord) -> None:
    row = conn.execute(
        "SELECT pk, version FROM patient WHERE patient_id = ? AND issuer = ?",
        (record.patient_id, record.issuer),
    ).fetchone()
    if row is None:
        cur = conn.execute(
            "INSERT INTO patient (patient_id, issuer, name, birth_date, sex) VALUES (?,?,?,?,?)",
            (record.patient_id, record.issuer, record.name, record.birth_date, record.sex),
        )
        pk = cur.lastrowid
    else:
        pk = row[0]
        conn.execute(
            "UPDATE patient SET name=?, birth_date=?, sex=?, version=version+1, "
            "updated_at=strftime('%Y-%m-%dT%H:%M:%SZ','now') WHERE pk=?",
            (record.name, record.birth_date, record.sex, pk),
        )
        conn.execute("DELETE FROM fact WHERE patient_pk = ?", (pk,))
        conn.execute("DELETE FROM other_patient_id WHERE patient_pk = ?", (pk,))
    conn.executemany(
        "INSERT OR IGNORE INTO other_patient_id (patient_pk, other_id, issuer, type_of_id) "
        "VALUES (?,?,?,?)",
        [(pk, o.patient_id, o.issuer, o.type_of_id) for o in record.other_ids],
    )
    conn.executemany(
        _FACT_INSERT, [(pk, seq, *fact_to_row(f)) for seq, f in enumerate(record.facts)]
    )


def stats(conn: sqlite3.Connection) -> dict[str, int]:
    """Counts for ``rpi-async db stats``."""
    out: dict[str, int] = {
        "schema_version": schema.schema_version(conn),
        "patients": conn.execute("SELECT count(*) FROM patient").fetchone()[0],
        "issuers": conn.execute("SELECT count(DISTINCT issuer) FROM patient").fetchone()[0],
        "facts": conn.execute("SELECT count(*) FROM fact").fetchone()[0],
    }
    for section, n in conn.execute("SELECT section, count(*) FROM fact GROUP BY section"):
        out[f"facts.{section}"] = n
    return out
