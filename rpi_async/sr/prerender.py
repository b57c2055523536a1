"""Render the stored answers of a patient store (``store.answers``) with this renderer.

Theory of operation. ``prerender`` finds every (patient, root template) whose stored
answer is missing or outdated and renders it with the byte backend, without the Subject
Age item. With ``workers`` > 1 the patients are cut into ranges rendered by worker
processes, each reading the database on its own read-only connection, while this
process writes what they return (one writer, batches of ``store.answers.BATCH``): the
renderer is pure Python, so processes, not threads, use the cores. A machine that cannot
start processes renders in this one.

The root templates stored are those the three SOP classes default to; the other
templates a query may name (the TID 9000 sub-templates on the General SOP class) are
rendered live.
"""

from __future__ import annotations

import itertools
import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from rpi_async.sr.registry import TEMPLATES
from rpi_async.sr.render_bytes import Renderer, fingerprint
from rpi_async.store import answers
from rpi_async.store.answers import StoredAnswer
from rpi_async.store.compact import CompactPatient
from rpi_async.store.reader import patient_by_pk

log = logging.getLogger("rpi_async.store")

STORED_TEMPLATES = ("9007", "9000", "3802")
RANGE = 2000  # patients per worker task

Row = tuple[int, str, int, StoredAnswer | None]  # pk, template, version, answer


def _render(conn: sqlite3.Connection, pks: Iterable[int], templates: Iterable[str]) -> list[Row]:
    renderer = Renderer()
    wanted = tuple(templates)
    out: list[Row] = []
    for pk in pks:
        patient: CompactPatient | None = patient_by_pk(conn, pk)
        if patient is None:  # deleted meanwhile
            continue
        for template in wanted:
            stored = renderer.stored_answer(patient, TEMPLATES[template])
            out.append((pk, template, patient.version, stored))
    return out


def _render_range(path: str, pks: list[int], templates: tuple[str, ...]) -> list[Row]:
    """In a worker process: one range of patients, on its own read-only connection."""
    conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        return _render(conn, pks, templates)
    finally:
        conn.close()


def _ranges(pairs: Iterable[tuple[int, str]]) -> Iterator[list[int]]:
    pks = sorted({pk for pk, _ in pairs})
    for start in range(0, len(pks), RANGE):
        yield pks[start : start + RANGE]


def prerender(
    conn: sqlite3.Connection,
    path: Path,
    *,
    workers: int | None = None,
    templates: tuple[str, ...] = STORED_TEMPLATES,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Render every missing or outdated stored answer; the number stored.

    ``progress(done, total)`` follows the answers stored."""
    renderer = fingerprint()
    pairs = list(answers.outdated(conn, templates, renderer))
    if not pairs:
        return 0
    total = len(pairs)
    stored = None if progress is None else (lambda done: progress(done, total))
    count = workers if workers is not None else (os.cpu_count() or 1)
    ranges = list(_ranges(pairs))
    rows: Iterable[Row]
    if count > 1 and len(ranges) > 1:
        try:
            pool = ProcessPoolExecutor(count)
        except (OSError, NotImplementedError) as exc:
            log.info("rendering stored answers in one process: %s", exc)
        else:
            with pool:
                results = pool.map(
                    _render_range, itertools.repeat(str(path)), ranges, itertools.repeat(templates)
                )
                rows = itertools.chain.from_iterable(results)
                return answers.store(conn, rows, renderer, progress=stored)
    rows = itertools.chain.from_iterable(_render(conn, pks, templates) for pks in ranges)
    return answers.store(conn, rows, renderer, progress=stored)
