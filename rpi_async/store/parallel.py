"""Validating a large NDJSON import in worker processes while this process writes.

Theory of operation: an import spends about two thirds of its time decoding and
validating documents and building each patient's compact copy, all of it pure Python
that holds the GIL, and the rest in SQLite. For a large NDJSON file loaded into an empty
store, the text is cut at line ends into chunks of about a megabyte. Each chunk gets
primary keys counted from the number of lines before it (so a blank line leaves an unused
key, nothing more), and a worker process turns it into finished ``writer.Rows``: the very
parameters of the INSERT statements. This process only writes them, in file order,
inside the writer's one transaction. At most two chunks per worker are in flight, so
memory stays bounded whatever the file size.

The parallel path is only an accelerator and never decides anything on its own. A chunk
that does not parse cleanly (bad JSON, an invalid document, a document spanning lines),
a patient key seen twice, a store that is not empty, or a worker that dies, all raise
``Fallback``: the caller rolls the transaction back and imports the file again in one
process, which finds the first bad record and names it exactly as it always does. A
failed import costs a second pass; a good one is written once, with the same rows as the
sequential path (tested).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import orjson

from rpi_async.store.document import DocumentError, parse_patient_rows
from rpi_async.store.writer import Rows

CHUNK_CHARS = 1 << 20
# Below this size the workers' start-up (about 0.3 s each) costs more than they save.
MIN_PARALLEL_CHARS = 16 << 20
_IN_FLIGHT_PER_WORKER = 2


class Fallback(Exception):
    """The parallel path gave up; import the file sequentially instead."""


def worker_count() -> int:
    """Worker processes for a parallel import: one per CPU this process may use."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(cpus, 1)


def chunk_bounds(text: str, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) of consecutive slices of ``text`` that each end at a line end."""
    start = 0
    while start < len(text):
        end = text.find("\n", min(start + size, len(text)) - 1)
        end = len(text) if end < 0 else end + 1
        yield start, end
        start = end


def parse_chunk(text: str, first_pk: int, stamp: str) -> Rows | None:
    """Worker side: the rows of every non-blank line of ``text``, the patient on line i
    getting key ``first_pk + i``; None if any line is not a valid one-line document
    (the sequential pass then says which)."""
    collecting = gc.isenabled()
    gc.disable()  # as in the writer: millions of short-lived containers, no cycles
    try:
        rows = Rows.empty()
        for i, line in enumerate(text.split("\n")):
            if not line.strip():
                continue
            try:
                record = parse_patient_rows(orjson.loads(line))
            except (orjson.JSONDecodeError, DocumentError):
                return None
            rows.add(first_pk + i, record, stamp)
        return rows
    finally:
        if collecting:
            gc.enable()


def parsed_rows(
    text: str,
    *,
    workers: int,
    first_pk: int,
    stamp: str,
    chunk_chars: int | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> Iterator[Rows]:
    """The rows of every patient of an NDJSON text, in file order, built by ``workers``
    processes, keys counted from ``first_pk``.

    Raises Fallback when the sequential path must decide (see the module docstring).
    ``on_chunk(end offset)`` is called as each chunk is handed over.
    """
    context = multiprocessing.get_context("spawn")  # safe beside a progress thread
    seen: set[tuple[str, str]] = set()
    pending: deque[tuple[int, Future[Rows | None]]] = deque()
    try:
        pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_worker_start
        )
    except (OSError, ImportError, NotImplementedError) as exc:  # e.g. no /dev/shm
        raise Fallback(f"no worker processes here: {exc}") from exc
    with pool:
        try:
            pk = first_pk
            for start, end in chunk_bounds(text, chunk_chars or CHUNK_CHARS):
                pending.append((end, pool.submit(parse_chunk, text[start:end], pk, stamp)))
                pk += text.count("\n", start, end)
                if len(pending) >= workers * _IN_FLIGHT_PER_WORKER:
                    yield _take(pending.popleft(), seen, on_chunk)
            while pending:
                yield _take(pending.popleft(), seen, on_chunk)
        except BrokenProcessPool as exc:
            raise Fallback("a worker process died") from exc
        except OSError as exc:  # starting a worker failed (process or memory limits)
            raise Fallback(f"worker processes failed: {exc}") from exc
        finally:
            for _, future in pending:
                future.cancel()


def _worker_start() -> None:
    """Ctrl-C is the importing process's to handle: it rolls back and stops the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _take(
    item: tuple[int, Future[Rows | None]],
    seen: set[tuple[str, str]],
    on_chunk: Callable[[int], None] | None,
) -> Rows:
    end, future = item
    try:
        rows = future.result()
    except BrokenProcessPool:
        raise
    except Exception as exc:  # anything unexpected: the sequential path decides
        raise Fallback(f"a worker failed: {type(exc).__name__}") from exc
    if rows is None:
        raise Fallback("a chunk did not parse")
    before = len(seen)
    seen.update([(p[1], p[2]) for p in rows.patients])
    if len(seen) != before + len(rows.patients):
        raise Fallback("a patient appears twice")
    if on_chunk is not None:
        on_chunk(end)
    return rows
