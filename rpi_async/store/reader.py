"""Read-only async access to the patient store.

Theory of operation: a fixed pool of aiosqlite connections, each opened read-only
(``mode=ro``) and each with its own worker thread, serves lookups. A lookup is one SQL
statement (patient row, facts and other IDs together) so it costs one thread hop and one
B-tree descent on ``UNIQUE(patient_id, issuer)``, whatever the size of the database.
When every connection is busy for longer than ``acquire_timeout`` the store reports itself
unavailable, which the query service answers as A700 (out of resources).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from rpi_async.errors import StoreError, StoreUnavailable
from rpi_async.store import schema
from rpi_async.store.codec import row_to_fact
from rpi_async.store.model import OtherPatientId, PatientRecord

_FACT_SELECT = ", ".join(f'f."{c}"' for c in schema.FACT_COLUMNS)

_LOOKUP = f"""
SELECT p.pk, p.patient_id, p.issuer, p.name, p.birth_date, p.sex, p.version,
       (SELECT json_group_array(json_array(o.other_id, o.issuer, o.type_of_id))
          FROM other_patient_id o WHERE o.patient_pk = p.pk) AS other_ids,
       {_FACT_SELECT}
  FROM (SELECT * FROM patient WHERE patient_id = ?1 AND (?2 IS NULL OR issuer = ?2)
        ORDER BY pk LIMIT 2) AS p
  LEFT JOIN fact f ON f.patient_pk = p.pk
 ORDER BY p.pk, f.seq
"""

_N_PATIENT_COLS = 8


def records_from_rows(rows: list[Any]) -> list[PatientRecord]:
    """Group the joined rows of one lookup into patient records (at most two)."""
    records: list[PatientRecord] = []
    current_pk: int | None = None
    head: Any = None
    facts: list[Any] = []

    def flush() -> None:
        if head is None:
            return
        others = tuple(OtherPatientId(*o) for o in json.loads(head[7] or "[]"))
        records.append(
            PatientRecord(
                patient_id=head[1],
                issuer=head[2],
                name=head[3],
                birth_date=head[4],
                sex=head[5],
                version=head[6],
                other_ids=others,
                facts=tuple(facts),
            )
        )

    for row in rows:
        if row[0] != current_pk:
            flush()
            current_pk, head, facts = row[0], row, []
        if row[_N_PATIENT_COLS] is not None:
            facts.append(row_to_fact(row[_N_PATIENT_COLS:]))
    flush()
    return records


class PatientStore:
    """A pool of read-only connections. Use ``await PatientStore.open(path)``."""

    def __init__(
        self, path: Path, connections: list[aiosqlite.Connection], acquire_timeout: float
    ) -> None:
        self.path = path
        self._idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        for conn in connections:
            self._idle.put_nowait(conn)
        self._all = connections
        self._acquire_timeout = acquire_timeout
        self._closed = False

    @classmethod
    async def open(
        cls, path: Path, *, readers: int = 4, acquire_timeout: float = 5.0
    ) -> PatientStore:
        """Open ``readers`` read-only connections. Raises StoreError for unusable files."""
        path = Path(path)
        schema.check_file(path)
        # Bring an older schema up to date once, before going read-only.
        await asyncio.to_thread(_check_and_migrate, path)
        uri = f"{path.resolve().as_uri()}?mode=ro"
        connections: list[aiosqlite.Connection] = []
        try:
            for _ in range(readers):
                conn = await aiosqlite.connect(uri, uri=True, check_same_thread=False)
                await conn.execute("PRAGMA query_only = ON")
                connections.append(conn)
        except sqlite3.Error as exc:
            for conn in connections:
                await conn.close()
            raise StoreError(f"cannot open {path} read-only: {exc}") from None
        return cls(path, connections, acquire_timeout)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[aiosqlite.Connection]:
        if self._closed:
            raise StoreUnavailable("patient store is closed")
        try:
            conn = await asyncio.wait_for(self._idle.get(), self._acquire_timeout)
        except TimeoutError:
            raise StoreUnavailable("patient store overloaded: no free connection") from None
        try:
            yield conn
        finally:
            self._idle.put_nowait(conn)

    async def lookup(self, patient_id: str, issuer: str | None = None) -> list[PatientRecord]:
        """Patients with this ID (in this issuer's domain if given); at most two are returned."""
        async with self._connection() as conn:
            try:
                rows = await conn.execute_fetchall(_LOOKUP, (patient_id, issuer))
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"patient store read failed: {exc}") from None
        return records_from_rows(list(rows))

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers a trivial query."""
        async with self._connection() as conn:
            try:
                await conn.execute_fetchall("SELECT count(*) FROM sqlite_master")
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"patient store read failed: {exc}") from None

    async def generation(self) -> int:
        """A counter bumped by every import; cached renderings older than it are stale."""
        async with self._connection() as conn:
            rows = await conn.execute_fetchall("SELECT value FROM meta WHERE key='generation'")
        return int(next(iter(rows))[0]) if rows else 0

    async def close(self) -> None:
        self._closed = True
        for conn in self._all:
            await conn.close()


def _check_and_migrate(path: Path) -> None:
    try:
        conn = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path}: {exc}") from None
    try:
        version = schema.check_version(conn, path)
        if version < schema.SCHEMA_VERSION:
            conn.execute("PRAGMA journal_mode = WAL")
            schema.migrate(conn, path)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a usable SQLite database: {exc}") from None
    finally:
        conn.close()
