"""``rpi-async db ...``: import, import-dicom, demo, stats, validate, and bad database files."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from typer.testing import CliRunner

from rpi_async.cli import EXIT_USAGE, app
from rpi_async.cli import commands as _commands  # noqa: F401  (registers the commands)
from rpi_async.store import schema
from tests.cli.cli_support import assert_one_line_error
from tests.conftest import make_db, make_newer_schema_db

EXAMPLE = Path(str(resources.files("rpi_async").joinpath("examples/patients.json")))


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["db", *args])
    return result.exit_code, result.stdout, result.stderr


def _patients(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM patient").fetchone()[0])
    finally:
        conn.close()


def _snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


@pytest.fixture
def demo_db(tmp_path: Path) -> Path:
    db = tmp_path / "demo.sqlite3"
    code, out, err = _run("demo", "--db", str(db), "--patients", "60", "--seed", "4")
    assert code == 0, err
    assert "wrote 62 demo patients (seed 4)" in out
    return db


def test_demo_and_stats(demo_db: Path) -> None:
    code, out, _ = _run("stats", "--db", str(demo_db))
    assert code == 0
    assert f"schema version  {schema.SCHEMA_VERSION}" in out
    assert "patients        62" in out
    assert "issuers         3" in out
    assert "gynecological" in out
    code, out, _ = _run("stats", "--db", str(demo_db), "--json")
    assert code == 0
    stats = json.loads(out)
    assert stats["patients"] == 62
    assert stats["schema_version"] == schema.SCHEMA_VERSION
    assert stats["file_bytes"] > 0
    assert stats["facts"] == sum(v for k, v in stats.items() if k.startswith("facts."))


def test_demo_same_seed_same_content(tmp_path: Path) -> None:
    dumps = []
    for name in ("a", "b"):
        db = tmp_path / f"{name}.sqlite3"
        assert _run("demo", "--db", str(db), "--patients", "30", "--seed", "9")[0] == 0
        conn = sqlite3.connect(db)
        dumps.append(list(conn.iterdump()))
        conn.close()
    assert dumps[0] == dumps[1]


def test_import_example_with_create(tmp_path: Path) -> None:
    db = tmp_path / "new.sqlite3"
    code, out, err = _run("import", str(EXAMPLE), "--db", str(db), "--create")
    assert code == 0, err
    assert out.startswith("imported 4 patients (")
    assert _patients(db) == 4
    conn = sqlite3.connect(db)
    try:  # loaded with a rollback journal, then back in WAL mode for readers
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_import_needs_create_for_a_new_database(tmp_path: Path) -> None:
    db = tmp_path / "new.sqlite3"
    assert_one_line_error(*_run("import", str(EXAMPLE), "--db", str(db)), "--create")
    assert not db.exists()


def test_bad_input_imports_nothing(tmp_path: Path, demo_db: Path) -> None:
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"patient_id": "NEW1"}\n{"patient_id": "NEW2", "birth_date": "2001-02-29"}\n')
    before = _patients(demo_db)
    result = _run("import", str(bad), "--db", str(demo_db))
    assert_one_line_error(*result, f"{bad}: record 2 (line 2, patient_id 'NEW2'): birth_date")
    assert _patients(demo_db) == before


def test_bad_input_into_new_database_leaves_no_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[{"patient_id": "A"}, {"name": "no id"}]')
    db = tmp_path / "new.sqlite3"
    result = _run("import", str(bad), "--db", str(db), "--create")
    assert_one_line_error(*result, "record 2 (line 1): patient_id: missing")
    assert not db.exists()
    assert not Path(f"{db}-wal").exists()


def test_import_missing_file(tmp_path: Path, demo_db: Path) -> None:
    result = _run("import", str(tmp_path / "absent.json"), "--db", str(demo_db))
    assert_one_line_error(*result, "no such file")


def test_validate(tmp_path: Path) -> None:
    code, out, _ = _run("validate", str(EXAMPLE))
    assert code == 0
    assert "4 patients" in out
    assert "valid" in out
    bad = tmp_path / "bad.json"
    bad.write_text('{"patients": [{"patient_id": "A", "sex": "X"}]}')
    assert_one_line_error(*_run("validate", str(bad)), "record 1 (line 1, patient_id 'A'): sex")


def _dicom(path: Path, patient_id: str, name: str) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.7")
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientID = patient_id
    ds.PatientName = name
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def test_import_dicom(tmp_path: Path, demo_db: Path) -> None:
    tree = tmp_path / "tree"
    _dicom(tree / "a" / "1.dcm", "DCM1", "Doe^Jane")
    _dicom(tree / "a" / "2.dcm", "DCM1", "Doe^Jane")
    _dicom(tree / "b" / "1.dcm", "DCM2", "Roe^Rick")
    (tree / "README").write_text("not a DICOM file")
    before = _patients(demo_db)
    code, out, err = _run("import-dicom", str(tree), "--db", str(demo_db), "--issuer", "SITE")
    assert code == 0, err
    assert "4 files: 3 DICOM, 1 not DICOM (skipped)" in out
    assert "2 patients (2 added, 0 updated)" in out
    assert _patients(demo_db) == before + 2


def test_import_dicom_not_a_directory(tmp_path: Path, demo_db: Path) -> None:
    result = _run("import-dicom", str(tmp_path / "absent"), "--db", str(demo_db))
    assert_one_line_error(*result, "not a directory")


def test_default_database_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    code, out, err = _run("demo", "--patients", "3")
    assert code == 0, err
    default = tmp_path / "data" / "rpi-async" / "demo.sqlite3"
    assert str(default) in out
    assert _patients(default) == 5
    code, out, _ = _run("stats")
    assert code == 0
    assert str(default) in out


# --- files that are not usable databases: one line, exit 2, file untouched -------------


def _not_sqlite(tmp_path: Path) -> Path:
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"definitely not a database\n" * 20)
    return path


def _db_commands(db: Path) -> list[list[str]]:
    return [
        ["import", str(EXAMPLE), "--db", str(db)],
        ["import", str(EXAMPLE), "--db", str(db), "--create"],
        ["import-dicom", str(db.parent), "--db", str(db)],
        ["demo", "--db", str(db), "--patients", "2"],
        ["stats", "--db", str(db)],
    ]


@pytest.mark.parametrize(
    ("make", "fragment"),
    [(_not_sqlite, "not an SQLite database"), (make_newer_schema_db, "schema version 99")],
)
def test_unusable_database_is_refused_untouched(
    tmp_path: Path, make: Callable[[Path], Path], fragment: str
) -> None:
    db = make(tmp_path)
    before = _snapshot(db)
    for args in _db_commands(db):
        assert_one_line_error(*_run(*args), fragment)
        assert _snapshot(db) == before, args


def test_missing_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "missing.sqlite3"
    assert_one_line_error(*_run("stats", "--db", str(db)), "does not exist")
    assert_one_line_error(*_run("import", str(EXAMPLE), "--db", str(db)), "does not exist")
    assert not db.exists()


def test_through_the_real_entry_point(tmp_path: Path) -> None:
    db = make_newer_schema_db(tmp_path)
    before = _snapshot(db)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-m", "rpi_async", "db", "import", str(EXAMPLE), "--db", str(db)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert proc.returncode == EXIT_USAGE
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("rpi-async: error: ")
    assert "schema version 99" in proc.stderr
    assert _snapshot(db) == before


def _corrupt_pages(path: Path) -> None:
    """Overwrite the middle of every page after the first: the header still opens."""
    data = bytearray(path.read_bytes())
    for page in range(4096, len(data), 4096):
        data[page + 100 : page + 3000] = b"\xa5" * 2900
    path.write_bytes(data)


@pytest.mark.parametrize("damage", ["pages", "garbage"])
def test_prerender_of_a_broken_file_is_a_one_line_error(tmp_path: Path, damage: str) -> None:
    db = make_db(tmp_path / "broken.sqlite3")
    if damage == "pages":
        _corrupt_pages(db)
    else:
        db.write_bytes(b"\x5a" * 20000)
    code, out, err = _run("prerender", "--db", str(db))
    assert_one_line_error(code, out, err, str(db))


def test_serve_demo_on_a_broken_demo_file_is_a_one_line_error(tmp_path: Path) -> None:
    demo = tmp_path / "data" / "rpi-async" / "demo.sqlite3"
    demo.parent.mkdir(parents=True)
    make_db(demo)
    _corrupt_pages(demo)
    result = CliRunner().invoke(
        app, ["serve", "--demo", "--port", "0"], env={"XDG_DATA_HOME": str(tmp_path / "data")}
    )
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, str(demo))
