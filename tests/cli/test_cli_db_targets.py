"""Writes go only where the user said: imports need --db; demo spares a site's database."""

from __future__ import annotations

import sqlite3
from importlib import resources
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rpi_async.cli import app
from rpi_async.cli import commands as _commands  # noqa: F401  (registers the commands)
from tests.cli.cli_support import assert_one_line_error
from tests.conftest import make_db

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


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["import", str(EXAMPLE), "--create"], "import"),
        (["import-dicom", "{tree}", "--create"], "import-dicom"),
    ],
)
def test_imports_need_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], command: str
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    tree = tmp_path / "tree"
    tree.mkdir()
    result = _run(*[a.format(tree=tree) for a in args])
    assert_one_line_error(*result, f"'rpi-async db {command}' needs --db")
    assert not data.exists()  # the per-user demo database was not created


def test_demo_refuses_a_database_with_other_patients(tmp_path: Path) -> None:
    site = make_db(tmp_path / "site.sqlite3")  # four patients, none of them demo ones
    before = site.read_bytes()
    result = _run("demo", "--db", str(site), "--patients", "3")
    assert_one_line_error(*result, f"database {site} holds 4 patients that are not demo")
    assert "--force" in result[2]
    assert site.read_bytes() == before
    code, _, err = _run("demo", "--db", str(site), "--patients", "3", "--force")
    assert code == 0, err
    assert _patients(site) == 4 + 5


def test_demo_may_refill_a_demo_database(tmp_path: Path) -> None:
    db = tmp_path / "demo.sqlite3"
    assert _run("demo", "--db", str(db), "--patients", "3")[0] == 0
    code, _, err = _run("demo", "--db", str(db), "--patients", "6", "--seed", "2")
    assert code == 0, err
    assert _patients(db) == 8
