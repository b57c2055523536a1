"""The parallel NDJSON import: the same store as the sequential one, and the same errors."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from rpi_async.errors import ImportFailed
from rpi_async.store import demo, importer, parallel, schema
from rpi_async.store.document import record_to_json

# Small chunks, so that a few hundred patients make many chunks and keep both workers busy.
CHUNK = 8 * 1024
PATIENTS = 300
FELL_BACK = "continues in one process"


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "CHUNK_CHARS", CHUNK)


@pytest.fixture(scope="module")
def documents() -> list[dict[str, Any]]:
    return [record_to_json(r) for r in demo.generate(PATIENTS, seed=3)]


def _ndjson(path: Path, docs: list[dict[str, Any]], newline: str = "\n") -> Path:
    path.write_text(newline.join(json.dumps(d) for d in docs) + newline, encoding="utf-8")
    return path


@pytest.fixture
def connect(tmp_path: Path) -> Iterator[Any]:
    opened: list[sqlite3.Connection] = []

    def make(name: str) -> sqlite3.Connection:
        c = schema.connect_writer(tmp_path / f"{name}.sqlite3", create=True)
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.close()


def _content(conn: sqlite3.Connection) -> tuple[list[Any], list[Any], list[Any]]:
    """Everything an import writes, with patients named by key rather than by pk."""
    patients = conn.execute(
        "SELECT patient_id, issuer, name, birth_date, sex, version, facts_doc FROM patient "
        "ORDER BY patient_id, issuer"
    ).fetchall()
    facts = conn.execute(
        "SELECT p.patient_id, p.issuer, f.* FROM fact f JOIN patient p ON p.pk = f.patient_pk "
        "ORDER BY p.patient_id, p.issuer, f.seq"
    ).fetchall()
    others = conn.execute(
        "SELECT p.patient_id, p.issuer, o.other_id, o.issuer, o.type_of_id "
        "FROM other_patient_id o JOIN patient p ON p.pk = o.patient_pk "
        "ORDER BY 1, 2, 3, 4"
    ).fetchall()
    strip_pk = [(r[0], r[1], *r[3:]) for r in facts]  # drop fact.patient_pk
    return patients, strip_pk, others


def _count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM patient").fetchone()[0])


def test_chunks_end_at_line_ends() -> None:
    text = "a\nbb\n\nccc\nd"
    bounds = list(parallel.chunk_bounds(text, 3))
    assert "".join(text[a:b] for a, b in bounds) == text
    assert all(text[b - 1] == "\n" for _, b in bounds[:-1])
    assert len(bounds) > 1


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_parallel_import_writes_what_the_sequential_one_writes(
    tmp_path: Path,
    connect: Any,
    documents: list[dict[str, Any]],
    newline: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "rpi_async.store")
    path = _ndjson(tmp_path / "p.ndjson", documents, newline)
    assert path.stat().st_size > 4 * CHUNK
    one, two = connect("one"), connect("two")
    sequential = importer.import_file(one, path)
    offsets: list[int] = []
    parallel_summary = importer.import_file(
        two, path, workers=2, progress=lambda done, total: offsets.append(done)
    )
    assert parallel_summary == sequential
    assert sequential.patients == len(documents) >= PATIENTS
    assert _content(two) == _content(one)
    assert offsets == sorted(offsets)
    assert offsets[-1] == len(path.read_bytes().decode())
    assert FELL_BACK not in caplog.text
    assert two.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0] == "1"


def test_blank_lines_only_leave_unused_keys(
    tmp_path: Path, connect: Any, documents: list[dict[str, Any]]
) -> None:
    lines = [json.dumps(d) for d in documents]
    path = tmp_path / "gaps.ndjson"
    path.write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    one, two = connect("one"), connect("two")
    importer.import_file(one, path)
    importer.import_file(two, path, workers=2)
    assert _content(two) == _content(one)


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ("{not json", "invalid JSON"),
        ('{"name": "X"}', "patient_id"),
        ("duplicate", "same patient_id and issuer as record 1"),
    ],
)
def test_a_bad_record_gets_the_sequential_error_and_nothing_is_written(
    tmp_path: Path, connect: Any, documents: list[dict[str, Any]], bad: str, fragment: str
) -> None:
    lines = [json.dumps(d) for d in documents]
    at = len(lines) - 5  # late in the file: earlier chunks are already written
    lines[at] = lines[0] if bad == "duplicate" else bad
    path = tmp_path / "bad.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    conn = connect("store")
    with pytest.raises(ImportFailed) as parallel_error:
        importer.import_file(conn, path, workers=2)
    assert _count(conn) == 0
    with pytest.raises(ImportFailed) as sequential_error:
        importer.import_file(conn, path)
    assert str(parallel_error.value) == str(sequential_error.value)
    assert fragment in str(parallel_error.value)
    assert f"record {at + 1} (line {at + 1}" in str(parallel_error.value)


def test_a_document_spanning_lines_is_imported_by_the_fallback(
    tmp_path: Path, connect: Any, documents: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "rpi_async.store")
    text = "\n".join(json.dumps(d) for d in documents[:-1])
    text += "\n" + json.dumps(documents[-1], indent=2) + "\n"
    path = tmp_path / "mixed.ndjson"
    path.write_text(text, encoding="utf-8")
    conn = connect("store")
    assert importer.import_file(conn, path, workers=2).patients == len(documents)
    assert _count(conn) == len(documents)
    assert FELL_BACK in caplog.text


def test_a_store_with_patients_replaces_them_sequentially(
    tmp_path: Path, connect: Any, documents: list[dict[str, Any]]
) -> None:
    path = _ndjson(tmp_path / "p.ndjson", documents)
    conn = connect("store")
    importer.import_file(conn, _ndjson(tmp_path / "first.ndjson", documents[:10]))
    assert importer.import_file(conn, path, workers=2).patients == len(documents)
    versions = {
        (p, i): v for p, i, v in conn.execute("SELECT patient_id, issuer, version FROM patient")
    }
    assert len(versions) == len(documents)
    assert sorted(set(versions.values())) == [1, 2]
    assert sum(v == 2 for v in versions.values()) == 10


def test_auto_workers_only_for_large_files(tmp_path: Path) -> None:
    small = tmp_path / "small.ndjson"
    small.write_text("{}\n")
    assert importer.auto_workers(small) == 1
    assert importer.auto_workers(tmp_path / "missing.ndjson") == 1


def test_an_unexpected_worker_error_hands_over_to_the_sequential_path() -> None:
    failed: Future[Any] = Future()
    failed.set_exception(RecursionError("deep"))
    with pytest.raises(parallel.Fallback, match="RecursionError"):
        parallel._take((10, failed), set(), None)


def test_no_worker_processes_means_the_sequential_path(
    tmp_path: Path,
    connect: Any,
    documents: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(parallel, "ProcessPoolExecutor", refuse)
    caplog.set_level(logging.INFO, "rpi_async.store")
    conn = connect("store")
    path = _ndjson(tmp_path / "p.ndjson", documents)
    assert importer.import_file(conn, path, workers=2).patients == len(documents)
    assert "no worker processes here" in caplog.text
