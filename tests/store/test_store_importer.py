"""Importing JSON and NDJSON files: round trips through the store, and all-or-nothing errors."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from rpi_async.errors import ImportFailed
from rpi_async.store import importer, schema
from rpi_async.store.document import parse_patient, record_to_json
from rpi_async.store.model import PatientRecord
from rpi_async.store.reader import PatientStore

EXAMPLE = Path(str(resources.files("rpi_async").joinpath("examples/patients.json")))


def _docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = json.loads(EXAMPLE.read_text())["patients"]
    return docs


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "store.sqlite3"
    schema.connect_writer(path, create=True).close()
    return path


@pytest.fixture
def conn(db: Path) -> Iterator[sqlite3.Connection]:
    c = schema.connect_writer(db)
    yield c
    c.close()


def _patients(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM patient").fetchone()[0])


async def _lookup_all(db: Path, records: list[PatientRecord]) -> list[PatientRecord]:
    store = await PatientStore.open(db, readers=1)
    try:
        out = []
        for r in records:
            [found] = await store.lookup(r.patient_id, r.issuer)
            out.append(found)
        return out
    finally:
        await store.close()


async def test_example_round_trips_through_the_store(db: Path, conn: sqlite3.Connection) -> None:
    summary = importer.import_file(conn, EXAMPLE)
    expected = [parse_patient(d) for d in _docs()]
    assert summary.patients == len(expected)
    assert summary.facts == sum(len(r.facts) for r in expected)
    found = await _lookup_all(db, expected)
    assert [dataclasses.replace(r, version=0) for r in found] == expected
    assert {r.version for r in found} == {1}


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("layout", ["array", "wrapper", "ndjson", "jsonl", "ndjson-as-json"])
async def test_layouts(tmp_path: Path, db: Path, conn: sqlite3.Connection, layout: str) -> None:
    docs = _docs()
    if layout == "array":
        path = _write(tmp_path / "p.json", json.dumps(docs, indent=2))
    elif layout == "wrapper":
        path = _write(tmp_path / "p.json", json.dumps({"comment": "x", "patients": docs}))
    else:
        suffix = {"ndjson": ".ndjson", "jsonl": ".jsonl", "ndjson-as-json": ".json"}[layout]
        path = _write(tmp_path / f"p{suffix}", "\n".join(json.dumps(d) for d in docs) + "\n")
    assert importer.import_file(conn, path).patients == len(docs)
    expected = [parse_patient(d) for d in docs]
    found = await _lookup_all(db, expected)
    assert [dataclasses.replace(r, version=0) for r in found] == expected


def test_single_pretty_printed_patient(tmp_path: Path, conn: sqlite3.Connection) -> None:
    path = _write(tmp_path / "one.json", json.dumps(_docs()[0], indent=2))
    assert importer.import_file(conn, path).patients == 1


def _expect_nothing_imported(conn: sqlite3.Connection, path: Path, *fragments: str) -> str:
    before = _patients(conn)
    with pytest.raises(ImportFailed) as info:
        importer.import_file(conn, path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert message.endswith("nothing was imported")
    for fragment in fragments:
        assert fragment in message
    assert _patients(conn) == before
    return message


def _many(n: int) -> list[dict[str, Any]]:
    return [{"patient_id": f"P{i:04d}", "sections": _docs()[0]["sections"]} for i in range(n)]


def test_bad_record_deep_in_ndjson(tmp_path: Path, conn: sqlite3.Connection) -> None:
    docs = _many(3000)
    docs[2500]["birth_date"] = "2001-02-29"
    path = _write(tmp_path / "p.ndjson", "".join(json.dumps(d) + "\n" for d in docs))
    _expect_nothing_imported(
        conn, path, "record 2501 (line 2501, patient_id 'P2500')", "birth_date", "2001-02-29"
    )


def test_bad_record_in_array_names_its_line(tmp_path: Path, conn: sqlite3.Connection) -> None:
    docs = _many(5)
    docs[3]["sections"] = {"medication": [{"code": "1|SCT|x"}, {"code": "no code"}]}
    path = _write(tmp_path / "p.json", json.dumps(docs, indent=1))
    text = path.read_text()
    line = text[: text.index('"P0003"')].count("\n") + 1
    message = _expect_nothing_imported(conn, path, "record 4 (line ", "patient_id 'P0003'")
    assert f"(line {line - 1}," in message or f"(line {line}," in message
    assert r"sections.medication[1].code" in message


def test_record_without_patient_id(tmp_path: Path, conn: sqlite3.Connection) -> None:
    path = _write(tmp_path / "p.ndjson", '{"patient_id": "A"}\n{"name": "Doe^Jane"}\n')
    _expect_nothing_imported(conn, path, "record 2 (line 2)", "patient_id: missing")


def test_invalid_json_gives_line_and_column(tmp_path: Path, conn: sqlite3.Connection) -> None:
    path = _write(tmp_path / "p.ndjson", '{"patient_id": "A"}\n{"patient_id": "B",}\n')
    _expect_nothing_imported(conn, path, "record 2 (line 2)", "invalid JSON at line 2 column")
    path = _write(tmp_path / "q.json", '[{"patient_id": "A"},\n {"patient_id": "B"\n')
    _expect_nothing_imported(conn, path, "invalid JSON at line 3 column 1")
    path = _write(tmp_path / "r.json", '[{"patient_id": "A"}] trailing')
    _expect_nothing_imported(conn, path, "extra data")


def test_malformed_code_and_wrong_date(tmp_path: Path, conn: sqlite3.Connection) -> None:
    bad_code = {"patient_id": "C", "sections": {"procedure": [{"code": "44578009|SCT"}]}}
    path = _write(tmp_path / "c.ndjson", json.dumps(bad_code) + "\n")
    _expect_nothing_imported(conn, path, "patient_id 'C'", "sections.procedure[0].code")
    bad_date = {"patient_id": "D", "sections": {"procedure": [{"code": "1|SCT|x", "start": "x"}]}}
    path = _write(tmp_path / "d.ndjson", json.dumps(bad_date) + "\n")
    _expect_nothing_imported(conn, path, "patient_id 'D'", "sections.procedure[0].start")


def test_duplicate_patient_in_one_file(tmp_path: Path, conn: sqlite3.Connection) -> None:
    docs = [
        {"patient_id": "A", "issuer": "X"},
        {"patient_id": "B"},
        {"patient_id": "A", "issuer": "X"},
    ]
    path = _write(tmp_path / "p.json", json.dumps(docs))
    _expect_nothing_imported(conn, path, "record 3", "same patient_id and issuer as record 1")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("", "the file is empty"),
        ("   \n", "the file is empty"),
        ('{"other": []}', "record 1 (line 1): other: unknown field"),
        ('{"$schema": "x", "other": []}', "no 'patients' array"),
        ('{"patients": {}}', "'patients' must be an array"),
        ("[1, 2]", "a patient must be a JSON object"),
        ("42", "a patient must be a JSON object"),
    ],
)
def test_bad_file_shapes(
    tmp_path: Path, conn: sqlite3.Connection, content: str, fragment: str
) -> None:
    path = _write(tmp_path / "p.json", content)
    _expect_nothing_imported(conn, path, fragment)


def test_not_utf8(tmp_path: Path, conn: sqlite3.Connection) -> None:
    path = tmp_path / "p.json"
    path.write_bytes(b'[{"patient_id": "\xff"}]')
    _expect_nothing_imported(conn, path, "not UTF-8")


def test_missing_file(tmp_path: Path, conn: sqlite3.Connection) -> None:
    with pytest.raises(ImportFailed, match="no such file"):
        importer.import_file(conn, tmp_path / "absent.json")


async def test_reimport_replaces_and_bumps_version(
    tmp_path: Path, db: Path, conn: sqlite3.Connection
) -> None:
    importer.import_file(conn, EXAMPLE)
    changed = _docs()[:1]
    changed[0]["name"] = "Doe^Janet"
    changed[0]["sections"] = {"device": [{"code": "65818007|SCT|Stent"}]}
    importer.import_file(conn, _write(tmp_path / "c.json", json.dumps(changed)))
    [record] = await _lookup_all(db, [parse_patient(changed[0])])
    assert record.name == "Doe^Janet"
    assert record.version == 2
    assert len(record.facts) == 1
    assert _patients(conn) == len(_docs())


def test_progress_reaches_the_end(tmp_path: Path, conn: sqlite3.Connection) -> None:
    path = _write(tmp_path / "p.ndjson", "".join(json.dumps(d) + "\n" for d in _many(10)))
    seen: list[tuple[int, int]] = []
    importer.import_file(conn, path, progress=lambda done, total: seen.append((done, total)))
    assert 2 <= len(seen) <= 11
    assert seen[-1][0] == seen[-1][1] == path.stat().st_size
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_records_export_and_import_again(tmp_path: Path, conn: sqlite3.Connection) -> None:
    records = [parse_patient(d) for d in _docs()]
    path = _write(
        tmp_path / "e.ndjson", "".join(json.dumps(record_to_json(r)) + "\n" for r in records)
    )
    assert list(importer.read_records(path)) == records


def test_progress_is_throttled(tmp_path: Path, conn: sqlite3.Connection) -> None:
    docs = [{"patient_id": f"T{i}"} for i in range(5000)]
    path = _write(tmp_path / "t.ndjson", "".join(json.dumps(d) + "\n" for d in docs))
    calls: list[int] = []
    importer.import_file(conn, path, progress=lambda done, total: calls.append(done))
    assert 100 < len(calls) <= 1001
