"""Read-only access to the patient store for the query path.

Theory of operation: a lookup is one SQL statement, a descent of the unique index on
(patient_id, issuer) that returns the patient's columns, the compact copy of its facts
(``patient.facts_doc``, see ``store.compact``) and its other patient IDs as a JSON array.
Reading the 27-column fact rows instead would cost several times as much (one Python
object per column value); it is only done for a patient without a usable compact copy.
A lookup reads its few pages with one ``pread`` each, from the OS page cache once the
database is warm. ``mmap_bytes`` maps (that much of) the file into memory instead: no
system call per page, about 10 µs less per lookup at 100,000 patients (20 % of a lookup,
1-2 % of an association), but every page ever touched then counts in the process's
resident set, which is what operators watch. So it is off by default (``store_mmap_mib``).

Such a lookup takes some tens of microseconds when the database is in the page cache,
about what handing a query to another thread and back costs on its own (a queue, a
thread wake-up and a ``call_soon_threadsafe``: 30-50 µs of CPU, measured with
``benchmarks/query_path.py --threads``). So by default (``inline=True``) lookups run on
the calling thread, the event loop's, on one read-only connection: no thread, no pool,
no waiting. The price is that a read that misses the page cache blocks the loop for one
disk read. With ``inline=False`` each lookup runs whole on one of ``readers`` connections,
each with its own thread (one hop per lookup); when every connection stays busy for
longer than ``acquire_timeout`` the store reports itself unavailable (A700, out of
resources). ``lookup`` gives ``model.PatientRecord`` objects; the query path uses
``lookup_compact`` and its light records.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from rpi_async.errors import StoreError, StoreUnavailable
from rpi_async.store import compact, readonly, schema
from rpi_async.store.compact import CompactFact, CompactPatient
from rpi_async.store.model import OtherPatientId, PatientRecord

log = logging.getLogger("rpi_async.store")

T = TypeVar("T")

_LOOKUP = """
SELECT p.pk, p.patient_id, p.issuer, p.name, p.birth_date, p.sex, p.version, p.facts_doc,
       (SELECT json_group_array(json_array(o.other_id, o.issuer, o.type_of_id))
          FROM other_patient_id o WHERE o.patient_pk = p.pk)
  FROM patient p
 WHERE p.patient_id = ?1 AND (?2 IS NULL OR p.issuer = ?2)
 LIMIT 2
"""
_FACTS = (
    "SELECT "
    + ", ".join(f'"{c}"' for c in schema.FACT_COLUMNS)
    + " FROM fact WHERE patient_pk = ? ORDER BY seq"
)
_NO_OTHER_IDS = "[]"


def lookup_compact_now(
    conn: sqlite3.Connection, patient_id: str, issuer: str | None = None
) -> list[CompactPatient]:
    """The lookup itself, on the calling thread: at most two patients, in issuer order.

    (Rows come in the order of the unique index: sorting by anything else would copy
    every row, compact document included, through a temporary B-tree.)
    """
    patients: list[CompactPatient] = []
    for pk, pid, iss, name, birth, sex, version, doc, others in conn.execute(
        _LOOKUP, (patient_id, issuer)
    ).fetchall():
        other_ids: tuple[OtherPatientId, ...] = ()
        if others != _NO_OTHER_IDS:
            other_ids = tuple(OtherPatientId(*o) for o in json.loads(others))
        head = (pk, pid, iss, name, birth, sex, version, other_ids)
        parsed = None if doc is None else compact.parse(doc)
        if parsed is not None:
            patients.append(CompactPatient(*head, doc=parsed))
        else:
            if doc is not None:
                log.debug("patient pk=%d: facts_doc unreadable, reading the fact table", pk)
            facts = map(compact.fact_from_row, conn.execute(_FACTS, (pk,)))
            patients.append(CompactPatient(*head, facts=facts))
    return patients


def _connect(uri: str, mmap_bytes: int) -> sqlite3.Connection:
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA query_only = ON")
    conn.execute(f"PRAGMA mmap_size = {int(mmap_bytes)}")
    return conn


class PatientStore:
    """Read-only access to one database. Use ``await PatientStore.open(path)``."""

    def __init__(
        self,
        path: Path,
        connections: list[sqlite3.Connection],
        *,
        inline: bool,
        acquire_timeout: float,
    ) -> None:
        self.path = path
        self.inline = inline
        self._all = connections
        self._acquire_timeout = acquire_timeout
        self._closed = False
        # Threaded mode: idle (connection, its thread) pairs.
        self._idle: asyncio.Queue[tuple[sqlite3.Connection, ThreadPoolExecutor]] = asyncio.Queue()
        self._executors: list[ThreadPoolExecutor] = []
        if not inline:
            for conn in connections:
                executor = ThreadPoolExecutor(1, thread_name_prefix="rpi-store")
                self._executors.append(executor)
                self._idle.put_nowait((conn, executor))

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        readers: int = 4,
        acquire_timeout: float = 5.0,
        inline: bool = True,
        mmap_bytes: int = 0,
    ) -> PatientStore:
        """Open the store read-only (one connection inline, else ``readers``).

        Raises StoreError for unusable files and for an older schema (the server never
        writes: ``rpi-async db migrate``). See ``store.readonly`` for WAL files.
        """
        path = Path(path)
        uri = await asyncio.to_thread(readonly.read_only_uri, path)
        connections: list[sqlite3.Connection] = []
        try:
            for _ in range(1 if inline else max(1, readers)):
                connections.append(_connect(uri, mmap_bytes))
        except sqlite3.Error as exc:
            for conn in connections:
                conn.close()
            raise StoreError(f"cannot open {path} read-only: {exc}") from None
        return cls(path, connections, inline=inline, acquire_timeout=acquire_timeout)

    async def lookup_compact(
        self, patient_id: str, issuer: str | None = None
    ) -> list[CompactPatient]:
        """Patients with this ID (in this issuer's domain if given); at most two.

        The query path's lookup: light records the renderer reads directly.
        """
        return await self._run(lookup_compact_now, patient_id, issuer)

    async def lookup(self, patient_id: str, issuer: str | None = None) -> list[PatientRecord]:
        """Patients with this ID (in this issuer's domain if given); at most two are returned."""
        return [p.to_record() for p in await self.lookup_compact(patient_id, issuer)]

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers a trivial query."""
        await self._run(_ping)

    async def generation(self) -> int:
        """A counter bumped by every import; cached renderings older than it are stale."""
        return await self._run(_generation)

    async def close(self) -> None:
        self._closed = True
        for executor in self._executors:
            executor.shutdown(wait=True)
        for conn in self._all:
            conn.close()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(connection, *args)``: inline, or on an idle connection's thread."""
        if self._closed:
            raise StoreUnavailable("patient store is closed")
        if self.inline:
            try:
                return fn(self._all[0], *args)
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"patient store read failed: {exc}") from None
        async with self._connection() as (conn, executor):
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(executor, fn, conn, *args)
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"patient store read failed: {exc}") from None

    @asynccontextmanager
    async def _connection(
        self,
    ) -> AsyncIterator[tuple[sqlite3.Connection, ThreadPoolExecutor]]:
        try:
            pair = await asyncio.wait_for(self._idle.get(), self._acquire_timeout)
        except TimeoutError:
            raise StoreUnavailable("patient store overloaded: no free connection") from None
        try:
            yield pair
        finally:
            self._idle.put_nowait(pair)


def _ping(conn: sqlite3.Connection) -> None:
    conn.execute("SELECT count(*) FROM sqlite_master").fetchall()


def _generation(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
    return 0 if row is None else int(row[0])


__all__ = ["CompactFact", "CompactPatient", "PatientStore", "lookup_compact_now"]
