"""The single writer: inserts or replaces whole patient records inside one transaction.

Theory of operation: an import is one ``BEGIN IMMEDIATE`` ... ``COMMIT``, so readers see
either the old store or the new one, never half an import, and any error rolls the whole
import back. Inside the transaction, rows are queued and sent with ``executemany`` in
batches (prepared statements reused through the sqlite3 statement cache). Primary
keys of new patients are assigned here, counting up from the largest one in the file, so
a patient's facts can be queued before its row is written. When the store was empty at
the start, no patient can already exist, so the per-record ``SELECT`` is skipped; keys
seen earlier in the same import are remembered so that a repeated patient still replaces
the earlier copy. Foreign-key checks are switched off for the duration, because every
fact row refers to a patient row written by this same transaction (by construction), and
checking each of millions of rows would double the cost of a bulk load.

Every patient row also carries ``facts_doc``, the compact copy of its facts that the
query path reads (``store.compact``); it is written with the facts, in the same
transaction, from the same encoded rows.
"""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rpi_async.store import compact, schema
from rpi_async.store.model import Fact, OtherPatientId, PatientRecord, Section

CODE_FIELDS = ("concept", "code", "laterality", "site", "modifier", "result", "unit")
SCALAR_FIELDS = ("start", "end", "number", "text", "ongoing")
SECTION_TEXT = {s: str(s.value) for s in Section}  # a plain str binds fast; a StrEnum does not

# An encoded fact is (the names of its non-null fields, in any order; the row values:
# section, then each field's value(s) in that order, a code as value, scheme, meaning).
# Each distinct tuple of names gets its own INSERT naming just those columns: NULL columns
# are left out rather than bound, because binding None costs an adapter lookup per value
# in the sqlite3 module, which made NULL-heavy fact rows several times slower to insert.
Shape = tuple[str, ...]
EncodedFact = tuple[Shape, list[Any]]
_FACT_SQL: dict[Shape, str] = {}


def _fact_sql(shape: Shape) -> str:
    sql = _FACT_SQL.get(shape)
    if sql is None:
        columns = ["patient_pk", "seq", "section"]
        for name in shape:
            if name in CODE_FIELDS:
                columns += (f"{name}_value", f"{name}_scheme", f"{name}_meaning")
            elif name in SCALAR_FIELDS:
                columns.append(name)
            else:
                raise ValueError(f"not a fact field: {name!r}")
        names = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        sql = _FACT_SQL[shape] = f"INSERT INTO fact ({names}) VALUES ({marks})"
    return sql


def encode_fact(fact: Fact) -> EncodedFact:
    """The encoded form of one fact row."""
    names: list[str] = []
    values: list[Any] = [SECTION_TEXT[fact.section]]
    for name in CODE_FIELDS:
        c = getattr(fact, name)
        if c is not None:
            names.append(name)
            values += (c.value, c.scheme, c.meaning)
    for name in ("start", "end", "number", "text"):
        v = getattr(fact, name)
        if v is not None:
            names.append(name)
            values.append(v)
    if fact.ongoing is not None:
        names.append("ongoing")
        values.append(int(fact.ongoing))  # a plain int: a bool goes the slow adapter way
    return tuple(names), values


@dataclass(frozen=True, slots=True)
class PatientRows:
    """A patient in the writer's encoded form: what a bulk import hands to the writer."""

    patient_id: str
    issuer: str
    name: str
    birth_date: str
    sex: str
    other_ids: tuple[OtherPatientId, ...]
    facts: list[EncodedFact]


_PATIENT_INSERT = (
    "INSERT INTO patient "
    "(pk, patient_id, issuer, name, birth_date, sex, version, updated_at, facts_doc) "
    "VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)"
)
_OTHER_INSERT = (
    "INSERT OR IGNORE INTO other_patient_id (patient_pk, other_id, issuer, type_of_id) "
    "VALUES (?, ?, ?, ?)"
)
_BATCH_ROWS = 20_000
_PROGRESS_EVERY = 1000


def utc_timestamp() -> str:
    """The ``updated_at`` format of the schema: ISO 8601 UTC to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Batcher:
    """Queues rows of one transaction and flushes them with executemany."""

    def __init__(self, conn: sqlite3.Connection, stamp: str) -> None:
        self.conn = conn
        self.stamp = stamp
        self.empty_at_start = is_empty(conn)
        self.next_pk = int(conn.execute("SELECT coalesce(max(pk), 0) FROM patient").fetchone()[0])
        self.seen: dict[tuple[str, str], int] = {}
        self.rows = Rows.empty()

    def add(self, record: PatientRecord | PatientRows) -> None:
        key = (record.patient_id, record.issuer)
        if isinstance(record, PatientRows):
            encoded = record.facts
        else:
            encoded = list(map(encode_fact, record.facts))
        doc = compact.encode_encoded(encoded)
        pk = self.seen.get(key)
        if pk is None and not self.empty_at_start:
            row = self.conn.execute(
                "SELECT pk FROM patient WHERE patient_id = ? AND issuer = ?", key
            ).fetchone()
            pk = None if row is None else int(row[0])
        if pk is None:
            self.next_pk += 1
            pk = self.next_pk
            self.rows.add_patient(pk, record, self.stamp, doc)
        else:
            self._replace(pk, record, doc)
        self.seen[key] = pk
        self.rows.add_children(pk, record.other_ids, encoded)
        if self.rows.fact_count >= _BATCH_ROWS:
            self.flush()

    def _replace(self, pk: int, record: PatientRecord | PatientRows, doc: str) -> None:
        # Earlier rows of this patient may still be queued: write them first, so that the
        # deletes below see them.
        self.flush()
        self.conn.execute(
            "UPDATE patient SET name=?, birth_date=?, sex=?, version=version+1, updated_at=?, "
            "facts_doc=? WHERE pk=?",
            (record.name, record.birth_date, record.sex, self.stamp, doc, pk),
        )
        self.conn.execute("DELETE FROM fact WHERE patient_pk = ?", (pk,))
        self.conn.execute("DELETE FROM other_patient_id WHERE patient_pk = ?", (pk,))
        # A document replaces the patient whole: facts of earlier FHIR imports are gone.
        self.conn.execute("DELETE FROM fhir_resource WHERE patient_pk = ?", (pk,))

    def flush(self) -> None:
        self.rows.write(self.conn)
        self.rows = Rows.empty()


@dataclass(slots=True)
class Rows:
    """Queued rows, as the statements of a bulk load take them, keys already assigned.

    The writer queues into one; a worker process of a parallel import builds them for a
    store that was empty at the start, where every row is an insert (``write_rows``).
    """

    patients: list[tuple[Any, ...]]  # _PATIENT_INSERT parameters
    others: list[tuple[Any, ...]]  # _OTHER_INSERT parameters
    facts: dict[Shape, list[tuple[Any, ...]]]  # _fact_sql(shape) parameters
    fact_count: int = 0

    @classmethod
    def empty(cls) -> Rows:
        return cls([], [], {})

    def add_patient(
        self, pk: int, record: PatientRecord | PatientRows, stamp: str, doc: str
    ) -> None:
        r = record
        self.patients.append((pk, r.patient_id, r.issuer, r.name, r.birth_date, r.sex, stamp, doc))

    def add_children(
        self, pk: int, others: Iterable[OtherPatientId], encoded: list[EncodedFact]
    ) -> None:
        self.others.extend(_other_rows(pk, others))
        facts = self.facts
        for seq, (shape, values) in enumerate(encoded):
            rows = facts.get(shape)
            if rows is None:
                rows = facts[shape] = []
            rows.append((pk, seq, *values))
        self.fact_count += len(encoded)

    def add(self, pk: int, record: PatientRows, stamp: str) -> None:
        """A new patient and everything it holds."""
        self.add_patient(pk, record, stamp, compact.encode_encoded(record.facts))
        self.add_children(pk, record.other_ids, record.facts)

    def write(self, conn: sqlite3.Connection) -> None:
        if self.patients:
            conn.executemany(_PATIENT_INSERT, self.patients)
        if self.others:
            conn.executemany(_OTHER_INSERT, self.others)
        for shape, rows in self.facts.items():
            conn.executemany(_fact_sql(shape), rows)


class StoreNotEmpty(Exception):
    """``write_rows`` found patients in the store; its rows assumed there were none."""


def is_empty(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM patient LIMIT 1").fetchone() is None


def write_rows(conn: sqlite3.Connection, chunks: Iterable[Rows]) -> tuple[int, int]:
    """Insert pre-built rows into an empty store in one transaction: (patients, facts).

    Raises StoreNotEmpty (and writes nothing) if the store has patients by the time the
    transaction starts. As in ``write_patients``, any exception raised while iterating
    ``chunks`` rolls everything back and propagates.
    """
    patients = facts = 0
    with _BulkTransaction(conn), _collector_paused():
        if not is_empty(conn):
            raise StoreNotEmpty("the store is not empty")
        for rows in chunks:
            rows.write(conn)
            patients += len(rows.patients)
            facts += rows.fact_count
        _bump_generation(conn)
    return patients, facts


def _other_rows(pk: int, others: Iterable[OtherPatientId]) -> list[tuple[Any, ...]]:
    return [(pk, o.patient_id, o.issuer, o.type_of_id) for o in others]


class _BulkTransaction:
    """``BEGIN IMMEDIATE`` with foreign keys off; COMMIT or ROLLBACK, then restore."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.foreign_keys = int(conn.execute("PRAGMA foreign_keys").fetchone()[0])

    def __enter__(self) -> sqlite3.Connection:
        # PRAGMA foreign_keys is a no-op inside a transaction: set it before BEGIN.
        self.conn.execute("PRAGMA foreign_keys = OFF")
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._restore()
            raise
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                self.conn.execute("COMMIT")
            else:
                self.conn.execute("ROLLBACK")
        finally:
            self._restore()

    def _restore(self) -> None:
        self.conn.execute(f"PRAGMA foreign_keys = {self.foreign_keys}")


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection during a bulk load.

    Parsing and writing millions of rows allocates tens of millions of short-lived
    containers, which would trigger thousands of collector passes over everything alive;
    none of them form reference cycles, so collection can wait until the load is over.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _bump_generation(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")


def write_patients(
    conn: sqlite3.Connection,
    records: Iterable[PatientRecord | PatientRows],
    *,
    progress: Callable[[int], None] | None = None,
    timestamp: str | None = None,
) -> int:
    """Insert or replace every record in one transaction; all or nothing.

    A record that already exists (same Patient ID and issuer) is replaced whole, and its
    version is bumped. The store's generation counter is bumped once, so that cached
    renderings can be invalidated. ``timestamp`` is the ``updated_at`` of every written
    row (default: now; fixed by the demo generator so that its output is reproducible).
    Any exception raised while iterating ``records`` rolls everything back and propagates.
    Returns the number of records written.
    """
    count = 0
    with _BulkTransaction(conn), _collector_paused():
        batch = _Batcher(conn, timestamp or utc_timestamp())
        for record in records:
            batch.add(record)
            count += 1
            if progress is not None and count % _PROGRESS_EVERY == 0:
                progress(count)
        batch.flush()
        _bump_generation(conn)
    if progress is not None:
        progress(count)
    return count


@contextmanager
def patient_transaction(conn: sqlite3.Connection) -> Iterator[str]:
    """One patient's update while the store may be serving: its own transaction.

    ``BEGIN IMMEDIATE`` (waiting up to the connection's busy timeout for another writer),
    COMMIT with the generation bumped, or ROLLBACK on any exception. Readers in WAL mode
    see the patient before or after, never in between. Yields the ``updated_at`` stamp.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield utc_timestamp()
        _bump_generation(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def put_patient(
    conn: sqlite3.Connection, record: PatientRecord, stamp: str, *, demographics: bool = True
) -> int:
    """Insert or replace one patient inside the caller's transaction; its primary key.

    The facts (and their compact copy) are replaced whole. With ``demographics=False`` a
    patient already stored keeps its name, birth date, sex and other patient IDs.
    """
    encoded = list(map(encode_fact, record.facts))
    doc = compact.encode_encoded(encoded)
    row = conn.execute(
        "SELECT pk FROM patient WHERE patient_id = ? AND issuer = ?",
        (record.patient_id, record.issuer),
    ).fetchone()
    rows = Rows.empty()
    others: tuple[OtherPatientId, ...] = record.other_ids
    if row is None:
        pk = int(conn.execute("SELECT coalesce(max(pk), 0) + 1 FROM patient").fetchone()[0])
        rows.add_patient(pk, record, stamp, doc)
    else:
        pk = int(row[0])
        if demographics:
            conn.execute(
                "UPDATE patient SET name=?, birth_date=?, sex=?, version=version+1, "
                "updated_at=?, facts_doc=? WHERE pk=?",
                (record.name, record.birth_date, record.sex, stamp, doc, pk),
            )
            conn.execute("DELETE FROM other_patient_id WHERE patient_pk = ?", (pk,))
        else:
            conn.execute(
                "UPDATE patient SET version=version+1, updated_at=?, facts_doc=? WHERE pk=?",
                (stamp, doc, pk),
            )
            others = ()
        conn.execute("DELETE FROM fact WHERE patient_pk = ?", (pk,))
    rows.add_children(pk, others, encoded)
    rows.write(conn)
    return pk


_DEMOGRAPHICS_UPSERT = """
INSERT INTO patient
    (patient_id, issuer, name, birth_date, sex, version, updated_at, facts_doc)
VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7)
ON CONFLICT (patient_id, issuer) DO UPDATE SET
    name = CASE WHEN excluded.name != '' THEN excluded.name ELSE name END,
    birth_date = CASE WHEN excluded.birth_date != '' THEN excluded.birth_date ELSE birth_date END,
    sex = CASE WHEN excluded.sex != '' THEN excluded.sex ELSE sex END,
    version = version + 1,
    updated_at = excluded.updated_at
WHERE (excluded.name != '' AND excluded.name != name)
   OR (excluded.birth_date != '' AND excluded.birth_date != birth_date)
   OR (excluded.sex != '' AND excluded.sex != sex)
"""


def merge_demographics(
    conn: sqlite3.Connection,
    records: Iterable[PatientRecord],
    *,
    timestamp: str | None = None,
) -> tuple[int, int]:
    """Add or update patients' demographics only, in one transaction; all or nothing.

    Unlike ``write_patients`` this keeps the clinical facts of patients already in the
    store: a non-empty name, birth date or sex overwrites the stored one, other patient
    IDs are added to the stored ones, and facts of the records are ignored. Returns
    (patients added, patients updated).
    """
    stamp = timestamp or utc_timestamp()
    added = updated = 0
    with _BulkTransaction(conn):
        for record in records:
            key = (record.patient_id, record.issuer)
            before = conn.execute(
                "SELECT pk, version FROM patient WHERE patient_id = ? AND issuer = ?", key
            ).fetchone()
            conn.execute(
                _DEMOGRAPHICS_UPSERT,
                (*key, record.name, record.birth_date, record.sex, stamp, compact.EMPTY_DOC),
            )
            row = conn.execute(
                "SELECT pk, version FROM patient WHERE patient_id = ? AND issuer = ?", key
            ).fetchone()
            pk = int(row[0])
            known = {
                (str(o), str(i))
                for o, i in conn.execute(
                    "SELECT other_id, issuer FROM other_patient_id WHERE patient_pk = ?", (pk,)
                )
            }
            new_others = [o for o in record.other_ids if (o.patient_id, o.issuer) not in known]
            conn.executemany(_OTHER_INSERT, _other_rows(pk, new_others))
            changed = before is not None and row[1] != before[1]
            if before is None:
                added += 1
            elif changed or new_others:
                if not changed:
                    conn.execute(
                        "UPDATE patient SET version = version + 1, updated_at = ? WHERE pk = ?",
                        (stamp, pk),
                    )
                updated += 1
        _bump_generation(conn)
    return added, updated


def stats(conn: sqlite3.Connection) -> dict[str, int]:
    """Counts for ``rpi-async db stats``."""
    out: dict[str, int] = {
        "schema_version": schema.schema_version(conn),
        "patients": conn.execute("SELECT count(*) FROM patient").fetchone()[0],
        "issuers": conn.execute("SELECT count(DISTINCT issuer) FROM patient").fetchone()[0],
        "other_patient_ids": conn.execute("SELECT count(*) FROM other_patient_id").fetchone()[0],
        "facts": conn.execute("SELECT count(*) FROM fact").fetchone()[0],
        "fhir_resources": conn.execute("SELECT count(*) FROM fhir_resource").fetchone()[0],
        "generation": int(
            conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]
        ),
    }
    for section, n in conn.execute(
        "SELECT section, count(*) FROM fact GROUP BY section ORDER BY section"
    ):
        out[f"facts.{section}"] = n
    return out
