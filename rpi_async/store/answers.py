"""Stored answers: each patient's rendered SR content, kept beside its facts.

Theory of operation. A query's answer is mostly the same bytes every time: the SR
content of one patient in one root template. Only the echoed request keys, Observation
DateTime, Subject Age (it changes with the date of the query) and the character set
depend on the query. So the content is rendered when the data is written, once per
patient and root template, and a hit costs a lookup and a splice (``sr.render``'s
``assemble`` with a ``StoredAnswer``) instead of a walk of the template.

The ``answer`` table (schema version 4) holds, per (patient, template): the Content
Sequence items in Explicit VR Little Endian (the transfer syntax the server prefers;
Deflated is its deflate), compressed (``sr.render_bytes.AnswerCodec``), without the
Subject Age item, the offset where that item goes, whether the text is ASCII only, the
patient ``version`` it was rendered from and the ``renderer`` fingerprint of the code
that rendered it. A lookup joins the row only when both still match: a patient updated
since (a live update, a re-import) or a renderer changed since (an upgrade of rpi-async)
is rendered live until ``sr.prerender`` renders it again, so a stored answer is never
stale, only absent. ``renderers`` tells a server at start whether the file's answers are
this version's.

``outdated`` lists what is missing or outdated and ``store`` keeps what was rendered
for it (``sr.prerender`` renders them; the ``db`` commands that write run it after
writing, ``rpi-async db prerender`` alone): the store does not depend on the renderer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

ANSWER_TABLE = """
CREATE TABLE answer (
    patient_pk  INTEGER NOT NULL REFERENCES patient(pk) ON DELETE CASCADE,
    template    TEXT NOT NULL,
    version     INTEGER NOT NULL,
    renderer    TEXT NOT NULL,
    content     BLOB NOT NULL,
    age_at      INTEGER NOT NULL,
    ascii       INTEGER NOT NULL CHECK (ascii IN (0, 1)),
    UNIQUE (patient_pk, template)
)
"""

BATCH = 500


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """A patient's root Content Sequence items (Explicit VR LE, no Subject Age), compressed
    as stored or inflated (``sr.render_bytes.Renderer``)."""

    content: bytes
    age_at: int  # offset in ``content`` where the Subject Age item goes; -1: no such row
    ascii: bool  # the content's text is ASCII only


def outdated(
    conn: sqlite3.Connection, templates: Iterable[str], renderer: str
) -> Iterator[tuple[int, str]]:
    """(patient pk, template) of every answer missing, or older than its patient or renderer."""
    for template in templates:
        rows = conn.execute(
            "SELECT p.pk FROM patient p LEFT JOIN answer a "
            "ON a.patient_pk = p.pk AND a.template = ?1 "
            "WHERE a.patient_pk IS NULL OR a.version != p.version OR a.renderer != ?2 "
            "ORDER BY p.pk",
            (template, renderer),
        )
        for (pk,) in rows.fetchall():
            yield pk, template


def renderers(conn: sqlite3.Connection) -> frozenset[str]:
    """Renderer fingerprints of the first and the last stored answer (by rowid).

    Two index lookups, not a scan: ``sr.prerender`` works through the patients in order, so
    answers of one version show one fingerprint, and an upgrade or an interrupted prerender
    shows another. Empty when the file has no stored answers (or no answer table)."""
    try:
        rows = conn.execute(
            "SELECT renderer FROM answer WHERE rowid = (SELECT min(rowid) FROM answer) "
            "UNION SELECT renderer FROM answer WHERE rowid = (SELECT max(rowid) FROM answer)"
        ).fetchall()
    except sqlite3.OperationalError:  # an older schema: ``db migrate`` adds the table
        return frozenset()
    return frozenset(str(renderer) for (renderer,) in rows)


def store(
    conn: sqlite3.Connection,
    rows: Iterable[tuple[int, str, int, StoredAnswer | None]],
    renderer: str,
    *,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Store rendered answers: (patient pk, template, the patient version rendered, answer).

    One transaction per batch; an answer is stored only if its patient still has the
    version it was rendered from (a live update meanwhile wins). Returns the number stored.
    """
    written = 0
    batch: list[tuple[object, ...]] = []

    def flush() -> None:
        nonlocal written
        conn.execute("BEGIN IMMEDIATE")
        try:
            cursor = conn.executemany(_UPSERT, batch)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        written += max(cursor.rowcount, 0)
        batch.clear()
        if progress is not None:
            progress(written)

    for pk, template, version, stored in rows:
        if stored is None:
            continue
        batch.append((pk, template, version, renderer, stored.content, stored.age_at, stored.ascii))
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    return written


_UPSERT = (
    "INSERT INTO answer (patient_pk, template, version, renderer, content, age_at, ascii) "
    "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS "
    "(SELECT 1 FROM patient WHERE pk = ?1 AND version = ?3) "
    "ON CONFLICT (patient_pk, template) DO UPDATE SET version = excluded.version, "
    "renderer = excluded.renderer, content = excluded.content, age_at = excluded.age_at, "
    "ascii = excluded.ascii"
)


def counts(conn: sqlite3.Connection, renderer: str) -> dict[str, int]:
    """Stored answers per template that are current for ``renderer`` and their patients."""
    rows = conn.execute(
        "SELECT a.template, count(*) FROM answer a JOIN patient p ON p.pk = a.patient_pk "
        "WHERE a.version = p.version AND a.renderer = ? GROUP BY a.template",
        (renderer,),
    )
    return {template: int(n) for template, n in rows}
