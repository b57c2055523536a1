"""Batched lookups: the lookups of one loop iteration go to one reader as one statement,
and every caller gets what the single-lookup statement gives it, alone."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rpi_async.errors import StoreUnavailable
from rpi_async.sr import prerender
from rpi_async.sr.render_bytes import Renderer
from rpi_async.store import demo, schema
from rpi_async.store.compact import CompactPatient
from rpi_async.store.model import PatientRecord
from rpi_async.store.reader import BATCH_MAX, PatientStore, lookup_compact_now
from rpi_async.store.writer import write_patients
from tests.conftest import JANE, UNICODE

DEMO = 40
# One ID in three issuers, written out of issuer order: a lookup without an issuer gets
# the first two in issuer order (the index's), not in the order they were written.
TRIPLE = tuple(PatientRecord(patient_id="TRI", issuer=i, name=f"Tri^{i}") for i in "BCA")
LATE = PatientRecord(patient_id="LATE", issuer="H", name="Written^After", facts=JANE.facts)
BROKEN = ("DEMO000003", "DEMO000004")  # compact copies unreadable: facts from the table


@pytest.fixture(scope="module")
def batch_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("batch") / "batch.sqlite3"
    conn = schema.connect_writer(path, create=True)
    try:
        demo.populate(conn, DEMO, 0)  # DEMO000001... and the DEMO-DUP pair
        write_patients(conn, [JANE, UNICODE, *TRIPLE])
        assert prerender.prerender(conn, path, workers=1, templates=("9007",)) > 0
        write_patients(conn, [replace(JANE, name="Doe^Janet")])  # its answer is outdated now
        write_patients(conn, [LATE])  # no stored answer at all
        with conn:
            conn.execute(
                "UPDATE patient SET facts_doc = 'garbage' WHERE patient_id IN (?, ?)", BROKEN
            )
    finally:
        conn.close()
    return path


RENDERER = Renderer().fingerprint
ANSWERS: tuple[tuple[str, str] | None, ...] = (None, ("9007", RENDERER), ("9007", "other"))
IDS = (
    *(demo.demo_patient_id(n) for n in range(1, DEMO + 1)),
    "DEMO-DUP",
    "P0001",
    "P0002",
    "TRI",
    "LATE",
    "NOBODY",
)
ISSUERS = (None, "DEMO", "ISSUER_B", "HOSP_A", "A", "C", "H", "ELSEWHERE")
KEYS = [
    (pid, issuer, answer)
    for pid, issuer, answer in itertools.product(IDS, ISSUERS, ANSWERS)
    # every ID with every issuer would be mostly misses: keep all of them for the few
    if not pid.startswith("DEMO0000") or issuer in (None, "DEMO", "ELSEWHERE")
]


def _view(patient: CompactPatient) -> tuple[Any, ...]:
    return (
        patient.pk,
        patient.patient_id,
        patient.issuer,
        patient.name,
        patient.birth_date,
        patient.sex,
        patient.version,
        patient.other_ids,
        patient.stored,
        patient.facts,
    )


def _single(path: Path) -> dict[Any, list[tuple[Any, ...]]]:
    """What the single-lookup statement gives for every key, one at a time."""
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return {key: [_view(p) for p in lookup_compact_now(conn, *key)] for key in KEYS}
    finally:
        conn.close()


@pytest.fixture
async def store(batch_db: Path) -> AsyncIterator[PatientStore]:
    opened = await PatientStore.open(batch_db, readers=1)
    try:
        yield opened
    finally:
        await opened.close()


async def _trace(store: PatientStore) -> list[str]:
    """Every statement the readers run from now on."""
    seen: list[str] = []
    for conn in store.connections:
        await conn.set_trace_callback(seen.append)
    return seen


def _gate(store: PatientStore, reader: int = 0) -> asyncio.Event:
    """Hold every statement of a reader until the returned event is set."""
    conn = store.connections[reader]
    inner = conn.execute_fetchall
    gate = asyncio.Event()

    async def gated(*args: Any, **kwargs: Any) -> Any:
        await gate.wait()
        return await inner(*args, **kwargs)

    conn.execute_fetchall = gated  # type: ignore[method-assign,assignment]
    return gate


def _ids(found: list[CompactPatient] | BaseException) -> list[str]:
    assert isinstance(found, list), found
    return [p.patient_id for p in found]


async def _pending(count: int) -> None:
    """Let the loop run ``count`` iterations."""
    for _ in range(count):
        await asyncio.sleep(0)


@pytest.mark.parametrize("readers", [1, 2])
async def test_batched_results_equal_single_lookups(batch_db: Path, readers: int) -> None:
    expected = _single(batch_db)
    # The fixture covers what it means to: two patients for one ID, stored answers used
    # and outdated ones not, patients read from the fact table, misses.
    assert {len(v) for v in expected.values()} == {0, 1, 2}
    assert [p[2] for p in expected["TRI", None, None]] == ["A", "B"]
    assert [p[2] for p in expected["DEMO-DUP", None, None]] == ["ISSUER_A", "ISSUER_B"]
    assert expected["DEMO000001", "DEMO", ANSWERS[1]][0][8] is not None
    assert expected["P0001", "HOSP_A", ANSWERS[1]][0][8] is None  # outdated
    assert len(expected["LATE", None, ANSWERS[1]][0][9]) == len(LATE.facts) > 0
    assert expected[BROKEN[0], None, None][0][9] != ()
    assert len(KEYS) > 3 * BATCH_MAX  # several batches at once, the last one partial
    store = await PatientStore.open(batch_db, readers=readers)
    try:
        seen = [await _trace(store) for store in ([store] if readers == 1 else [])]
        found = await asyncio.gather(*(store.lookup_compact(*key) for key in KEYS))
        assert {key: [_view(p) for p in got] for key, got in zip(KEYS, found, strict=True)} == (
            expected
        )
        # And one at a time (a batch of one), in reverse order.
        for key in reversed(KEYS):
            assert [_view(p) for p in await store.lookup_compact(*key)] == expected[key]
        if seen:  # one reader: one statement per batch, one more per batch with fact rows
            assert sum(s.startswith("WITH q(") for s in seen[0]) == len(KEYS) + -(
                -len(KEYS) // BATCH_MAX
            )
    finally:
        await store.close()


async def test_lookups_issued_together_are_one_statement(store: PatientStore) -> None:
    seen = await _trace(store)
    keys = [(demo.demo_patient_id(n), "DEMO", ANSWERS[1]) for n in range(5, 25)]
    found = await asyncio.gather(*(store.lookup_compact(*key) for key in keys))
    assert [[p.patient_id for p in got] for got in found] == [[k[0]] for k in keys]
    [statement] = seen
    assert statement.startswith("WITH q(i, pid, iss, tpl, rnd) AS (VALUES (0, 'DEMO000005'")
    assert all(f"'{key[0]}'" in statement for key in keys)
    seen.clear()
    # More than BATCH_MAX issued together: split, every lookup in exactly one statement.
    keys = [(demo.demo_patient_id(n % DEMO + 1), "DEMO", None) for n in range(BATCH_MAX + 5)]
    found = await asyncio.gather(*(store.lookup_compact(*key) for key in keys))
    assert [[p.patient_id for p in got] for got in found] == [[k[0]] for k in keys]
    batches = [s for s in seen if s.startswith("WITH q(")]
    assert [s.count("), (") + 1 for s in batches] == [BATCH_MAX, 5]
    assert len(seen) == 3  # and the fact rows of the first batch's two BROKEN patients
    seen.clear()
    # Patients without a compact copy: their fact rows for the whole batch in one more.
    found = await asyncio.gather(*(store.lookup_compact(pid) for pid in (*BROKEN, "LATE")))
    assert all(got[0].facts for got in found)
    assert len(seen) == 2
    assert "json_each" in seen[1]
    seen.clear()
    # Lookups awaited one after the other are not held back for a batch.
    for key in keys[4:7]:
        await store.lookup_compact(*key)
    assert len(seen) == 3


@pytest.fixture
def db_copy(batch_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "copy.sqlite3"
    shutil.copyfile(batch_db, path)
    return path


async def test_sqlite_error_fails_the_whole_batch_then_the_next_one_works(db_copy: Path) -> None:
    path = db_copy
    store = await PatientStore.open(path, readers=1)
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        keys = [(demo.demo_patient_id(n), None, None) for n in range(1, 11)]
        writer.execute("ALTER TABLE answer RENAME TO gone")
        results = await asyncio.gather(
            *(store.lookup_compact(*key) for key in keys), return_exceptions=True
        )
        assert all(isinstance(r, StoreUnavailable) for r in results), results
        assert all("read failed" in str(r) and "answer" in str(r) for r in results)
        assert len({id(r) for r in results}) == len(keys)  # an exception per caller
        writer.execute("ALTER TABLE gone RENAME TO answer")
        found = await asyncio.gather(*(store.lookup_compact(*key) for key in keys))
        assert [[p.patient_id for p in got] for got in found] == [[k[0]] for k in keys]
    finally:
        writer.close()
        await store.close()


async def test_a_cancelled_caller_does_not_affect_the_others(store: PatientStore) -> None:
    seen = await _trace(store)
    keys = [(demo.demo_patient_id(n), "DEMO", None) for n in range(5, 13)]

    def start() -> list[asyncio.Task[list[CompactPatient]]]:
        return [asyncio.create_task(store.lookup_compact(*key)) for key in keys]

    # Cancelled before its batch is sent: left out of the statement.
    tasks = start()
    await _pending(1)  # every task has issued its lookup; the batch is not sent yet
    tasks[2].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[2], asyncio.CancelledError)
    assert [[p.patient_id for p in got] for got in done if not isinstance(got, BaseException)] == [
        [k[0]] for i, k in enumerate(keys) if i != 2
    ]
    [statement] = seen
    assert f"'{keys[2][0]}'" not in statement
    assert f"'{keys[3][0]}'" in statement
    # Cancelled while its batch's statement runs.
    gate = _gate(store)
    tasks = start()
    await _pending(5)
    assert not any(t.done() for t in tasks)
    tasks[0].cancel()
    tasks[7].cancel()
    await _pending(1)
    gate.set()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[0], asyncio.CancelledError)
    assert isinstance(done[7], asyncio.CancelledError)
    assert [_ids(got) for got in done[1:7]] == [[k[0]] for k in keys[1:7]]


async def _lookups(store: PatientStore, count: int) -> list[asyncio.Task[list[CompactPatient]]]:
    tasks = [
        asyncio.create_task(store.lookup_compact(demo.demo_patient_id(n), "DEMO"))
        for n in range(1, count + 1)
    ]
    await _pending(5)  # issued and sent (or waiting for a connection)
    return tasks


async def test_no_free_connection_within_the_timeout_is_overloaded(batch_db: Path) -> None:
    store = await PatientStore.open(batch_db, readers=1, acquire_timeout=0.05)
    try:
        gate = _gate(store)
        first = await _lookups(store, 3)  # holds the only connection at the gate
        second = await _lookups(store, 4)  # the next batch: no connection for 50 ms
        results = await asyncio.gather(*second, return_exceptions=True)
        assert all(isinstance(r, StoreUnavailable) for r in results), results
        assert all("overloaded" in str(r) for r in results)
        assert not any(t.done() for t in first)
        gate.set()
        assert [len(got) for got in await asyncio.gather(*first)] == [1, 1, 1]
        assert len(await store.lookup_compact("DEMO-DUP")) == 2
    finally:
        await store.close()


@pytest.mark.parametrize("in_task", [False, True], ids=["unsent", "sent-not-started"])
async def test_close_fails_waiting_and_running_batches(batch_db: Path, in_task: bool) -> None:
    store = await PatientStore.open(batch_db, readers=1)
    _gate(store)  # never opened
    running = await _lookups(store, 3)  # at the gate
    waiting = await _lookups(store, 2)  # waiting for the connection
    issued = [asyncio.create_task(store.lookup_compact("P0001")) for _ in range(2)]
    await _pending(1)  # issued, their batch not sent yet
    if in_task:  # close() starts an iteration later: their batch's task exists, not started
        await asyncio.wait_for(store.close(), 5)
    else:
        await store.close()
    for task in (*running, *waiting, *issued):
        with pytest.raises(StoreUnavailable, match="closed"):
            await asyncio.wait_for(task, 5)
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.lookup_compact("P0001")


async def test_lookups_issued_while_a_batch_runs_go_out_together(store: PatientStore) -> None:
    seen = await _trace(store)
    gate = _gate(store)
    first = await _lookups(store, 3)  # at the gate
    later = []
    for n in range(10, 15):  # one per loop iteration, each too late for the batch before
        later.append(asyncio.create_task(store.lookup_compact(demo.demo_patient_id(n))))
        await _pending(3)
    gate.set()
    found = await asyncio.gather(*first, *later)
    assert [len(got) for got in found] == [1] * 8
    assert [s.count("), (") + 1 for s in seen if s.startswith("WITH q(")] == [3, 5]


async def test_another_reader_takes_over_from_a_stalled_batch(batch_db: Path) -> None:
    store = await PatientStore.open(batch_db, readers=2, stall=0.3)
    try:
        seen = await _trace(store)
        gate = _gate(store, 0)  # the first reader's batch stalls
        first = await _lookups(store, 3)
        second = await _lookups(store, 2)
        await asyncio.sleep(0.1)
        assert not any(t.done() for t in (*first, *second))  # the second reader waits...
        assert seen == []
        done, _ = await asyncio.wait(second, timeout=5)  # ... until the first stalled
        assert done == set(second)
        assert [len(t.result()) for t in second] == [1, 1]
        assert not any(t.done() for t in first)
        gate.set()
        assert [len(got) for got in await asyncio.gather(*first)] == [1, 1, 1]
    finally:
        await store.close()
