"""``rpi-async db import-fhir``: the example files, options and one-line errors."""

from __future__ import annotations

import sqlite3
from importlib import resources
from pathlib import Path

from typer.testing import CliRunner

from rpi_async.cli import app
from rpi_async.cli import commands as _commands  # noqa: F401  (registers the commands)
from tests.cli.cli_support import assert_one_line_error

EXAMPLES = Path(str(resources.files("rpi_async") / "examples"))
CLINIC = "urn:oid:1.2.826.0.1.3680043.10.543.1=CITY_CLINIC"


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["db", *args])
    return result.exit_code, result.stdout, result.stderr


def _rows(db: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT patient_id, issuer FROM patient ORDER BY 1, 2").fetchall()
    finally:
        conn.close()


def test_bundle_and_bulk_directory_in_one_command(tmp_path: Path) -> None:
    db = tmp_path / "site.sqlite3"
    code, out, err = _run(
        "import-fhir",
        str(EXAMPLES / "fhir-bundle.json"),
        str(EXAMPLES / "fhir-bulk"),
        "--db",
        str(db),
        "--create",
        "--issuer-map",
        CLINIC,
        "--issuer-map",
        "http://hospital.smarthealthit.org=SYNTHEA",
    )
    assert code == 0, err
    assert out.startswith("imported 4 patients (")
    assert "skipped" in out
    assert ("EX-3001", "CITY_CLINIC") in _rows(db)
    assert ("MRN0000001", "SYNTHEA") in _rows(db)
    assert len(_rows(db)) == 4
    code, out, _ = _run("stats", "--db", str(db))
    assert code == 0
    assert "FHIR resources  56" in out


def test_the_spool_goes_where_asked_and_is_removed(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    db = tmp_path / "s.sqlite3"
    bundle = str(EXAMPLES / "fhir-bundle.json")
    args = ("--db", str(db), "--create", "--issuer-map", CLINIC)
    code, _, err = _run("import-fhir", bundle, *args, "--spool-dir", str(spool))
    assert code == 0, err
    assert list(spool.iterdir()) == []
    code, out, err = _run("import-fhir", bundle, *args, "--spool-dir", str(tmp_path / "no"))
    assert_one_line_error(code, out, err, "--spool-dir")


def test_bad_input_creates_no_database(tmp_path: Path) -> None:
    bad = tmp_path / "Condition.ndjson"
    bad.write_text(
        '{"resourceType": "Condition", "id": "c", "subject": {"reference": "Patient/x"}}\n'
    )
    db = tmp_path / "new.sqlite3"
    code, out, err = _run("import-fhir", str(bad), "--db", str(db), "--create")
    assert_one_line_error(code, out, err, "Condition.ndjson: line 1 (Condition/c): code: missing")
    assert not db.exists()


def test_bad_options_and_paths(tmp_path: Path) -> None:
    db = tmp_path / "x.sqlite3"
    code, out, err = _run("import-fhir", str(tmp_path / "none"), "--db", str(db), "--create")
    assert_one_line_error(code, out, err, "none: no such file or directory")
    code, out, err = _run(
        "import-fhir", str(EXAMPLES / "fhir-bundle.json"), "--db", str(db), "--issuer-map", "x"
    )
    assert_one_line_error(code, out, err, "--issuer-map: 'x' is not SYSTEM=ISSUER")
    code, out, err = _run(
        "import-fhir", str(EXAMPLES / "fhir-bundle.json"), "--db", str(db), "--code-system", "u=X|"
    )
    assert_one_line_error(code, out, err, "--code-system")
    code, out, err = _run("import-fhir", str(EXAMPLES / "fhir-bundle.json"), "--db", str(db))
    assert_one_line_error(code, out, err, "does not exist (add --create")
