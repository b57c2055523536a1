"""``rpi-async render``: output formats and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rpi_async.cli import EXIT_USAGE, app
from rpi_async.cli import commands as _commands  # noqa: F401  (registers the commands)
from rpi_async.dicom.codes import Code
from rpi_async.store.model import Fact, PatientRecord, Section
from rpi_async.store.schema import connect_writer
from rpi_async.store.writer import write_patients
from tests.cli.cli_support import assert_one_line_error

AUNT = Code("25211005", "SCT", "Aunt")
RISK = Code("111559", "DCM", "Weak family history of breast cancer")

PATIENTS = (
    PatientRecord(
        patient_id="P1",
        issuer="HOSP_A",
        name="Doe^Jane",
        birth_date="19700101",
        sex="F",
        facts=(Fact(Section.RISK_FACTOR, code=RISK, modifier=AUNT),),
    ),
    PatientRecord(patient_id="TWIN", issuer="HOSP_A", name="A^One"),
    PatientRecord(patient_id="TWIN", issuer="HOSP_B", name="B^Two"),
)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("render") / "patients.db"
    conn = connect_writer(path, create=True)
    try:
        write_patients(conn, PATIENTS)
    finally:
        conn.close()
    return path


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["render", *args])
    return result.exit_code, result.stdout, result.stderr


def test_text_tree_by_default(db: Path) -> None:
    code, out, err = _run("--db", str(db), "--patient-id", "P1")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("Patient Doe^Jane, ID P1 (issuer HOSP_A), born 1970-01-01, sex F")
    assert "template DCMR 9007" in lines[0]
    assert lines[1] == "Relevant Patient Information"
    assert "      INFERRED FROM Family Member with Risk Factor = Aunt" in lines


def test_other_templates(db: Path) -> None:
    code, out, _ = _run("--db", str(db), "--patient-id", "P1", "--template", "9000")
    assert code == 0
    assert out.splitlines()[1] == "Relevant Patient Information for Breast Imaging"
    code, out, _ = _run("--db", str(db), "--patient-id", "P1", "--template", "3802")
    assert code == 0
    assert out.splitlines()[1] == "History"


def test_json_output_is_the_dicom_json_model(db: Path) -> None:
    code, out, _ = _run("--db", str(db), "--patient-id", "P1", "--json")
    assert code == 0
    model = json.loads(out)
    assert model["00100020"] == {"vr": "LO", "Value": ["P1"]}
    assert model["0040A040"]["Value"] == ["CONTAINER"]
    assert model["0040A504"]["Value"][0]["0040DB00"]["Value"] == ["9007"]
    assert len(model["0040A730"]["Value"]) >= 2


def test_issuer_picks_one_of_two(db: Path) -> None:
    code, out, _ = _run("--db", str(db), "--patient-id", "TWIN", "--issuer", "HOSP_B")
    assert code == 0
    assert out.startswith("Patient B^Two, ID TWIN (issuer HOSP_B)")


def test_more_than_one_match(db: Path) -> None:
    assert_one_line_error(*_run("--db", str(db), "--patient-id", "TWIN"), "--issuer")


def test_patient_not_found(db: Path) -> None:
    assert_one_line_error(*_run("--db", str(db), "--patient-id", "NOPE"), "no patient")


def test_unknown_template(db: Path) -> None:
    result = _run("--db", str(db), "--patient-id", "P1", "--template", "1500")
    assert_one_line_error(*result, "unknown template '1500'")


def test_missing_database(tmp_path: Path) -> None:
    result = _run("--db", str(tmp_path / "missing.db"), "--patient-id", "P1")
    assert_one_line_error(*result, "does not exist")


def test_not_sqlite(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all")
    assert_one_line_error(*_run("--db", str(junk), "--patient-id", "P1"), "not an SQLite")


def test_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    conn = connect_writer(path, create=True)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    assert_one_line_error(*_run("--db", str(path), "--patient-id", "P1"), "newer")


def test_installed_entry_point_errors_without_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rpi_async",
            "render",
            "--db",
            str(tmp_path / "x.db"),
            "--patient-id",
            "P1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == EXIT_USAGE
    assert proc.stderr.startswith("rpi-async: error: database")
    assert "Traceback" not in proc.stderr + proc.stdout
