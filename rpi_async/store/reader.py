"""Read-only access to the patient store for the query path.

Theory of operation: a lookup is one SQL statement, a descent of the unique index on
(patient_id, issuer) that returns the patient's columns, the compact copy of its facts
(``patient.facts_doc``, see ``store.compact``) and its other patient IDs as a JSON array.
Reading the 27-column fact rows instead would cost several times as much (one Python
object per column value); it is only done for a patient without a usable compact copy.
A lookup reads its few pages with one ``pread`` each, from the OS page cache once the
database is warm. ``mmap_bytes`` maps (that much of) the file into memory instead: no
system call per page, about 10 µs less per lookup at 100,000 patients, but every page
ever touched then counts in the process's resident set, which is what operators watch.
So it is off by default (``store_mmap_mib``).

Lookups go through aiosqlite: ``readers`` read-only connections, each with its own
thread; the statement runs on the connection's thread and the event loop never waits for
the disk, however cold the cache or slow the volume. Handing a statement to a thread and
back costs 30-50 µs of CPU (``benchmarks/query_path.py --threads``: the queue to the
thread, ``call_soon_threadsafe`` back, GIL switches), about what a warm lookup costs on
its own. So lookups are batched, and the hand-off is paid once per batch: the first
``lookup_compact`` of a loop iteration schedules a dispatch (``call_soon``), every lookup
until then joins the queue, and the dispatch sends up to ``BATCH_MAX`` of them to one
reader as one statement (``batch_sql``: a ``VALUES`` CTE of the lookups, each row one
descent of the unique index, the rows tagged with the lookup's position), plus one more
for the fact rows of the batch's patients without a compact copy. One batch is in flight
at a time: lookups issued meanwhile wait and go out together when its reader is back;
another reader takes them only when every batch in flight has been out for ``stall``
seconds (a read that missed the page cache), so a slow disk does not hold every lookup.
Each caller gets exactly what ``lookup_compact_now`` would give it. A batch's SQLite
error fails each of its callers with StoreUnavailable; a lookup that waited
``acquire_timeout`` for a reader fails as overloaded (A700, out of resources); a
cancelled caller is left out or its result dropped. At 64 clients on two cores a batch
holds 7-10 lookups, and the server answers as many associations per second as inline
lookups do, 1.5x unbatched aiosqlite (``benchmarks/RESULTS.md`` §5b); the SQL itself
costs 15 µs per lookup in a batch of 16 or more against 21 µs alone. Lookups issued one
at a time (no concurrency) are batches of one: 16-47 µs more server CPU per association
than unbatched aiosqlite in the serial measurement (the dispatch, a task per batch).

Stored answers come as stored (compressed); the event loop's thread inflates them
(``sr.render_bytes.Renderer``). Inflating them in the statement, on the reader's thread,
was tried and measured slower under load (``benchmarks/RESULTS.md`` §8): every Python
call a reader makes per row (a SQL function, the codec) takes the GIL back from the busy
event loop, and each hand-off wakes a thread. Per batch the readers take the GIL once per
row, for the row itself.

``inline=True`` (the ``store_inline`` setting, off by default) runs lookups on the
calling thread, the event loop's, on one plain sqlite3 connection instead: no hand-off,
no batching, but a read that misses the page cache blocks the loop for one disk read.
``lookup`` gives ``model.PatientRecord`` objects; the query path uses ``lookup_compact``
and its light records.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from operator import itemgetter
from pathlib import Path
from typing import Any

import aiosqlite

from rpi_async.errors import StoreError, StoreUnavailable
from rpi_async.store import compact, readonly, schema
from rpi_async.store.answers import StoredAnswer
from rpi_async.store.compact import CompactFact, CompactPatient
from rpi_async.store.model import OtherPatientId, PatientRecord

log = logging.getLogger("rpi_async.store")

_LOOKUP = """
SELECT p.pk, p.patient_id, p.issuer, p.name, p.birth_date, p.sex, p.version,
       CASE WHEN a.content IS NULL THEN p.facts_doc END,
       (SELECT json_group_array(json_array(o.other_id, o.issuer, o.type_of_id))
          FROM other_patient_id o WHERE o.patient_pk = p.pk),
       a.content, a.age_at, a.ascii
  FROM patient p
  LEFT JOIN answer a
    ON a.patient_pk = p.pk AND a.template = ?3 AND a.version = p.version AND a.renderer = ?4
 WHERE p.patient_id = ?1 AND (?2 IS NULL OR p.issuer = ?2)
 LIMIT 2
"""
_FACTS = (
    "SELECT "
    + ", ".join(f'"{c}"' for c in schema.FACT_COLUMNS)
    + " FROM fact WHERE patient_pk = ? ORDER BY seq"
)
_NO_OTHER_IDS = "[]"
_NO_ANSWER = (None, None)


# The batched lookup: one statement for many lookups, each a row of ``q`` tagged by
# ``q.i``. ``CROSS JOIN`` keeps ``q`` the outer loop, so each row of ``q`` is one descent
# of the unique index on (patient_id, issuer), as ``_LOOKUP``. ``_LOOKUP``'s ``LIMIT 2``
# (the first two rows in index order, that is by issuer) is per lookup here: without an
# issuer, only rows up to the second issuer of that ID (NULL, no second: all).
_BATCH_SELECT = """
SELECT q.i, p.pk, p.patient_id, p.issuer, p.name, p.birth_date, p.sex, p.version,
       CASE WHEN a.content IS NULL THEN p.facts_doc END,
       (SELECT json_group_array(json_array(o.other_id, o.issuer, o.type_of_id))
          FROM other_patient_id o WHERE o.patient_pk = p.pk),
       a.content, a.age_at, a.ascii
  FROM q CROSS JOIN patient p
  LEFT JOIN answer a
    ON a.patient_pk = p.pk AND a.template = q.tpl AND a.version = p.version AND a.renderer = q.rnd
 WHERE p.patient_id = q.pid
   AND CASE WHEN q.iss IS NULL
            THEN p.issuer <= coalesce((SELECT s.issuer FROM patient s WHERE s.patient_id = q.pid
                                        ORDER BY s.issuer LIMIT 1 OFFSET 1), p.issuer)
            ELSE p.issuer = q.iss END
"""
# The fact rows of every patient of a batch without a usable compact copy, in one statement.
_BATCH_FACTS = (
    "SELECT patient_pk, "
    + ", ".join(f'"{c}"' for c in schema.FACT_COLUMNS)
    + " FROM fact WHERE patient_pk IN (SELECT value FROM json_each(?)) ORDER BY patient_pk, seq"
)
BATCH_MAX = 64  # lookups per statement; more issued together are split
_batch_sql: dict[int, str] = {}


def batch_sql(size: int) -> str:
    """The statement for ``size`` lookups (cached: one text, one prepared statement, per size)."""
    sql = _batch_sql.get(size)
    if sql is None:
        values = ", ".join(["(?, ?, ?, ?, ?)"] * size)
        sql = _batch_sql[size] = (
            f"WITH q(i, pid, iss, tpl, rnd) AS (VALUES {values})" + _BATCH_SELECT
        )
    return sql


_OVERLOADED = "patient store overloaded: no free connection"
_FIRST_PATIENT = "SELECT patient_id, issuer FROM patient ORDER BY pk LIMIT 1"
_GENERATION = "SELECT value FROM meta WHERE key='generation'"


def _compact(row: Iterable[Any]) -> tuple[CompactPatient | None, tuple[Any, ...]]:
    """The patient of a lookup row, or None when its facts must come from the fact table
    (then with the row's head, for ``_from_facts``). A patient with a stored answer for
    the requested template comes without facts: the answer is all the renderer needs."""
    pk, pid, iss, name, birth, sex, version, doc, others, content, age_at, ascii_only = row
    other_ids: tuple[OtherPatientId, ...] = ()
    if others != _NO_OTHER_IDS:
        other_ids = tuple(OtherPatientId(*o) for o in json.loads(others))
    head = (pk, pid, iss, name, birth, sex, version, other_ids)
    if content is not None:
        return CompactPatient(*head, stored=StoredAnswer(content, age_at, bool(ascii_only))), head
    parsed = None if doc is None else compact.parse(doc)
    if parsed is not None:
        return CompactPatient(*head, doc=parsed), head
    if doc is not None:
        log.debug("patient pk=%d: facts_doc unreadable, reading the fact table", pk)
    return None, head


def _from_facts(head: tuple[Any, ...], rows: Iterable[Any]) -> CompactPatient:
    return CompactPatient(*head, facts=map(compact.fact_from_row, rows))


def lookup_compact_now(
    conn: sqlite3.Connection,
    patient_id: str,
    issuer: str | None = None,
    answer: tuple[str, str] | None = None,
) -> list[CompactPatient]:
    """The lookup itself, on the calling thread: at most two patients, in issuer order.

    ``answer`` (template, renderer fingerprint): join that template's stored answer when
    it is current (``store.answers``).

    (Rows come in the order of the unique index: sorting by anything else would copy
    every row, compact document included, through a temporary B-tree.)
    """
    patients: list[CompactPatient] = []
    for row in conn.execute(_LOOKUP, (patient_id, issuer, *(answer or _NO_ANSWER))).fetchall():
        patient, head = _compact(row)
        if patient is None:
            patient = _from_facts(head, conn.execute(_FACTS, (head[0],)).fetchall())
        patients.append(patient)
    return patients


_BY_PK = (
    _LOOKUP.replace("WHERE p.patient_id = ?1 AND (?2 IS NULL OR p.issuer = ?2)", "WHERE p.pk = ?1")
    .replace("?3", "NULL")
    .replace("?4", "NULL")
)


def patient_by_pk(conn: sqlite3.Connection, pk: int) -> CompactPatient | None:
    """One patient with its facts, by primary key (for rendering stored answers)."""
    row = conn.execute(_BY_PK, (pk,)).fetchone()
    if row is None:
        return None
    patient, head = _compact(row)
    if patient is None:
        patient = _from_facts(head, conn.execute(_FACTS, (head[0],)).fetchall())
    return patient


# A lookup waiting for its batch: (patient ID, issuer, template, renderer), its future,
# and when it was issued (``loop.time()``, for ``acquire_timeout``).
_Key = tuple[str, str | None, str | None, str | None]
_Pending = tuple[_Key, asyncio.Future[list[CompactPatient]], float]
_by_issuer = itemgetter(2)  # a batch row without its tag: (pk, patient_id, issuer, ...)


def _fail(batch: Iterable[_Pending], error: Callable[[], BaseException]) -> None:
    """Fail every caller of a batch still waiting (each with an exception of its own)."""
    for _, future, _ in batch:
        if not future.done():
            future.set_exception(error())


def _probe(uri: str) -> None:
    """The readiness lookup, on a fresh read-only connection."""
    conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        first = conn.execute(_FIRST_PATIENT).fetchall()
        if first:
            conn.execute(_LOOKUP, (first[0][0], first[0][1], *_NO_ANSWER)).fetchall()
    finally:
        conn.close()


def _connect(uri: str, mmap_bytes: int) -> sqlite3.Connection:
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    _set_up(conn, mmap_bytes)
    return conn


def _set_up(conn: sqlite3.Connection, mmap_bytes: int) -> None:
    conn.execute("PRAGMA query_only = ON")
    conn.execute(f"PRAGMA mmap_size = {int(mmap_bytes)}")


class PatientStore:
    """Read-only access to one database. Use ``await PatientStore.open(path)``."""

    def __init__(
        self,
        path: Path,
        *,
        readers: list[aiosqlite.Connection],
        inline: sqlite3.Connection | None,
        acquire_timeout: float,
        uri: str = "",
        stall: float = 0.05,
    ) -> None:
        self.path = path
        self._uri = uri  # how the readers opened the file (for ``ping``'s own connection)
        self.inline = inline is not None
        self._inline = inline
        self._readers = readers
        self._acquire_timeout = acquire_timeout
        self._closed = False
        self._queue: list[_Pending] = []  # lookups not sent yet, oldest first
        self._dispatching = False  # a _dispatch is scheduled (call_soon)
        self._expiry: asyncio.TimerHandle | None = None  # acquire_timeout of the oldest
        self._stall = stall
        self._stall_timer: asyncio.TimerHandle | None = None
        # batches in flight, with when they were sent
        self._batches: dict[asyncio.Task[None], tuple[list[_Pending], float]] = {}
        self._idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        for conn in readers:
            self._idle.put_nowait(conn)

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        readers: int = 4,
        acquire_timeout: float = 5.0,
        inline: bool = False,
        mmap_bytes: int = 0,
        stall: float = 0.05,
    ) -> PatientStore:
        """Open the store read-only (``readers`` aiosqlite connections, or one inline).

        Raises StoreError for unusable files and for an older schema (the server never
        writes: ``rpi-async db migrate``). See ``store.readonly`` for WAL files.
        """
        path = Path(path)
        uri = await asyncio.to_thread(readonly.read_only_uri, path)
        opened: list[aiosqlite.Connection] = []
        try:
            if inline:
                return cls(
                    path,
                    readers=[],
                    inline=_connect(uri, mmap_bytes),
                    acquire_timeout=acquire_timeout,
                    uri=uri,
                )
            for _ in range(max(1, readers)):
                conn = await aiosqlite.connect(
                    uri,
                    uri=True,
                    check_same_thread=False,
                    isolation_level=None,
                    cached_statements=2 * BATCH_MAX + 16,  # a statement per batch size
                )
                opened.append(conn)
                await conn.execute("PRAGMA query_only = ON")
                await conn.execute(f"PRAGMA mmap_size = {int(mmap_bytes)}")
        except sqlite3.Error as exc:
            for conn in opened:
                await conn.close()
            raise StoreError(f"cannot open {path} read-only: {exc}") from None
        return cls(
            path,
            readers=opened,
            inline=None,
            acquire_timeout=acquire_timeout,
            uri=uri,
            stall=stall,
        )

    @property
    def connections(self) -> tuple[aiosqlite.Connection, ...]:
        """The reader connections (empty when inline): for diagnostics and fault tests."""
        return tuple(self._readers)

    async def lookup_compact(
        self, patient_id: str, issuer: str | None = None, answer: tuple[str, str] | None = None
    ) -> list[CompactPatient]:
        """Patients with this ID (in this issuer's domain if given); at most two.

        The query path's lookup: light records the renderer reads directly. With
        ``answer`` (template, renderer fingerprint) a patient whose stored answer for that
        template is current comes with it and without facts.
        """
        if self._closed:
            raise StoreUnavailable("patient store is closed")
        if self._inline is not None:
            try:
                return lookup_compact_now(self._inline, patient_id, issuer, answer)
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"patient store read failed: {exc}") from None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[CompactPatient]] = loop.create_future()
        self._queue.append(((patient_id, issuer, *(answer or _NO_ANSWER)), future, loop.time()))
        if not self._dispatching:
            self._dispatching = True
            loop.call_soon(self._dispatch)
        return await future

    def _dispatch(self) -> None:
        """Send the queued lookups, ``BATCH_MAX`` to a statement, to an idle reader.

        Scheduled (``call_soon``) by the first lookup of a loop iteration, and run again
        whenever a batch gives its reader back. One batch is in flight at a time: the
        lookups issued meanwhile wait in the queue and go out together when it is back.
        Another reader takes them only once every batch in flight has been out for
        ``stall`` seconds (a read that missed the page cache, a slow volume)."""
        self._dispatching = False
        queue, idle, batches = self._queue, self._idle, self._batches
        loop = asyncio.get_running_loop()
        while queue and not idle.empty() and not self._closed:
            if batches:
                due = max(sent for _, sent in batches.values()) + self._stall
                if due > loop.time():
                    if self._stall_timer is None:
                        self._stall_timer = loop.call_at(due, self._stalled)
                    break
            batch = [item for item in queue[:BATCH_MAX] if not item[1].done()]
            del queue[:BATCH_MAX]
            if batch:
                task = loop.create_task(self._run_batch(idle.get_nowait(), batch))
                batches[task] = (batch, loop.time())
                task.add_done_callback(self._batch_done)
        if queue and self._expiry is None:
            self._schedule_expiry()

    def _stalled(self) -> None:
        self._stall_timer = None
        self._dispatch()

    def _schedule_expiry(self) -> None:
        loop = asyncio.get_running_loop()
        self._expiry = loop.call_at(self._queue[0][2] + self._acquire_timeout, self._expire)

    def _expire(self) -> None:
        """Fail the lookups that waited ``acquire_timeout`` for a free reader."""
        self._expiry = None
        queue = self._queue
        limit = asyncio.get_running_loop().time() - self._acquire_timeout
        waited = 0
        while waited < len(queue) and queue[waited][2] <= limit:
            waited += 1
        _fail(queue[:waited], lambda: StoreUnavailable(_OVERLOADED))
        del queue[:waited]
        if queue:
            self._schedule_expiry()

    def _batch_done(self, task: asyncio.Task[None]) -> None:
        self._batches.pop(task, None)

    def _release(self, conn: aiosqlite.Connection) -> None:
        """A batch's reader is free again: the lookups queued meanwhile go out on it."""
        task = asyncio.current_task()
        if task is not None:
            self._batches.pop(task, None)  # no longer in flight
        self._idle.put_nowait(conn)
        if self._queue:
            self._dispatch()
        elif self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    async def _run_batch(self, conn: aiosqlite.Connection, batch: list[_Pending]) -> None:
        """One batch on one reader: one statement, one more for fact rows if needed."""
        results: list[list[CompactPatient | tuple[Any, ...]] | None] = []
        facts: dict[int, list[Any]] = {}
        try:
            try:
                params = [value for i, (key, _, _) in enumerate(batch) for value in (i, *key)]
                found: list[list[Any]] = [[] for _ in batch]
                for row in await conn.execute_fetchall(batch_sql(len(batch)), params):
                    found[row[0]].append(row[1:])
                need_facts: list[int] = []
                for (_, future, _), rows in zip(batch, found, strict=True):
                    results.append(None)
                    if future.done():  # cancelled meanwhile
                        continue
                    if len(rows) > 1:
                        rows.sort(key=_by_issuer)  # _LOOKUP's order, the index's
                    try:
                        parsed: list[CompactPatient | tuple[Any, ...]] = []
                        for row in rows:
                            patient, head = _compact(row)
                            if patient is None:
                                need_facts.append(head[0])
                                parsed.append(head)
                            else:
                                parsed.append(patient)
                    except Exception as exc:  # this caller's rows only
                        future.set_exception(exc)
                        continue
                    results[-1] = parsed
                if need_facts:
                    for row in await conn.execute_fetchall(_BATCH_FACTS, (json.dumps(need_facts),)):
                        facts.setdefault(row[0], []).append(row[1:])
            finally:
                self._release(conn)
        except sqlite3.Error as exc:
            message = f"patient store read failed: {exc}"
            _fail(batch, lambda: StoreUnavailable(message))
            return
        except asyncio.CancelledError:  # close()
            _fail(batch, lambda: StoreUnavailable("patient store is closed"))
            raise
        except Exception as exc:
            error = exc
            if self._closed:  # aiosqlite's "no active connection"
                _fail(batch, lambda: StoreUnavailable("patient store is closed"))
            else:
                _fail(batch, lambda: error)
            return
        for (_, future, _), ready in zip(batch, results, strict=True):
            if ready is None or future.done():
                continue
            future.set_result(
                [
                    p if isinstance(p, CompactPatient) else _from_facts(p, facts.get(p[0], ()))
                    for p in ready
                ]
            )

    async def lookup(self, patient_id: str, issuer: str | None = None) -> list[PatientRecord]:
        """Patients with this ID (in this issuer's domain if given); at most two are returned."""
        return [p.to_record() for p in await self.lookup_compact(patient_id, issuer)]

    async def ping(self) -> None:
        """Raise StoreUnavailable unless a real lookup reads: the first patient's row,
        compact document included, as a query would (not only the schema).

        On a connection of its own, opened for the probe: a reader's page cache would
        answer from memory while the file itself no longer reads (SQLite trusts its
        cache while the file's change counter is unchanged)."""
        if self._closed:
            raise StoreUnavailable("patient store is closed")
        try:
            await asyncio.to_thread(_probe, self._uri or f"{self.path.resolve().as_uri()}?mode=ro")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"patient store read failed: {exc}") from None

    async def generation(self) -> int:
        """A counter bumped by every import; cached renderings older than it are stale."""
        rows = await self._fetch(_GENERATION)
        return 0 if not rows else int(rows[0][0])

    async def close(self) -> None:
        """Close the connections; lookups still waiting fail with StoreUnavailable."""
        self._closed = True
        queue, self._queue = self._queue, []
        _fail(queue, lambda: StoreUnavailable("patient store is closed"))
        for timer in (self._expiry, self._stall_timer):
            if timer is not None:
                timer.cancel()
        self._expiry = self._stall_timer = None
        batches = dict(self._batches)
        for task in batches:
            task.cancel()
        await asyncio.gather(*batches, return_exceptions=True)
        for batch, _ in batches.values():  # a task cancelled before it started ran no handler
            _fail(batch, lambda: StoreUnavailable("patient store is closed"))
        for conn in self._readers:
            await conn.close()
        if self._inline is not None:
            self._inline.close()

    async def _fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        if self._closed:
            raise StoreUnavailable("patient store is closed")
        try:
            if self._inline is not None:
                return self._inline.execute(sql, params).fetchall()
            async with self._connection() as conn:
                return list(await conn.execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"patient store read failed: {exc}") from None

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[aiosqlite.Connection]:
        idle = self._idle
        if not idle.empty():
            conn = idle.get_nowait()
        else:
            try:
                conn = await asyncio.wait_for(idle.get(), self._acquire_timeout)
            except TimeoutError:
                raise StoreUnavailable(_OVERLOADED) from None
        try:
            yield conn
        finally:
            self._release(conn)


__all__ = ["CompactFact", "CompactPatient", "PatientStore", "lookup_compact_now"]
